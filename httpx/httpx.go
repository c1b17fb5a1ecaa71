// Package httpx serves and fetches HTTP with limits set, for the small HTTP
// side doors (health, metrics, a demo page) that programs using framed
// often need next to their framed traffic. It is not a framework: it has
// no router, and its only middleware is a request body cap.
//
//   - [NewServer] returns a *http.Server with timeouts and sizes bounded;
//     ReadHeaderTimeout above all, since a server without it can be held
//     open by clients that never finish their header.
//   - [MaxBytes] caps request bodies and answers 413 when one is too large.
//   - [ListenAndServe] and [Serve] run a server until a context ends, then
//     stop it gracefully within [ShutdownTimeout].
//   - [Get] and [Client.Get] fetch a URL, return a [*StatusError] for a
//     non-2xx status, and refuse a body over a cap with [ErrBodyTooLarge].
package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Server defaults set by [NewServer].
const (
	DefaultReadHeaderTimeout = 5 * time.Second  // reading a request's header
	DefaultReadTimeout       = 30 * time.Second // reading a whole request, body included
	DefaultWriteTimeout      = 30 * time.Second // from the end of the header to the end of the response
	DefaultIdleTimeout       = 60 * time.Second // a keep-alive connection between requests
	DefaultMaxHeaderBytes    = 64 << 10         // request line and header; net/http allows 1 MiB
	DefaultMaxRequestBytes   = 1 << 20          // request body, enforced by MaxBytes
)

// ShutdownTimeout is how long [Serve] and [ListenAndServe] let requests in
// flight finish once their context ends, before closing what remains.
const ShutdownTimeout = 10 * time.Second

// Client defaults used by [Get] and a zero [Client].
const (
	DefaultClientTimeout    = 30 * time.Second // a whole request, body included
	DefaultMaxResponseBytes = 10 << 20         // a 2xx response body
	MaxErrorBodyBytes       = 512              // the body kept in a StatusError
)

// ErrBodyTooLarge is returned by [Client.Get] for a response body over its
// cap. No part of the body is returned.
var ErrBodyTooLarge = errors.New("httpx: response body too large")

// NewServer returns a server for h listening on addr, with the timeouts and
// sizes of the Default constants above and h wrapped in
// MaxBytes(h, DefaultMaxRequestBytes). A nil h means [http.DefaultServeMux],
// as in net/http; an empty addr means ":http". To accept larger bodies, set
// Handler to MaxBytes(h, n) with the n you need.
//
// WriteTimeout bounds each response, so a handler that streams for longer
// must lift it, for example with [http.ResponseController.SetWriteDeadline].
// ErrorLog discards net/http's own diagnostics (client TLS errors, recovered
// handler panics), since the library prints nothing; set it to see them.
// Every field may be changed before the server starts.
func NewServer(addr string, h http.Handler) *http.Server {
	if h == nil {
		h = http.DefaultServeMux
	}
	return &http.Server{
		Addr:              addr,
		Handler:           MaxBytes(h, DefaultMaxRequestBytes),
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
}

// ListenAndServe listens on addr (empty means ":http") and serves h with a
// [NewServer] server until ctx ends, then stops it as [Serve] does. It
// returns nil after a clean stop, and an error if it cannot listen.
func ListenAndServe(ctx context.Context, addr string, h http.Handler) error {
	srv := NewServer(addr, h)
	if addr == "" {
		addr = ":http"
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("httpx: %w", err)
	}
	return Serve(ctx, srv, ln)
}

// Serve serves srv on ln until ctx ends, then shuts srv down gracefully: it
// stops accepting, closes idle connections and waits up to ShutdownTimeout
// for requests in flight to complete, then closes the rest. It returns nil
// after a clean stop (not [http.ErrServerClosed]), an error wrapping
// [context.DeadlineExceeded] if requests were still running after
// ShutdownTimeout, and srv.Serve's error if serving fails. After
// ShutdownTimeout the remaining connections are closed, but net/http does
// not wait for their handlers: a handler should honour its request's
// context. srv.Serve closes ln. If srv is shut down by other means, Serve
// returns nil at once.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("httpx: %w", err)
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(grace)
	if err != nil {
		srv.Close()
	}
	<-served
	if err != nil {
		return fmt.Errorf("httpx: graceful shutdown: %w", err)
	}
	return nil
}

// MaxBytes returns a handler that limits each request body to n bytes (n < 0
// counts as 0) and answers 413 Request Entity Too Large to a larger one:
//
//   - A request declaring a Content-Length over n gets 413 at once; h is not
//     called.
//   - Otherwise h reads the body through [http.MaxBytesReader], and a read
//     past n fails with a [*http.MaxBytesError]. From then on the response
//     status is 413, whatever status h writes, and if h writes nothing,
//     MaxBytes writes 413 when h returns. Only a header h wrote before
//     reading too far goes out unchanged.
//
// The connection is closed after a refused request. The ResponseWriter h
// receives supports [http.Flusher], and [http.ResponseController] for the
// rest.
func MaxBytes(h http.Handler, n int64) http.Handler {
	n = max(n, 0)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			w.Header().Set("Connection", "close")
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		body := &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, n)}
		r.Body = body
		lw := &limitedWriter{ResponseWriter: w, body: body}
		h.ServeHTTP(lw, r)
		if body.hit.Load() && !lw.wroteHeader {
			http.Error(lw, "request body too large", http.StatusRequestEntityTooLarge)
		}
	})
}

// limitedBody records that a read went past the cap.
type limitedBody struct {
	io.ReadCloser
	hit atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.hit.Store(true)
	}
	return n, err
}

// limitedWriter turns the status into 413 once the body cap was hit.
type limitedWriter struct {
	http.ResponseWriter
	body        *limitedBody
	wroteHeader bool
}

func (w *limitedWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: the real header follows
		return
	}
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if w.body.hit.Load() {
		// net/http closes the connection itself only when it wrote the
		// response the MaxBytesReader was given, not a wrapper such as
		// an outer MaxBytes.
		w.Header().Set("Connection", "close")
		code = http.StatusRequestEntityTooLarge
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Flush implements [http.Flusher].
func (w *limitedWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets [http.ResponseController] reach the underlying writer.
func (w *limitedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// StatusError is returned by [Client.Get] for a response whose status is
// not 2xx.
type StatusError struct {
	URL        string // the URL that answered, password redacted
	StatusCode int    // for example 404
	Status     string // for example "404 Not Found"
	Body       []byte // the first MaxErrorBodyBytes of the body, at most

	// Err is why Body was cut short: the ctx's error when the ctx given to
	// Get ended while the body was being read, so that the StatusError
	// matches ctx.Err() as every other error Get returns then does. Nil
	// when the body was read (up to MaxErrorBodyBytes) or failed for any
	// other reason.
	Err error
}

// Error reports the URL, the status, the start of the body and, if the
// body was cut short by the ctx, why.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("httpx: GET %s: %s", e.URL, e.Status)
	if len(e.Body) > 0 {
		msg += fmt.Sprintf(": %q", e.Body)
	}
	if e.Err != nil {
		msg += fmt.Sprintf(" (body cut short: %v)", e.Err)
	}
	return msg
}

// Unwrap returns Err, so that errors.Is(err, context.DeadlineExceeded)
// holds for a StatusError whose body read ran out of time.
func (e *StatusError) Unwrap() error { return e.Err }

// Client fetches URLs with a bounded response size. Its zero value is ready
// to use, and it may be used by any number of goroutines at once.
type Client struct {
	// HTTPClient sends the requests. Nil means an [http.Client] over
	// [http.DefaultTransport] with a Timeout of DefaultClientTimeout, a
	// safety net under the caller's ctx.
	HTTPClient *http.Client

	// MaxBodyBytes caps the body of a 2xx response. Zero means
	// DefaultMaxResponseBytes; a negative value makes Get return an error.
	MaxBodyBytes int64
}

// Get fetches url with a zero [Client].
func Get(ctx context.Context, url string) ([]byte, error) {
	var c Client
	return c.Get(ctx, url)
}

// Get fetches url and returns its body if the status is 2xx. Any other final
// status (after redirects) is a [*StatusError]. A body over MaxBodyBytes is
// [ErrBodyTooLarge], detected from Content-Length when the server sends one
// and otherwise after reading MaxBodyBytes+1 bytes; memory grows with the
// bytes received, not with the bytes announced. ctx bounds the whole
// exchange, body included; when it ends, the error matches ctx.Err(),
// a [*StatusError] whose body was being read included.
func (c *Client) Get(ctx context.Context, url string) ([]byte, error) {
	limit := c.MaxBodyBytes
	if limit == 0 {
		limit = DefaultMaxResponseBytes
	}
	if limit < 0 {
		return nil, fmt.Errorf("httpx: Client.MaxBodyBytes %d is negative", limit)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("httpx: %w", err)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultClientTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("httpx: %w", err)
	}
	defer resp.Body.Close()
	where := resp.Request.URL.Redacted()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The status is the error to report; a snippet cut short by a
		// failing read only makes it less informative, unless ctx ended:
		// then the error must say so, as it does everywhere else.
		snippet, err := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBodyBytes))
		se := &StatusError{URL: where, StatusCode: resp.StatusCode, Status: resp.Status, Body: snippet}
		if err != nil && ctx.Err() != nil {
			se.Err = ctx.Err()
		}
		return nil, se
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("httpx: GET %s: body of %d bytes, above the %d-byte cap: %w", where, resp.ContentLength, limit, ErrBodyTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("httpx: GET %s: read body: %w", where, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("httpx: GET %s: body above the %d-byte cap: %w", where, limit, ErrBodyTooLarge)
	}
	return body, nil
}
