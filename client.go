package framed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

var (
	// ErrReceiveWithRequest is returned by [Client.Receive] on a Client
	// that has served a [Client.Request], and by Request on a Client that
	// has served a Receive. Request's replies are read by the Client itself,
	// so a frame taken by Receive would put every later reply out of step.
	ErrReceiveWithRequest = errors.New("framed: Receive and Request used on one Client")

	// ErrOutOfStep is returned, wrapped, by every pending and later
	// [Client.Request] once the Client can no longer tell which reply
	// answers which request: the replies owed to Requests whose context
	// ended did not come within the Dialer's LateReplyTimeout. The Client
	// has closed the connection.
	ErrOutOfStep = errors.New("framed: replies out of step with requests")

	errClientClosed    = fmt.Errorf("framed: Client closed: %w", net.ErrClosed)
	errPeerClosed      = fmt.Errorf("framed: connection closed by peer: %w", io.ErrUnexpectedEOF)
	errUnexpectedFrame = errors.New("framed: frame received with no Request waiting for it")
)

// DefaultLateReplyTimeout is how long a [Client] waits for the replies of
// Requests whose context ended, when [Dialer].LateReplyTimeout is zero.
const DefaultLateReplyTimeout = 10 * time.Second

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

	// LateReplyTimeout bounds how long the Client stays in debt: from the
	// moment a Request gives up on its reply (its context ended) until
	// every reply owed to such Requests has arrived and been dropped. Past
	// it, the Client can no longer trust that the next reply answers the
	// next request, and fails with [ErrOutOfStep]. Zero means
	// [DefaultLateReplyTimeout]; a negative value fails the Client as soon
	// as a Request gives up on a reply it is owed, as net/http closes an
	// HTTP/1 connection whose request was cancelled.
	LateReplyTimeout time.Duration

	// Probes, when on, has a Client used with Request probe a peer it has
	// received nothing from for Probes.Idle, and fail with an error
	// matching [ErrPeerSilent] when the peer stays silent (see [Probes]).
	// A Client used with Receive does not probe, but answers the peer's
	// probes while Receive reads, and never returns them. The zero value
	// turns probes off.
	Probes Probes
}

// Dial connects to the TCP address addr and returns a [Client] for it. An
// invalid Format is an error matching [ErrInvalidFormat], returned before
// any connection is made. ctx bounds connecting and the TLS handshake; once
// Dial returns, ctx no longer matters.
func (d *Dialer) Dial(ctx context.Context, addr string) (*Client, error) {
	if err := d.Format.check(); err != nil {
		return nil, err
	}
	if err := d.Probes.check(d.Format); err != nil {
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
	c := NewClient(NewConn(nc, ConnConfig{
		Format:          d.Format,
		WriteTimeout:    d.WriteTimeout,
		MaxPendingBytes: d.MaxPendingBytes,
	}))
	if d.LateReplyTimeout != 0 {
		c.lateReply = d.LateReplyTimeout
	}
	c.probe = newProber(c.conn, d.Probes, c.fail)
	return c, nil
}

// Dial connects to the TCP address addr with the zero [Dialer].
func Dial(ctx context.Context, addr string) (*Client, error) {
	return new(Dialer).Dial(ctx, addr)
}

// Client sends frames on a [Conn] and receives the peer's frames, either
// one at a time with Receive, or matched to the frames that asked for them
// with Request. A Client is used either with Receive or with Request, not
// both: the first call decides, and the other then returns
// [ErrReceiveWithRequest]. (Both read the same stream: a frame taken by
// Receive would be a reply some Request never gets.) They stay on one
// type, checked at run time, because both need the same dialing, sending
// and closing of one connection, and the check costs one branch per call
// and fails loudly the first time the two are mixed.
//
// # Requests
//
// Request is for protocols where the peer answers every request frame with
// exactly one reply frame, in order. Requests from many goroutines are
// pipelined on the one connection, and since TCP keeps order, replies are
// matched to requests first in, first out, with nothing added to the wire.
// A Request's frame is due at once: a lone Request writes it itself when
// the socket takes it at once, and pipelined Requests share the next
// write of whoever holds the Conn's write side. Replies are read by a goroutine of the Client's, started by
// the first Request, so a Request never blocks past its context on the
// network.
//
// A Request whose context ends before its reply returns the context's
// error at once. Its request may already be on the wire: the Client then
// owes that reply a place in the stream, reads it when it comes and drops
// it, so the stream stays in step. If such replies do not come within
// [Dialer].LateReplyTimeout, the Client fails with [ErrOutOfStep]. A frame
// arriving when no Request waits for one also breaks the step: the Client
// closes the connection and fails.
//
// # Send everything, then receive: a deadlock
//
// A peer that answers every frame stops reading when its replies are not
// read, and then a goroutine that sends many frames before it receives any
// blocks for good. Receive on another goroutine while you send (see the
// Client example), or use Request. Send and Receive take a context, and a
// Send that cannot queue its frame in time returns a [*StalledError] that
// says so.
//
// # Errors and closing
//
// When the connection fails (the peer closes it, a read or write fails),
// the Client closes it, and every pending and later Request returns the
// error that ended it. A peer that closes the connection is an error
// matching [io.ErrUnexpectedEOF], since the replies owed will never come.
// With [Dialer].Probes on, a peer found silent (see [Probes]) fails the
// Client the same way, with an error matching [ErrPeerSilent].
// Close closes the connection: a pending or later Request then returns an
// error matching [net.ErrClosed], as does a blocked Receive. Each of these
// Request errors also matches [ErrNotSent] when no byte of that request
// reached the network, and [ErrOutcomeUnknown] when some did: the peer may
// have acted on it. A [Redialer] retries the first kind, never the second.
//
// # Concurrency
//
// All methods may be called by any number of goroutines at once. Frames
// sent concurrently never interleave. Concurrent Receive calls take turns,
// each returning a whole frame.
type Client struct {
	conn      *Conn
	lateReply time.Duration
	probe     *prober    // nil when probes are off; runs once Requests start
	recvMu    sync.Mutex // one Receive reads at a time
	calls     sync.Pool  // of *call, reused once their reply is taken

	mu      sync.Mutex
	mode    clientMode
	pending callQueue // Requests waiting for replies, oldest first; dropped for those whose caller has gone
	debt    debt      // the replies owed to dropped entries of pending
	err     error     // why Requests fail; set once
	closed  bool

	wg       sync.WaitGroup // the reader
	closing  sync.Once
	closeErr error  // from closing conn
	onFail   func() // if not nil, called after every fail; set before use
}

type clientMode int

const (
	modeUnset clientMode = iota
	modeReceive
	modeRequest
)

// NewClient returns a Client that sends and receives on c, with
// [DefaultLateReplyTimeout]. The Client owns c: closing the Client closes
// c. Nothing else may read from c.
func NewClient(c *Conn) *Client {
	return &Client{conn: c, lateReply: DefaultLateReplyTimeout}
}

// Send sends msg as one frame, as [Conn.WriteFrame] does: it returns once
// the frame is queued, and frames sent back to back share system calls.
// msg is copied, whatever its size. With Request, Send is for messages
// the peer does not answer.
//
// A ctx that is done before msg is queued returns ctx's error and sends
// nothing. When the queue is full because the peer is not reading, Send
// waits for room until ctx ends or the write deadline passes, and then
// returns a [*StalledError] (matching [ErrPeerStalled] and ctx's error)
// with nothing sent; the Client stays usable. A msg longer than the
// Format's limit is a [*FrameTooLargeError]; nothing is sent and the Client
// stays usable.
func (c *Client) Send(ctx context.Context, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.conn.q.send(ctx, nil, msg, sendStream, nil); err != nil {
		return c.writeFailure(err)
	}
	return nil
}

// writeFailure returns the error a Send or Request reports when its frame
// could not be queued: err itself when the Client stays usable, and
// otherwise the reason the Client failed.
func (c *Client) writeFailure(err error) error {
	if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrPeerStalled) || errors.Is(err, ErrInvalidFormat) {
		return err
	}
	if c.conn.q.failure() != nil {
		c.fail(err) // the write side has failed
	}
	if failed := c.failure(); failed != nil {
		return failed
	}
	return err
}

// Receive returns the next frame from the peer, in a new slice that is the
// caller's to keep. It returns [io.EOF] when the peer has closed the
// connection exactly between frames, an error matching [net.ErrClosed]
// after Close, and [ErrReceiveWithRequest] on a Client used with Request.
//
// When ctx ends first, Receive returns ctx's error; the bytes of a frame
// partly received are kept, and the next Receive goes on with that frame.
// Other errors are those of [Conn.ReadFrame]; after them the connection is
// unusable.
func (c *Client) Receive(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
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
	bounded := ctx.Done() != nil && (c.probe != nil || !c.conn.rd.frameBuffered())
	if bounded {
		defer c.boundRead(ctx)()
	}
	p, err := c.conn.ReadFrame()
	for err == nil && c.probe != nil && c.probe.is(p) {
		c.probe.onProbe() // answered, never returned
		p, err = c.conn.ReadFrame()
	}
	if err != nil {
		var ne net.Error
		if bounded && errors.As(err, &ne) && ne.Timeout() {
			// Only ctx sets this Conn's read deadline: it has ended, or
			// its timer is about to say so.
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, err
	}
	return clone(p), nil
}

// boundRead makes a read that is about to start end when ctx does, with a
// read deadline, and returns the function that undoes that.
func (c *Client) boundRead(ctx context.Context) (undo func()) {
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(dl)
	}
	var mu sync.Mutex
	finished := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		if !finished {
			c.conn.SetReadDeadline(aLongTimeAgo)
		}
		mu.Unlock()
	})
	return func() {
		stop()
		mu.Lock()
		finished = true
		c.conn.SetReadDeadline(time.Time{})
		mu.Unlock()
	}
}

// Request sends msg as one frame and returns the peer's reply, in a new
// slice that is the caller's to keep. It is safe to call from many
// goroutines: their requests are pipelined, and each gets its own reply.
// msg is copied, whatever its size.
//
// A ctx that is done before msg is queued returns ctx's error and sends
// nothing; so does a ctx that ends while the queue is full, as a
// [*StalledError]. A ctx that ends later returns ctx's error at once; the
// request may have been sent, and its reply will be dropped (see
// [Client]). A msg longer than the Format's limit is a
// [*FrameTooLargeError]: nothing is sent and the Client stays usable. Other
// errors mean the Client has failed; see [Client].
func (c *Client) Request(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.startRequests(); err != nil {
		return nil, c.notSent(err)
	}
	cl, _ := c.calls.Get().(*call)
	if cl == nil {
		cl = &call{done: make(chan struct{}, 1)}
	}
	// A lone Request writes its frame itself, with no hand-off; pipelined
	// ones share the writes of the Conn's writer goroutine.
	err := c.conn.q.send(ctx, nil, msg, sendNow, func() (lone bool, err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			return false, c.err
		}
		cl.start = c.conn.q.queued // where the frame begins in the stream
		c.pending.push(cl)
		return c.pending.n == 1, nil
	})
	if err != nil {
		c.calls.Put(cl) // never queued
		return nil, c.notSent(c.writeFailure(err))
	}

	select {
	case <-cl.done:
	case <-ctx.Done():
		if c.abandon(cl) {
			c.calls.Put(cl) // the queue no longer holds it
			return nil, ctx.Err()
		}
		<-cl.done // the reader has taken its reply and is handing it over
	}
	// The reader is done with cl: reuse it.
	reply, err := cl.reply, cl.err
	cl.reply, cl.err = nil, nil
	c.calls.Put(cl)
	return reply, err
}

// abandon puts dropped in cl's place in the queue, so that its reply is
// read and dropped, unless the reader has taken cl already. It reports
// whether cl was abandoned.
func (c *Client) abandon(cl *call) bool {
	c.mu.Lock()
	if !c.pending.replace(cl, dropped) {
		c.mu.Unlock()
		return false
	}
	if c.err != nil {
		c.mu.Unlock()
		return true
	}
	if c.lateReply < 0 {
		c.mu.Unlock()
		c.fail(fmt.Errorf("%w: a Request gave up on its reply", ErrOutOfStep))
		return true
	}
	c.debt.owe(c.lateReply, c.outOfStep)
	c.mu.Unlock()
	return true
}

// outOfStep fails the Client when the replies it owes have not come
// within LateReplyTimeout. The debt's timer calls it.
func (c *Client) outOfStep() {
	c.mu.Lock()
	err := c.debt.overdue(c.lateReply)
	c.mu.Unlock()
	if err != nil {
		c.fail(err)
	}
}

// debt is what a Client owes the stream: the replies of Requests whose
// callers gave up, which it must read and drop to stay in step. It is
// guarded by the Client's mu.
type debt struct {
	owed  int         // the dropped entries in the Client's pending queue
	since time.Time   // when owed last went from 0 to 1
	timer *time.Timer // runs while owed > 0, and fails the Client when it fires
}

// owe adds one reply to the debt, starting the timer when it is the first.
func (d *debt) owe(limit time.Duration, expire func()) {
	d.owed++
	if d.owed > 1 {
		return
	}
	d.since = time.Now()
	if d.timer == nil {
		d.timer = time.AfterFunc(limit, expire)
	} else {
		d.timer.Reset(limit)
	}
}

// pay takes one reply off the debt, stopping the timer when it is the last.
func (d *debt) pay() {
	d.owed--
	if d.owed == 0 {
		d.timer.Stop()
	}
}

// clear forgets the debt: the Client has failed.
func (d *debt) clear() {
	d.owed = 0
	if d.timer != nil {
		d.timer.Stop()
	}
}

// overdue returns [ErrOutOfStep], wrapped, when replies have been owed
// for limit. A timer that fires late, for a debt paid and owed again
// since, sets itself for the rest of the new debt's time instead.
func (d *debt) overdue(limit time.Duration) error {
	if d.owed == 0 {
		return nil
	}
	if left := limit - time.Since(d.since); left > 0 {
		d.timer.Reset(left)
		return nil
	}
	return fmt.Errorf("%w: the replies owed to %d Requests that gave up did not come within %v",
		ErrOutOfStep, d.owed, limit)
}

// startRequests starts the reader on the first Request.
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
	c.wg.Add(1)
	go c.readReplies()
	if c.probe != nil {
		c.probe.start()
	}
	return nil
}

// readReplies hands each frame read to the oldest pending Request, until
// the connection fails or is closed.
func (c *Client) readReplies() {
	defer c.wg.Done()
	for {
		p, err := c.conn.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A deadline set on the Conn before NewClient: the Client
				// owns the Conn now, and reads with none.
				c.conn.SetReadDeadline(time.Time{})
				continue
			}
			c.fail(c.readFailure(err))
			return
		}
		if c.probe != nil && c.probe.is(p) {
			c.probe.onProbe() // not a reply
			continue
		}
		c.mu.Lock()
		cl, ok := c.pending.pop()
		if ok && cl == dropped {
			c.debt.pay()
		}
		c.mu.Unlock()
		switch {
		case !ok:
			c.fail(errUnexpectedFrame)
			return
		case cl != dropped:
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
		if werr := c.conn.q.failure(); werr != nil {
			return werr
		}
	}
	return err
}

// fail records err as the reason Requests fail, unless one is recorded
// already, closes the connection, and fails every pending Request with it,
// marked [ErrNotSent] or [ErrOutcomeUnknown].
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	err = c.err
	c.mu.Unlock()
	// Closed first, so that no byte goes out after written is read.
	c.closeConn()
	written := c.conn.q.sent()
	c.mu.Lock()
	var failed []*call
	for {
		cl, ok := c.pending.pop()
		if !ok {
			break
		}
		if cl != dropped {
			failed = append(failed, cl)
		}
	}
	c.debt.clear()
	c.mu.Unlock()
	for _, cl := range failed {
		cl.finish(nil, outcome(err, cl.start, written))
	}
	if c.onFail != nil {
		c.onFail()
	}
	if c.probe != nil {
		c.probe.halt() // the prober may be the caller: Close waits for it
	}
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
	c.mu.Unlock()

	c.fail(errClientClosed)
	err := c.closeConn()
	c.wg.Wait()
	if c.probe != nil {
		c.probe.close()
	}
	if failed {
		return nil
	}
	return err
}

// call is one Request waiting for its reply.
type call struct {
	done  chan struct{} // receives once reply or err is set
	reply []byte
	err   error
	start int64 // the stream position of the request's first byte
}

// dropped stands in the pending queue for a Request whose caller has gone:
// its reply is read and dropped.
var dropped = new(call)

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

// replace puts with in cl's place, and reports whether cl was queued.
func (q *callQueue) replace(cl, with *call) bool {
	for i := range q.n {
		if j := (q.head + i) % len(q.buf); q.buf[j] == cl {
			q.buf[j] = with
			return true
		}
	}
	return false
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
