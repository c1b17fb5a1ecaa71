package httpx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framed-go/framed/httpx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serve runs srv on a free loopback port until cleanup, then checks that
// httpx.Serve stopped cleanly. It returns the base URL.
func serve(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpx.Serve(ctx, srv, ln) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-served)
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return "http://" + ln.Addr().String()
}

// newClient returns an HTTP client whose connections cleanup closes.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func TestNewServerDefaults(t *testing.T) {
	srv := httpx.NewServer("127.0.0.1:8080", nil)
	assert.Equal(t, "127.0.0.1:8080", srv.Addr)
	assert.Equal(t, httpx.DefaultReadHeaderTimeout, srv.ReadHeaderTimeout)
	assert.Equal(t, httpx.DefaultReadTimeout, srv.ReadTimeout)
	assert.Equal(t, httpx.DefaultWriteTimeout, srv.WriteTimeout)
	assert.Equal(t, httpx.DefaultIdleTimeout, srv.IdleTimeout)
	assert.Equal(t, httpx.DefaultMaxHeaderBytes, srv.MaxHeaderBytes)
	assert.NotNil(t, srv.Handler)
	assert.NotNil(t, srv.ErrorLog, "net/http must not print to stderr")
}

func TestServerCutsOffSlowHeader(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv := httpx.NewServer("", http.NotFoundHandler())
	srv.ReadHeaderTimeout = timeout
	base := serve(t, srv)

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: example.com\r\n") // and no blank line
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(start.Add(5*time.Second)))
	got, err := io.ReadAll(conn)
	elapsed := time.Since(start)

	require.NoError(t, err, "the server should have closed the connection, got %q", got)
	assert.NotContains(t, string(got), "404", "a half-sent request must not be served")
	assert.GreaterOrEqual(t, elapsed, timeout-50*time.Millisecond, "closed before ReadHeaderTimeout")
	assert.Less(t, elapsed, 2*time.Second, "closed long after ReadHeaderTimeout")
}

func TestMaxBytes(t *testing.T) {
	const limit = 1024
	var calls atomic.Int32
	var length atomic.Int64 // of the last body a handler saw; -1 if chunked
	mux := http.NewServeMux()
	mux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		length.Store(r.ContentLength)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, len(b))
	})
	mux.HandleFunc("/ignore", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		length.Store(r.ContentLength)
		b, _ := io.ReadAll(r.Body)
		fmt.Fprint(w, len(b))
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		length.Store(r.ContentLength)
		w.WriteHeader(http.StatusAccepted) // before reading: too early to refuse
		_, _ = io.ReadAll(r.Body)
	})
	mux.HandleFunc("/silent", func(_ http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		length.Store(r.ContentLength)
		_, _ = io.ReadAll(r.Body)
	})
	base := serve(t, httpx.NewServer("", httpx.MaxBytes(mux, limit)))
	client := newClient(t)

	tests := []struct {
		name      string
		path      string
		give      int
		chunked   bool
		want      int
		wantCalls int32
		wantBody  string
	}{
		{name: "declared at the cap", path: "/report", give: limit, want: 200, wantCalls: 1, wantBody: "1024"},
		{name: "declared over the cap", path: "/report", give: limit + 1, want: 413, wantCalls: 0},
		{name: "chunked at the cap", path: "/report", give: limit, chunked: true, want: 200, wantCalls: 1, wantBody: "1024"},
		{name: "chunked over, handler answers 400", path: "/report", give: 4 * limit, chunked: true, want: 413, wantCalls: 1},
		{name: "chunked over, handler ignores the error", path: "/ignore", give: 4 * limit, chunked: true, want: 413, wantCalls: 1},
		{name: "chunked over, handler writes nothing", path: "/silent", give: 4 * limit, chunked: true, want: 413, wantCalls: 1},
		{name: "chunked over, header written before reading", path: "/early", give: 4 * limit, chunked: true, want: 202, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			var body io.Reader = bytes.NewReader(make([]byte, tt.give))
			if tt.chunked {
				body = struct{ io.Reader }{body} // hides the length
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+tt.path, body)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)

			if tt.chunked {
				assert.EqualValues(t, -1, length.Load(), "the test must send a chunked body")
			}
			assert.Equal(t, tt.want, resp.StatusCode, "body %q", got)
			assert.Equal(t, tt.wantCalls, calls.Load(), "handler calls")
			if tt.want == http.StatusRequestEntityTooLarge {
				assert.True(t, resp.Close, "a refused request must close its connection")
			}
			if tt.wantBody != "" {
				assert.Equal(t, tt.wantBody, string(got))
			}
		})
	}
}

func TestServeStopsGracefully(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	srv := httpx.NewServer("", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		fmt.Fprint(w, "finished")
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- httpx.Serve(ctx, srv, ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	client := newClient(t)
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	<-entered
	cancel()

	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 5*time.Second, 5*time.Millisecond, "the listener must close when ctx ends")
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	r := <-got
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "finished", r.body)
	assert.NoError(t, <-served)
}

func TestListenAndServe(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	err = httpx.ListenAndServe(t.Context(), busy.Addr().String(), http.NotFoundHandler())
	assert.ErrorContains(t, err, "address already in use")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.NoError(t, httpx.ListenAndServe(ctx, "127.0.0.1:0", http.NotFoundHandler()),
		"a ctx that has ended means stop at once, cleanly")
}

func TestGet(t *testing.T) {
	const limit = 1024
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") })
	mux.HandleFunc("/empty", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/exact", func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, limit)) })
	mux.HandleFunc("/declared", func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, limit+1)) })
	mux.HandleFunc("/streamed", func(w http.ResponseWriter, _ *http.Request) {
		for range 4 {
			w.Write(make([]byte, limit/2))
			w.(http.Flusher).Flush() // no Content-Length: the cap is found by reading
		}
	})
	mux.HandleFunc("/boom", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, strings.Repeat("stack trace ", 100), http.StatusInternalServerError)
	})
	base := serve(t, httpx.NewServer("", mux)) // unknown paths get net/http's 404

	tests := []struct {
		name       string
		path       string
		want       string
		wantStatus int    // of a StatusError
		wantSnip   string // its body
		wantErr    error
		wantMsg    string // part of the error's text
	}{
		{name: "200", path: "/ok", want: "hello"},
		{name: "204", path: "/empty", want: ""},
		{name: "body at the cap", path: "/exact", want: string(make([]byte, limit))},
		{name: "404", path: "/missing", wantStatus: 404, wantSnip: "404 page not found\n"},
		{name: "500", path: "/boom", wantStatus: 500, wantSnip: strings.Repeat("stack trace ", 100)[:httpx.MaxErrorBodyBytes]},
		{name: "declared body over the cap", path: "/declared", wantErr: httpx.ErrBodyTooLarge,
			wantMsg: "body of 1025 bytes, above the 1024-byte cap"},
		{name: "streamed body over the cap", path: "/streamed", wantErr: httpx.ErrBodyTooLarge,
			wantMsg: "body above the 1024-byte cap"},
	}
	client := &httpx.Client{HTTPClient: newClient(t), MaxBodyBytes: limit}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.Get(t.Context(), base+tt.path)
			var se *httpx.StatusError
			switch {
			case tt.wantStatus != 0:
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tt.wantStatus, se.StatusCode)
				assert.Equal(t, fmt.Sprintf("%d %s", tt.wantStatus, http.StatusText(tt.wantStatus)), se.Status)
				assert.Equal(t, tt.wantSnip, string(se.Body))
				assert.Equal(t, base+tt.path, se.URL)
				assert.Contains(t, err.Error(), se.Status)
				assert.Nil(t, got)
			case tt.wantErr != nil:
				assert.ErrorIs(t, err, tt.wantErr)
				assert.ErrorContains(t, err, tt.wantMsg)
				assert.Nil(t, got)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.want, string(got))
			}
		})
	}
}

func TestGetDefaultCap(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		chunk := make([]byte, 64<<10)
		for sent := 0; sent <= httpx.DefaultMaxResponseBytes; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	base := serve(t, httpx.NewServer("", mux))
	got, err := httpx.Get(t.Context(), base+"/")
	assert.ErrorIs(t, err, httpx.ErrBodyTooLarge)
	assert.ErrorContains(t, err, fmt.Sprintf("body above the %d-byte cap", httpx.DefaultMaxResponseBytes))
	assert.Nil(t, got)
}

func TestGetContextEnds(t *testing.T) {
	entered := make(chan struct{}, 1)
	base := serve(t, httpx.NewServer("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stall-body":
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		case "/stall-error-body":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		}
		entered <- struct{}{}
		<-r.Context().Done()
	})))

	for _, path := range []string{"/stall-header", "/stall-body", "/stall-error-body"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-entered
				cancel()
			}()
			got, err := httpx.Get(ctx, base+path)
			assert.ErrorIs(t, err, context.Canceled)
			assert.Nil(t, got)
		})
	}
	t.Run("ends while reading an error body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// The ctx ends once the 500's headers are in, while its body stalls.
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := http.DefaultTransport.RoundTrip(r)
			<-entered
			cancel()
			return resp, err
		})}
		_, err := (&httpx.Client{HTTPClient: hc}).Get(ctx, base+"/stall-error-body")
		var se *httpx.StatusError
		require.ErrorAs(t, err, &se, "the status is still reported")
		assert.Equal(t, http.StatusInternalServerError, se.StatusCode)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "body cut short: context canceled")
	})
	t.Run("ended before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := httpx.Get(ctx, base+"/never")
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestGetRefusesNegativeCap(t *testing.T) {
	c := httpx.Client{MaxBodyBytes: -1}
	_, err := c.Get(t.Context(), "http://127.0.0.1:9/")
	assert.ErrorContains(t, err, "MaxBodyBytes")
}

func TestServerAnswersCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed; install it to check interoperability with a real client")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hello, curl") })
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, len(b))
	})
	base := serve(t, httpx.NewServer("", httpx.MaxBytes(mux, 1024)))

	tests := []struct {
		name string
		args []string
		body string
		want string
	}{
		{name: "GET", args: []string{base + "/hello"}, want: "hello, curl\n"},
		{name: "small upload", args: []string{"--data-binary", "@-", base + "/upload"}, body: "0123456789", want: "10"},
		{name: "declared upload over the cap", body: strings.Repeat("x", 4096), want: "413",
			args: []string{"-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@-", base + "/upload"}},
		{name: "chunked upload over the cap", body: strings.Repeat("x", 4096), want: "413",
			args: []string{"-o", "/dev/null", "-w", "%{http_code}", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", base + "/upload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--max-time", "5"}, tt.args...)...)
			cmd.Stdin = strings.NewReader(tt.body)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				t.Fatalf("curl %v: %v: %s", tt.args, err, stderr.String())
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(out))
		})
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
