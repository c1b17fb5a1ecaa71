package framed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrReceiveWithRequest is returned by [Client.Receive] on a Client
	// that has served a [Client.Request], and by Request on a Client that
	// has served a Receive. Request's replies are read by the Client itself,
	// so a frame taken by Receive would put every later reply out of step.
	ErrReceiveWithRequest = errors.New("framed: Receive and Request used on one Client")

	errClientClosed    = fmt.Errorf("framed: Client closed: %w", net.ErrClosed)
	errPeerClosed      = fmt.Errorf("framed: connection closed by peer: %w", io.ErrUnexpectedEOF)
	errUnexpectedFrame = errors.New("framed: frame received with no Request waiting for it")
)

// Dialer holds options for dialing a [Client]. The zero value dials plain
// TCP with the default [Format].
type Dialer struct {
	// Timeout bounds connecting, TLS handshake included, as in
	// [net.Dialer]. Zero means no bound beyond the context's.
	Timeout time.Duration

	// KeepAlive is the interval of TCP keep-alive probes, as in
	// [net.Dialer]: zero means the net package's default (currently 15
	// seconds, not the system's), and a negative value turns keep-alives
	// off.
	KeepAlive time.Duration

	// TLSConfig, when not nil, makes Dial use TLS. An empty ServerName is
	// taken from the address's host, as [tls.Dial] does.
	TLSConfig *tls.Config

	// Format is the wire format; the zero value is the default one. Both
	// ends must use the same Format.
	Format Format

	// WriteTimeout bounds each write to the network, as
	// [ConnConfig].WriteTimeout does. A write that times out closes the
	// connection. Zero means no bound.
	WriteTimeout time.Duration

	// MaxPendingBytes bounds the bytes of frames queued for writing, as
	// [ConnConfig].MaxPendingBytes does. Zero means
	// [DefaultMaxPendingBytes].
	MaxPendingBytes int
}

// Dial connects to the TCP address addr and returns a [Client] for it. An
// invalid Format is an error matching [ErrInvalidFormat], returned before
// any connection is made. ctx bounds connecting and the TLS handshake; once
// Dial returns, ctx no longer matters.
func (d *Dialer) Dial(ctx context.Context, addr string) (*Client, error) {
	if err := d.Format.check(); err != nil {
		return nil, err
	}
	nd := &net.Dialer{Timeout: d.Timeout, KeepAlive: d.KeepAlive}
	var nc net.Conn
	var err error
	if d.TLSConfig != nil {
		td := &tls.Dialer{NetDialer: nd, Config: d.TLSConfig}
		nc, err = td.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = nd.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return NewClient(NewConn(nc, ConnConfig{
		Format:          d.Format,
		WriteTimeout:    d.WriteTimeout,
		MaxPendingBytes: d.MaxPendingBytes,
	})), nil
}

// Dial connects to the TCP address addr with the zero [Dialer].
func Dial(ctx context.Context, addr string) (*Client, error) {
	return new(Dialer).Dial(ctx, addr)
}

// Client sends frames on a [Conn] and receives the peer's frames, either
// one at a time with Receive, or matched to the frames that asked for them
// with Request. A Client is used either with Receive or with Request, not
// both: the first call decides, and the other then returns
// [ErrReceiveWithRequest].
//
// # Requests
//
// Request is for protocols where the peer answers every request frame with
// exactly one reply frame, in order. Requests from many goroutines are
// pipelined on the one connection, and since TCP keeps order, replies are
// matched to requests first in, first out, with nothing added to the wire.
// The Client reads replies on a goroutine of its own, started by the first
// Request, and writes requests on another, so a Request never blocks past
// its context on the network.
//
// A Request whose context ends before its reply returns the context's
// error at once; its request may already be on the wire, and its reply is
// then read and dropped, so the stream stays in step. A frame arriving
// when no Request waits for one breaks that step: the Client closes the
// connection and fails.
//
// # Errors and closing
//
// When the connection fails (the peer closes it, a read or write fails),
// the Client closes it, and every pending and later Request returns the
// error that ended it. A peer that closes the connection is an error
// matching [io.ErrUnexpectedEOF], since the replies owed will never come.
// Close closes the connection: a pending or later Request then returns an
// error matching [net.ErrClosed], as does a blocked Receive.
//
// # Concurrency
//
// All methods may be called by any number of goroutines at once. Frames
// sent concurrently never interleave. Concurrent Receive calls take turns,
// each returning a whole frame.
type Client struct {
	conn   *Conn
	recvMu sync.Mutex // one Receive reads at a time
	calls  sync.Pool  // of *call, reused once their reply is taken

	mu      sync.Mutex
	mode    clientMode
	pending callQueue // Requests waiting for replies, oldest first
	err     error     // why Requests fail; set once
	closed  bool
	kick    chan struct{} // wakes the writer
	quit    chan struct{} // stops the writer

	wg       sync.WaitGroup // the reader and the writer
	closing  sync.Once
	closeErr error // from closing conn
}

type clientMode int

const (
	modeUnset clientMode = iota
	modeReceive
	modeRequest
)

// NewClient returns a Client that sends and receives on c. The Client owns
// c: closing the Client closes c. Nothing else may read from c.
func NewClient(c *Conn) *Client {
	return &Client{conn: c}
}

// Send sends msg as one frame, as [Conn.WriteFrame] does. With Request,
// Send is for messages the peer does not answer. A msg longer than the
// Format's limit is a [*FrameTooLargeError]; nothing is sent and the Client
// stays usable.
func (c *Client) Send(msg []byte) error {
	err := c.conn.WriteFrame(msg)
	if err != nil && !errors.Is(err, ErrFrameTooLarge) {
		if failed := c.failure(); failed != nil {
			return failed
		}
	}
	return err
}

// Receive returns the next frame from the peer, in a new slice that is the
// caller's to keep. It returns [io.EOF] when the peer has closed the
// connection exactly between frames, an error matching [net.ErrClosed]
// after Close, and [ErrReceiveWithRequest] on a Client used with Request.
// Other errors are those of [Conn.ReadFrame]; after them the connection is
// unusable.
func (c *Client) Receive() ([]byte, error) {
	c.mu.Lock()
	if c.mode == modeRequest {
		c.mu.Unlock()
		return nil, ErrReceiveWithRequest
	}
	c.mode = modeReceive
	c.mu.Unlock()

	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		// Frames already read ahead are dropped, as net.Conn drops
		// buffered bytes on Close.
		return nil, errClientClosed
	}
	p, err := c.conn.ReadFrame()
	if err != nil {
		return nil, err
	}
	return clone(p), nil
}

// Request sends msg as one frame and returns the peer's reply, in a new
// slice that is the caller's to keep. It is safe to call from many
// goroutines: their requests are pipelined, and each gets its own reply.
//
// A ctx that is done before msg is queued returns ctx's error and sends
// nothing. A ctx that ends later returns ctx's error at once; the request
// may have been sent, and its reply will be dropped. A msg longer than the
// Format's limit is a [*FrameTooLargeError]: nothing is sent and the Client
// stays usable. Other errors mean the Client has failed; see [Client].
func (c *Client) Request(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.startRequests(); err != nil {
		return nil, err
	}
	cl, _ := c.calls.Get().(*call)
	if cl == nil {
		cl = &call{done: make(chan struct{}, 1)}
	}
	idle, err := c.conn.queueFrame(ctx, msg, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			return c.err
		}
		c.pending.push(cl)
		return nil
	})
	if err != nil {
		c.calls.Put(cl) // never queued
		if err != ctx.Err() && !errors.Is(err, ErrFrameTooLarge) && c.conn.closed.Load() {
			c.fail(err) // the write side has failed
			err = c.failure()
		}
		return nil, err
	}
	if idle {
		select {
		case c.kick <- struct{}{}:
		default: // the writer is already due to run
		}
	}

	select {
	case <-cl.done:
	case <-ctx.Done():
		cl.abandoned.Store(true)
		select {
		case <-cl.done: // the reply came in time after all
		default:
			return nil, ctx.Err() // cl stays with the reader
		}
	}
	// The reader is done with cl: reuse it.
	reply, err := cl.reply, cl.err
	cl.reply, cl.err = nil, nil
	cl.abandoned.Store(false)
	c.calls.Put(cl)
	return reply, err
}

// startRequests starts the reader and the writer on the first Request.
func (c *Client) startRequests() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return c.err
	case c.mode == modeReceive:
		return ErrReceiveWithRequest
	case c.mode == modeRequest:
		return nil
	}
	c.mode = modeRequest
	c.kick = make(chan struct{}, 1)
	c.quit = make(chan struct{})
	c.wg.Add(2)
	go c.readReplies()
	go c.writeRequests()
	return nil
}

// readReplies hands each frame read to the oldest pending Request, until
// the connection fails or is closed.
func (c *Client) readReplies() {
	defer c.wg.Done()
	for {
		p, err := c.conn.ReadFrame()
		if err != nil {
			c.fail(c.readFailure(err))
			return
		}
		c.mu.Lock()
		cl, ok := c.pending.pop()
		c.mu.Unlock()
		if !ok {
			c.fail(errUnexpectedFrame)
			return
		}
		if !cl.abandoned.Load() {
			cl.finish(clone(p), nil)
		}
	}
}

// readFailure returns the error that Requests report when reading replies
// failed with err.
func (c *Client) readFailure(err error) error {
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return errPeerClosed
	case errors.Is(err, net.ErrClosed):
		// A failed write closes the Conn; report the write's error.
		c.conn.mu.Lock()
		werr := c.conn.werr
		c.conn.mu.Unlock()
		if werr != nil && !errors.Is(werr, net.ErrClosed) {
			return werr
		}
	}
	return err
}

// writeRequests writes the frames that Requests queue, until the Client is
// closed or a write fails.
func (c *Client) writeRequests() {
	defer c.wg.Done()
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		if err := c.conn.Flush(); err != nil {
			c.fail(err)
			return
		}
	}
}

// fail records err as the reason Requests fail, unless one is recorded
// already, fails every pending Request with it, and closes the connection.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	err = c.err
	var failed []*call
	for {
		cl, ok := c.pending.pop()
		if !ok {
			break
		}
		failed = append(failed, cl)
	}
	c.mu.Unlock()
	for _, cl := range failed {
		cl.finish(nil, err)
	}
	c.closeConn()
}

// failure returns the reason Requests fail, or nil.
func (c *Client) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// closeConn closes the connection once and returns the result.
func (c *Client) closeConn() error {
	c.closing.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// Close closes the connection, fails pending Requests with an error
// matching [net.ErrClosed], and waits for the Client's goroutines to stop.
// It returns the error from closing the connection, or nil if the
// connection had already failed (that error went to the Requests). Later
// calls return an error matching [net.ErrClosed].
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.wg.Wait()
		return errClientClosed
	}
	c.closed = true
	failed := c.err != nil
	if !failed {
		c.err = errClientClosed // no Request starts from here on
	}
	quit := c.quit
	c.mu.Unlock()

	c.fail(errClientClosed)
	err := c.closeConn()
	if quit != nil {
		close(quit)
	}
	c.wg.Wait()
	if failed {
		return nil
	}
	return err
}

// call is one Request waiting for its reply.
type call struct {
	done      chan struct{} // receives once reply or err is set
	reply     []byte
	err       error
	abandoned atomic.Bool // the caller has gone: drop the reply
}

func (cl *call) finish(reply []byte, err error) {
	cl.reply, cl.err = reply, err
	cl.done <- struct{}{}
}

// callQueue is a first-in first-out ring of calls.
type callQueue struct {
	buf  []*call
	head int
	n    int
}

func (q *callQueue) push(cl *call) {
	if q.n == len(q.buf) {
		buf := make([]*call, max(16, 2*len(q.buf)))
		k := copy(buf, q.buf[q.head:])
		copy(buf[k:], q.buf[:q.head])
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = cl
	q.n++
}

func (q *callQueue) pop() (*call, bool) {
	if q.n == 0 {
		return nil, false
	}
	cl := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return cl, true
}

// clone returns a copy of p that is never nil.
func clone(p []byte) []byte {
	q := make([]byte, len(p))
	copy(q, p)
	return q
}
