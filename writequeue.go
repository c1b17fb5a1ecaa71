package framed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// directWriteSize is the payload size from which WriteFrame writes a frame
// from the caller's slice (one vectored write with the bytes queued before
// it) instead of copying it into the queue.
const directWriteSize = 64 << 10

// batchSize is how many bytes a stream of frames gathers before they are
// written: a bufio.Writer of this size makes as many system calls.
const batchSize = 64 << 10

// streamQuiet is how long a stream adds no frame before the frames it left
// waiting are written, and how long the network must have been written
// nothing for a frame to count as lone and go out at once.
const streamQuiet = 50 * time.Microsecond

// keepQueueCap is the largest queue buffer a write queue keeps while
// nothing is being written. While writes go on it keeps its buffers up to
// twice MaxPendingBytes, so a busy Conn does not grow a new one for every
// write.
const keepQueueCap = 64 << 10

var (
	// errWriteClosed is returned by writes after CloseWrite.
	errWriteClosed = fmt.Errorf("framed: write after CloseWrite: %w", net.ErrClosed)

	// errConnClosed is returned by writes after Close.
	errConnClosed = fmt.Errorf("framed: write: %w", net.ErrClosed)

	// ErrPeerStalled matches every [*StalledError].
	ErrPeerStalled = errors.New("framed: peer is not reading")
)

// StalledError reports a write that gave up because the peer took no
// bytes: a writer that waited for room in a full queue until its deadline
// or context ended (nothing of its frame was queued, and the Conn stays
// usable), or a network write that timed out (the Conn is closed). It
// matches [ErrPeerStalled], and with [errors.Is] also the cause it wraps:
// [os.ErrDeadlineExceeded] or the context's error.
type StalledError struct {
	Pending int           // bytes queued and not yet taken by the network
	Waited  time.Duration // how long the writer waited for room, or the network write ran
	Err     error         // why it stopped waiting
}

// Error names the bytes waiting, the time waited and the cause.
func (e *StalledError) Error() string {
	return "framed: peer is not reading: " + strconv.Itoa(e.Pending) +
		" bytes queued, waited " + e.Waited.Round(time.Millisecond).String() + ": " + e.Err.Error()
}

// Is reports whether target is [ErrPeerStalled].
func (e *StalledError) Is(target error) bool { return target == ErrPeerStalled }

// Unwrap returns the cause.
func (e *StalledError) Unwrap() error { return e.Err }

// Timeout reports whether the cause is a timeout, as [net.Error] does.
func (e *StalledError) Timeout() bool { return errors.Is(e.Err, os.ErrDeadlineExceeded) }

// writeState is where a write queue is in its life: open, then closing
// (CloseWrite drains the queue) and shut (the FIN is sent), or failed (a
// write failed, or the Format is invalid), or closed (Close).
type writeState uint8

const (
	writeOpen writeState = iota
	writeClosing
	writeShut
	writeFailed
	writeClosed
)

// admits reports whether new frames are taken.
func (s writeState) admits() bool { return s == writeOpen }

// writes reports whether frames already taken still go out.
func (s writeState) writes() bool { return s == writeOpen || s == writeClosing }

// writeCounts is what a server counts of a connection's writes.
type writeCounts struct {
	frames atomic.Int64 // frames admitted for which the writer was, or will be, told nil
	bytes  atomic.Int64 // bytes written, or being written, to the network
}

// writeToken is the right to write to the network, and what its holder does
// with it.
type writeToken uint8

const (
	tokenFree    writeToken = iota // nobody holds it: the next writer takes it
	tokenHeld                      // held, with no write in flight
	tokenTrying                    // a write that never blocks is in flight
	tokenWriting                   // a write that may block is in flight
)

// held reports whether somebody holds the token.
func (t writeToken) held() bool { return t != tokenFree }

// sendKind says how soon a frame goes out.
type sendKind uint8

const (
	// sendStream is a frame of WriteFrame or Send: it goes out at once if
	// it is lone, and otherwise with the frames around it, once a batch
	// has gathered, the stream goes quiet, or someone flushes or reads.
	sendStream sendKind = iota
	// sendNow is a Request's frame: its caller waits for the reply, so the
	// frame is due at once, and shares the write of the frames queued with it.
	sendNow
	// sendDirect is a frame whose large body is written from the caller's
	// slice: due at once, and the caller waits until it is written.
	sendDirect
)

// writeQueue is a Conn's write side: the frames waiting to go out, who
// writes them, and how the write side ends.
//
// # Who writes
//
// One goroutine at a time owns the socket: it takes the write token
// (tok) under mu, writes with mu released, and hands the token back
// with releaseLocked. Only writeOutLocked writes to the network, with one
// blocking write or one try that never blocks. Any of these may hold the
// token: a caller writing a lone frame or a Request inline (a try), a
// Flush, CloseWrite or a writer of a large frame (blocking: they wait for
// the bytes anyway), a writer making room in a full queue, Close (a last
// try), and the writer goroutine, which runs while frames wait and writes
// those no caller writes.
//
// # When
//
// Frames are appended to buf. Bytes up to the stream position due must go
// out now; those past it wait for more. A frame is due at once when it is
// lone (the queue is empty, and the peer has spoken or the network has
// been quiet since the last write), a Request, or large; a stream's frames
// become due when a batch has gathered, when the stream adds no frame for
// streamQuiet, and when someone flushes, closes, or reads from the peer.
// So a goroutine writing frames back to back makes as many system calls
// as a bufio loop, however the scheduler runs it, and a lone frame is
// never delayed.
type writeQueue struct {
	// Set by init, then only read.
	nc           net.Conn
	f            Format
	limit        int
	lf           lengthField // the Format's, worked out once
	hdrMax       int         // the most bytes a frame adds to its length
	minLen       int         // the shortest frame the Format can write
	writeTimeout time.Duration
	maxPending   int
	batch        int                       // bytes at which a stream's frames are due
	try          func([]byte) (int, error) // one write that never blocks, or nil
	runFn        func()                    // run, made once so that starting it does not allocate
	peer         *countingReader           // what the read side knows of the peer, or nil
	counts       *writeCounts              // set by a server before use, or nil
	wake         chan struct{}             // wakes the writer goroutine from its wait for quiet

	// streamWaiting is set while stream frames wait to become due, so
	// that a reader about to wait for the peer sends them first.
	streamWaiting atomic.Bool

	mu        sync.Mutex
	state     writeState
	err       error         // why the queue is failed or closed
	buf       []byte        // frames waiting: headers and copied payloads
	large     []directFrame // payloads written from the caller's slice, in order
	pending   int           // bytes waiting: buf and the large payloads
	queued    int64         // stream position: bytes ever admitted
	due       int64         // stream position up to which bytes must go out now
	written   int64         // stream position: bytes the network has taken
	tok       writeToken    // who may write to the network
	writer    bool          // the writer goroutine runs
	corked    bool          // hold frames until uncork or Flush
	midFrame  bool          // the bytes written end inside a frame: closing must reset
	ncClosed  bool          // the connection is closed, by Close or a failed write
	lastWrite time.Time     // when the last write ended
	dl        writeDeadline
	changed   chan struct{} // closed when something a waiter waits for changes, if one waits
	done      sync.WaitGroup

	// A probe the prober waits to see written, under mu: see sendProbe.
	probeEnd int64           // the stream position it ends at; 0 when none
	probeOut chan<- struct{} // told when written reaches probeEnd

	// Used by the token's holder alone.
	spare      []byte // the other buffer
	spareLarge []directFrame
	iov        net.Buffers

	quiet *time.Timer // used by the writer goroutine alone
}

// writeDeadline is a write queue's deadline, guarded by its mu. One timer
// says when it passes, for the writers that wait for room and for Flush;
// the deadline set on the connection bounds the write in flight.
type writeDeadline struct {
	at     time.Time   // the deadline SetWriteDeadline set; zero is none
	passed bool        // at has passed: admit nothing
	timer  *time.Timer // sets passed when at comes
	onConn time.Time   // the deadline set on the connection now
}

// directFrame is a payload the queue writes from the caller's slice, right
// after buf[:at].
type directFrame struct {
	at int
	p  []byte
}

// init sets q up to write frames on nc as cfg says.
func (q *writeQueue) init(nc net.Conn, cfg ConnConfig) {
	q.nc = nc
	q.f = cfg.Format
	q.limit = cfg.Format.Limit()
	q.lf = cfg.Format.field()
	q.hdrMax = cfg.Format.maxHeaderSize()
	q.minLen = cfg.Format.LengthOffset + max(cfg.Format.LengthAdjust, 0)
	q.writeTimeout = cfg.WriteTimeout
	q.maxPending = cfg.MaxPendingBytes
	if q.maxPending <= 0 {
		q.maxPending = DefaultMaxPendingBytes
	}
	q.batch = min(batchSize, q.maxPending)
	q.try = socketTryWrite(nc)
	q.runFn = q.run
	q.wake = make(chan struct{}, 1)
	if err := cfg.Format.check(); err != nil {
		q.state, q.err = writeFailed, err
	}
}

// errLocked returns why frames cannot be admitted, or nil.
func (q *writeQueue) errLocked() error {
	switch q.state {
	case writeOpen:
		return nil
	case writeClosing, writeShut:
		return errWriteClosed
	}
	return q.err
}

// send admits head followed by body as one frame and sees that it goes out
// as kind says. It waits while the queue is full until there is room, the
// write deadline passes, or ctx ends; then nothing is queued, and the
// error is a [*StalledError]. admit, if not nil, is called with mu held
// just before the frame takes its place: an error from it queues nothing,
// and true lets the frame be written inline (a lone Request). A
// sendDirect frame returns once written, since the queue holds its body.
func (q *writeQueue) send(ctx context.Context, head, body []byte, kind sendKind, admit func() (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := len(head) + len(body)
	if n > q.limit || n < q.minLen {
		err := q.f.checkWrite(n, q.limit)
		if ferr := q.f.check(); ferr != nil {
			err = ferr // the limit of an invalid Format means nothing
		}
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.state.admits() || q.dl.passed || q.pending+q.hdrMax+n > q.maxPending {
		if err := q.admitLocked(ctx, q.hdrMax+n); err != nil {
			return err
		}
	}
	inline := true
	if admit != nil {
		var err error
		if inline, err = admit(); err != nil {
			return err
		}
	}
	lone := kind == sendStream && q.loneLocked()
	end := q.appendLocked(head, body, kind == sendDirect)
	if q.counts != nil {
		q.counts.frames.Add(1) // before it goes out, so a peer never sees a frame not yet counted
	}
	switch {
	case kind == sendDirect:
		return q.awaitLocked(end)
	case kind == sendNow:
		q.dueLocked()
		q.writeSoonLocked(inline)
	case lone || q.pending >= q.batch:
		q.dueLocked()
		q.writeSoonLocked(true)
	default:
		if !q.streamWaiting.Load() {
			q.streamWaiting.Store(true)
		}
		q.settleLocked() // the writer goroutine waits for the stream to go quiet
	}
	return nil
}

// admitLocked waits until a frame of need bytes may be queued, and says
// why not if it may not.
func (q *writeQueue) admitLocked(ctx context.Context, need int) error {
	var start time.Time
	for {
		if !q.state.admits() {
			return q.errLocked()
		}
		if q.pending == 0 || q.pending+need <= q.maxPending {
			break
		}
		if q.dl.passed {
			return &StalledError{Pending: q.pending, Waited: since(start), Err: os.ErrDeadlineExceeded}
		}
		// Full: what waits is due, to make room.
		q.dueLocked()
		if !q.tok.held() && (q.corked || ctx.Done() == nil) {
			// A writer with no context to honour makes room itself, as
			// a bufio.Writer does, and so does a corked server handler.
			q.tok = tokenHeld
			q.writeOutLocked(true)
			q.releaseLocked()
			continue
		}
		q.settleLocked()
		if start.IsZero() {
			start = time.Now()
		}
		if q.waitLocked(ctx.Done()) != nil {
			return &StalledError{Pending: q.pending, Waited: time.Since(start), Err: ctx.Err()}
		}
	}
	if q.dl.passed {
		return fmt.Errorf("framed: write: %w", os.ErrDeadlineExceeded)
	}
	return nil
}

// since returns the time since start, or zero when start is zero.
func since(start time.Time) time.Duration {
	if start.IsZero() {
		return 0
	}
	return time.Since(start)
}

// loneLocked reports whether a frame admitted now is lone: nothing is
// queued or being written, the reader is not in the middle of frames that
// arrived together, and the peer has spoken or the network has been quiet
// since the last write. Such a frame (a request, a reply, a heartbeat)
// goes out at once.
func (q *writeQueue) loneLocked() bool {
	if q.pending > 0 || q.tok.held() || q.corked {
		return false
	}
	if q.peer == nil {
		return time.Since(q.lastWrite) >= streamQuiet
	}
	if q.peer.more.Load() {
		return false // more answers follow: they go out when the reader must wait
	}
	return q.peer.heard.Load() && q.peer.heard.Swap(false) || time.Since(q.lastWrite) >= streamQuiet
}

// appendLocked appends head followed by body as one frame, and returns the
// stream position just past it. With direct, a large body is written from
// the caller's slice instead of being copied.
func (q *writeQueue) appendLocked(head, body []byte, direct bool) (end int64) {
	n := len(head) + len(body)
	buf := q.buf // one store back to q.buf, not one per append
	before := len(buf)
	off := q.lf.off
	if off > 0 {
		buf = appendSpan(buf, head, body, 0, off) // the bytes before the length field
	}
	buf = q.lf.append(buf, n)
	size := 0
	if direct && len(body) >= directWriteSize {
		from := max(off, len(head))
		buf = appendSpan(buf, head, body, off, from)
		p := body[from-len(head):]
		q.large = append(q.large, directFrame{at: len(buf), p: p})
		size = len(p)
	} else {
		buf = appendSpan(buf, head, body, off, n)
	}
	size += len(buf) - before
	q.buf = buf
	q.pending += size
	q.queued += int64(size)
	return q.queued
}

// appendSpan appends bytes [from, to) of head followed by body to dst.
func appendSpan(dst, head, body []byte, from, to int) []byte {
	if from < len(head) {
		dst = append(dst, head[from:min(to, len(head))]...)
	}
	if to > len(head) {
		dst = append(dst, body[max(from-len(head), 0):to-len(head)]...)
	}
	return dst
}

// dueLocked makes every byte queued due.
func (q *writeQueue) dueLocked() {
	q.due = q.queued
	if q.streamWaiting.Load() {
		q.streamWaiting.Store(false)
	}
}

// writeSoonLocked sees that what is due goes out: inline, with a try in
// the caller's goroutine, when inline is set and nobody else writes, and
// otherwise by the token's holder or the writer goroutine.
func (q *writeQueue) writeSoonLocked(inline bool) {
	if inline && q.try != nil && !q.tok.held() && !q.corked && len(q.large) == 0 && q.state.writes() {
		q.tok = tokenHeld
		q.writeOutLocked(false)
		q.releaseLocked()
		return
	}
	q.settleLocked()
}

// releaseLocked hands the write token back, and sees that what is left is
// written.
func (q *writeQueue) releaseLocked() {
	q.tok = tokenFree
	q.broadcastLocked()
	q.settleLocked()
}

// settleLocked sees that frames waiting will go out: it starts the writer
// goroutine, or wakes it when frames are due. The token's holder does this
// when it hands the token back, and a corked queue waits for uncork.
func (q *writeQueue) settleLocked() {
	if q.tok.held() || q.corked || q.pending == 0 || !q.state.writes() {
		return
	}
	if !q.writer {
		q.writer = true
		q.done.Add(1)
		go q.runFn()
		return
	}
	if q.due > q.written {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// run is the writer goroutine. It writes what is due and nobody else
// writes, waits for a stream to go quiet, and exits once nothing waits,
// so an idle connection has none.
func (q *writeQueue) run() {
	defer q.done.Done()
	q.mu.Lock()
	defer q.mu.Unlock()
	yielded := false
	for q.state.writes() && q.pending > 0 && !q.corked {
		switch {
		case q.tok.held():
			q.waitLocked(nil) // until the holder hands the token back
		case q.due > q.written && !yielded:
			// Goroutines made runnable together (Requests whose replies
			// were just read, say) queue their frames before this one
			// writes, and share the write.
			yielded = true
			q.mu.Unlock()
			runtime.Gosched()
			q.mu.Lock()
		case q.due > q.written:
			q.tok = tokenHeld
			q.writeOutLocked(true)
			q.tok = tokenFree
			q.broadcastLocked()
		default:
			q.waitQuietLocked()
		}
	}
	q.writer = false
}

// waitQuietLocked waits until the stream adds no frame for streamQuiet,
// and then makes its frames due, or until something else is due. It runs
// in the writer goroutine, with mu held on entry and on return.
func (q *writeQueue) waitQuietLocked() {
	mark := q.queued
	q.mu.Unlock()
	if q.quiet == nil {
		q.quiet = time.NewTimer(streamQuiet)
	} else {
		q.quiet.Reset(streamQuiet)
	}
	fired := false
	select {
	case <-q.quiet.C:
		fired = true
	case <-q.wake:
		q.quiet.Stop()
	}
	q.mu.Lock()
	if fired && q.queued == mark {
		q.dueLocked()
	}
}

// awaitLocked waits until the stream position end is written, writing
// itself when nobody else does: the queue holds a caller's slice up to
// there. It returns the error that kept it from the network.
func (q *writeQueue) awaitLocked(end int64) error {
	q.dueLocked()
	for q.written < end && q.state.writes() {
		if !q.tok.held() {
			q.tok = tokenHeld
			q.writeOutLocked(true)
			q.releaseLocked()
			continue
		}
		q.waitLocked(nil)
	}
	for q.tok.held() && q.written < end {
		q.waitLocked(nil) // until the slice is no longer in a write
	}
	if q.written >= end {
		return nil
	}
	if q.counts != nil {
		q.counts.frames.Add(-1)
	}
	return q.errLocked()
}

// flush is [Conn.Flush]: it waits until every byte queued before it was
// called is written, writing them itself when nobody else is.
func (q *writeQueue) flush() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.flushLocked()
}

func (q *writeQueue) flushLocked() error {
	target := q.queued
	q.dueLocked()
	for q.written < target && q.state.writes() {
		if !q.tok.held() {
			q.tok = tokenHeld
			q.writeOutLocked(true)
			q.releaseLocked()
			continue
		}
		if q.dl.passed {
			return fmt.Errorf("framed: flush: %w", os.ErrDeadlineExceeded)
		}
		q.waitLocked(nil)
	}
	if q.state.writes() || q.state == writeShut {
		return nil // every frame queued before the FIN is on the wire
	}
	return q.errLocked()
}

// writeOutLocked takes what is queued and writes it: with one write that
// may block, or with one try that writes only what the socket takes at
// once and puts the rest back. These are the only writes to the network.
// The caller holds the token and mu; mu is released during the write.
func (q *writeQueue) writeOutLocked(blocking bool) {
	b, large := q.buf, q.large
	q.buf, q.spare = q.spare[:0], nil
	q.large, q.spareLarge = q.spareLarge[:0], nil
	size := q.pending
	q.pending = 0
	q.broadcastLocked() // the queue has room again
	if q.counts != nil {
		q.counts.bytes.Add(int64(size)) // before the write, so a peer never sees bytes not yet counted
	}
	var began time.Time
	at := q.dl.at
	if blocking && q.writeTimeout > 0 {
		began = time.Now()
		if bound := began.Add(q.writeTimeout); at.IsZero() || bound.Before(at) {
			at = bound
		}
	} else if blocking && !at.IsZero() {
		began = time.Now()
	}
	var err error
	if !at.Equal(q.dl.onConn) {
		q.dl.onConn = at
		err = q.nc.SetWriteDeadline(at)
	}
	q.tok = tokenTrying
	if blocking {
		q.tok = tokenWriting
	}
	q.mu.Unlock()

	var n int64
	switch {
	case err != nil:
	case !blocking:
		var k int
		k, err = q.try(b)
		n = int64(k)
	case len(large) == 0:
		var k int
		k, err = q.nc.Write(b)
		n = int64(k)
	default:
		iov := q.buffers(b, large)
		full := iov
		n, err = iov.WriteTo(q.nc)
		clear(full) // keep no reference to the callers' payloads
		q.iov = full[:0]
	}
	end := time.Now()

	q.mu.Lock()
	q.tok = tokenHeld
	q.lastWrite = end
	q.written += n
	if q.probeEnd > 0 && q.written >= q.probeEnd {
		q.probeWrittenLocked()
	}
	rest := size - int(n)
	if q.counts != nil {
		q.counts.bytes.Add(-int64(rest))
	}
	switch {
	case rest == 0:
		q.midFrame = false // a batch is whole frames
	case n > 0:
		q.midFrame = true // perhaps: the rest is written, or the connection reset
	}
	if err == nil && rest > 0 {
		// A try the socket did not take whole: put the rest back in
		// front of what was queued meanwhile, in b, and move the places
		// of large frames queued meanwhile with it.
		b = append(b[:copy(b, b[n:])], q.buf...)
		for i := range q.large {
			q.large[i].at += rest
		}
		q.buf, b = b, q.buf
		q.pending += rest
	}
	if cap(b) <= 2*q.maxPending+directWriteSize {
		q.spare = b[:0] // busy: keep it; release drops it when idle
	}
	clear(large)
	q.spareLarge = large[:0]
	if err != nil && q.state.writes() {
		q.failLocked(q.writeError(err, rest, since(began)))
	}
	q.broadcastLocked()
}

// sendProbe queues a probe, or an answer to one, with payload p, and sees
// that it goes out at once: the frames held before it go with it. Its
// size is known to fit the Format (Probes.check). A probe is admitted past
// MaxPendingBytes, so that the prober never blocks on a full queue (a
// stalled writer is WriteTimeout's to report), and is written inline with
// a try even in a corked queue when nobody holds the token. When written
// is not nil, it is told once the network has taken the probe's last
// byte: that is when the probe's timeout starts.
func (q *writeQueue) sendProbe(p []byte, written chan<- struct{}) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.errLocked(); err != nil {
		return err
	}
	end := q.appendLocked(nil, p, false)
	if written != nil {
		q.probeEnd, q.probeOut = end, written
	}
	q.dueLocked()
	if q.try != nil && !q.tok.held() && len(q.large) == 0 {
		q.tok = tokenHeld
		q.writeOutLocked(false)
		q.releaseLocked()
		return nil
	}
	q.settleLocked()
	return nil
}

// probeWrittenLocked tells the prober waiting for it that its probe has
// been taken by the network. writeOutLocked calls it when written passes
// probeEnd: one comparison per network write, none per frame.
func (q *writeQueue) probeWrittenLocked() {
	q.probeEnd = 0
	select {
	case q.probeOut <- struct{}{}:
	default:
	}
}

// buffers returns b with the large payloads in their places, for one
// vectored write.
func (q *writeQueue) buffers(b []byte, large []directFrame) net.Buffers {
	iov := q.iov[:0]
	at := 0
	for _, d := range large {
		if d.at > at {
			iov = append(iov, b[at:d.at])
		}
		iov = append(iov, d.p)
		at = d.at
	}
	if at < len(b) {
		iov = append(iov, b[at:])
	}
	return iov
}

// writeError is the error a failed network write leaves on the queue.
func (q *writeQueue) writeError(err error, unsent int, ran time.Duration) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("framed: write: %w", &StalledError{Pending: unsent, Waited: ran, Err: err})
	}
	return fmt.Errorf("framed: write: %w", err)
}

// failLocked records the first write error and closes the connection, with
// a reset if a frame was cut: the stream cannot go on. It is called by the
// token's holder, which keeps the token while mu is released to close.
func (q *writeQueue) failLocked(err error) {
	q.state, q.err = writeFailed, err
	q.dropLocked()
	if q.ncClosed {
		return
	}
	q.ncClosed = true
	reset := q.midFrame
	q.mu.Unlock()
	if reset {
		resetConn(q.nc)
	}
	q.nc.Close()
	q.mu.Lock()
}

// resetConn makes closing c send a TCP reset instead of a FIN, so that a
// peer never reads a clean end of the stream inside a frame. It does
// nothing for a connection that is not TCP underneath.
func resetConn(c net.Conn) {
	if w, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = w.NetConn() // *tls.Conn
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

// dropLocked empties the queue.
func (q *writeQueue) dropLocked() {
	q.buf = q.buf[:0]
	clear(q.large)
	q.large = q.large[:0]
	q.pending = 0
	q.due = q.queued
	q.streamWaiting.Store(false)
	q.broadcastLocked()
}

// totals returns the frames and bytes counted, when a server counts them.
func (q *writeQueue) totals() (frames, bytes int64) {
	if q.counts == nil {
		return 0, 0
	}
	return q.counts.frames.Load(), q.counts.bytes.Load()
}

// sent returns the stream position the network has taken. Once the
// queue is closed, it no longer moves.
func (q *writeQueue) sent() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.written
}

// busy reports whether bytes are being written, or queued and not held
// by cork: the peer hears from us without a probe.
func (q *writeQueue) busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.tok.held() || (q.pending > 0 && !q.corked)
}

// failure returns the error a failed write left, or nil.
func (q *writeQueue) failure() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state == writeFailed {
		return q.err
	}
	return nil
}

// closed reports whether the connection is closed, by Close or by a
// failed write.
func (q *writeQueue) closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ncClosed
}

// closeWrite is [Conn.CloseWrite] once the connection is known to have a
// CloseWrite method: no more frames are admitted, the queue drains, and
// shut sends the FIN.
func (q *writeQueue) closeWrite(shut func() error) error {
	q.mu.Lock()
	if q.state == writeOpen {
		q.state = writeClosing
		q.broadcastLocked()
	}
	if q.state != writeClosing {
		err := q.errLocked()
		q.mu.Unlock()
		return err
	}
	if err := q.flushLocked(); err != nil {
		q.mu.Unlock()
		return err
	}
	for q.tok.held() && q.state == writeClosing {
		q.waitLocked(nil) // a write of nothing of ours may still be in flight
	}
	if q.state != writeClosing {
		err := q.errLocked()
		q.mu.Unlock()
		return err
	}
	q.state = writeShut
	q.broadcastLocked()
	q.mu.Unlock()
	return shut()
}

// close closes the connection, and waits for the writer goroutine. A write
// in flight is stopped at once; what is queued is written first when the
// socket takes it at once, and otherwise dropped. If the bytes written
// then end inside a frame, the connection is reset rather than closed, so
// the peer reads a reset, never a clean end inside a frame.
func (q *writeQueue) close() error {
	q.mu.Lock()
	if q.state == writeClosed {
		q.mu.Unlock()
		return fmt.Errorf("framed: close: %w", net.ErrClosed)
	}
	// Closed from here on, for every other caller, a second Close
	// included, also while the last write below is in flight.
	q.state, q.err = writeClosed, errConnClosed
	closeErr := fmt.Errorf("framed: close: %w", net.ErrClosed) // by a write that failed
	q.broadcastLocked()
	select {
	case q.wake <- struct{}{}: // the writer goroutine, if it waits for quiet
	default:
	}
	if q.dl.timer != nil {
		q.dl.timer.Stop()
	}
	if q.tok == tokenWriting && !q.ncClosed {
		// A write that may block is in flight: closing the connection
		// stops it, and since it may stop inside a frame, the connection
		// is reset. (A try ends by itself at once: wait for it.)
		q.ncClosed = true
		q.mu.Unlock()
		resetConn(q.nc)
		q.nc.Close()
		q.mu.Lock()
		q.ncClosed = true
		closeErr = nil
	}
	for q.tok.held() {
		q.waitLocked(nil)
	}
	if q.pending > 0 && q.try != nil && len(q.large) == 0 && !q.ncClosed {
		q.tok = tokenHeld
		q.writeOutLocked(false) // what the socket takes at once; an error is moot
		q.tok = tokenFree
	}
	q.dropLocked()
	wasClosed, reset := q.ncClosed, q.midFrame
	q.ncClosed = true
	q.mu.Unlock()
	if !wasClosed {
		if reset {
			resetConn(q.nc)
		}
		closeErr = q.nc.Close()
	}
	q.done.Wait()
	return closeErr
}

// cork holds the frames written from now on until uncork, unless the
// queue fills. The server corks a connection while it serves frames that
// arrived together, so that their replies share one write.
func (q *writeQueue) cork() {
	q.mu.Lock()
	q.corked = true
	q.mu.Unlock()
}

// uncork writes what is held, waits until it is on the wire, and stops
// holding frames. When the queue is not corked, it only flushes.
func (q *writeQueue) uncork() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	err := q.flushLocked()
	q.corked = false
	q.settleLocked() // frames queued meanwhile go on without us
	return err
}

// sendStream makes the stream frames waiting due, and writes them if it
// can do so at once: a reader about to wait for the peer calls it, so
// that a goroutine that writes and then reads never waits on its own
// frames.
func (q *writeQueue) sendStream() {
	if !q.streamWaiting.Load() {
		return
	}
	q.mu.Lock()
	if q.due < q.queued {
		q.dueLocked()
		q.writeSoonLocked(true)
	}
	q.mu.Unlock()
}

// setDeadline is [Conn.SetWriteDeadline]. One timer says when the deadline
// passes, for the writers that wait for room and for Flush; the
// connection's own deadline bounds the write in flight.
func (q *writeQueue) setDeadline(t time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dl.at = t
	if q.dl.timer != nil {
		q.dl.timer.Stop()
		q.dl.timer = nil
	}
	d := time.Until(t)
	q.dl.passed = !t.IsZero() && d <= 0
	if !t.IsZero() && d > 0 {
		q.dl.timer = time.AfterFunc(d, func() {
			q.mu.Lock()
			if q.dl.at.Equal(t) {
				q.dl.passed = true
				q.broadcastLocked()
			}
			q.mu.Unlock()
		})
	}
	q.broadcastLocked()
	q.dl.onConn = t
	return q.nc.SetWriteDeadline(t)
}

// release drops large queue buffers while nothing is being written, so
// that a connection waiting for its next frame pins none.
func (q *writeQueue) release() {
	q.mu.Lock()
	if !q.tok.held() && q.pending == 0 {
		if cap(q.buf) > keepQueueCap {
			q.buf = nil
		}
		if cap(q.spare) > keepQueueCap {
			q.spare = nil
		}
	}
	q.mu.Unlock()
}

// waitLocked waits, with mu held on entry and on return, until the
// queue's state changes or done is closed (nil is never closed); then it
// returns errDone.
func (q *writeQueue) waitLocked(done <-chan struct{}) error {
	if q.changed == nil {
		q.changed = make(chan struct{})
	}
	changed := q.changed
	q.mu.Unlock()
	var err error
	select {
	case <-changed:
	case <-done:
		err = errDone
	}
	q.mu.Lock()
	return err
}

// broadcastLocked wakes every goroutine in waitLocked.
func (q *writeQueue) broadcastLocked() {
	if q.changed != nil {
		close(q.changed)
		q.changed = nil
	}
}

// errDone is waitLocked's error when done is closed.
var errDone = errors.New("framed: wait abandoned")
