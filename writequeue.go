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

// directWriteSize is the payload size from which a frame is written from
// the caller's slice (one vectored write with the bytes queued before it)
// instead of being copied into the queue.
const directWriteSize = 64 << 10

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
	Waited  time.Duration // how long the write waited
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

// writeState is where a write queue is in its life. It only moves forward.
type writeState uint8

const (
	writeOpen    writeState = iota // frames are admitted and written
	writeClosing                   // CloseWrite has begun: nothing new is admitted; the queue drains
	writeShut                      // the FIN is sent; reading may go on
	writeFailed                    // the Format is invalid, or a write failed and closed the connection
	writeClosed                    // Close
)

// writeCounts is what a server counts of a connection's writes.
type writeCounts struct {
	frames int64 // frames admitted for which the writer was, or will be, told nil
	bytes  int64 // bytes written, or being written, to the network
}

// writeQueue is a Conn's write side: the frames waiting to go out, who
// writes them, and how the write side ends.
//
// Frames are appended to buf under mu. Whoever finds buf not empty and no
// write in flight may write it: a Flush, a writer of a large frame, a
// Request, or the queue's own writer goroutine, which is started when a
// frame lands in a queue nobody writes and exits once the queue is empty.
// So a lone frame goes out at once, and frames that a goroutine writes
// while a write is in flight, whether its own or another's, share the
// next write: a goroutine streaming frames back to back makes about one
// system call per write's worth of frames, as a bufio loop does.
type writeQueue struct {
	nc           net.Conn
	f            Format
	limit        int
	lf           lengthField // the Format's, worked out once
	hdrMax       int         // the most bytes a frame adds to its length
	minLen       int         // the shortest frame the Format can write
	writeTimeout time.Duration
	maxPending   int
	try          func([]byte) (int, error) // one write that never blocks, or nil
	runFn        func()                    // run, made once so that starting it does not allocate
	heard        *atomic.Bool              // set when bytes arrive from the peer, or nil
	counts       *writeCounts              // set by a server before use

	mu       sync.Mutex
	state    writeState
	err      error         // why the queue is failed or closed
	buf      []byte        // frames waiting: headers and copied payloads
	large    []directFrame // payloads written from the caller's slice, in order
	pending  int           // bytes waiting: buf and the large payloads
	writing  bool          // a write is in flight; its writer owns spare, spareLarge and iov
	writer   bool          // the writer goroutine runs
	corked   bool          // hold frames until Flush
	alone    bool          // the frame enqueue just admitted found the queue empty
	inlined  bool          // WriteFrame wrote a lone frame itself, and the peer has sent nothing since
	ncClosed bool          // the connection is closed, by Close or a failed write
	queued   int64         // bytes ever admitted
	written  int64         // bytes the network has taken
	deadline time.Time     // the write deadline, for writers waiting for room
	passed   bool          // the write deadline has passed: admit nothing
	dlTimer  *time.Timer   // sets passed when the deadline comes
	waiters  int           // goroutines in waitLocked
	cond     sync.Cond     // broadcast when something a waiter waits for changes
	changed  chan struct{} // closed then too, for waiters bounded in time
	done     sync.WaitGroup

	spare      []byte // the other buffer
	spareLarge []directFrame
	iov        net.Buffers
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
	q.try = socketTryWrite(nc)
	q.cond.L = &q.mu
	q.runFn = q.run
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

// enqueue admits head followed by body as one frame, copied into the
// queue unless direct is set and the frame is large: then the queue writes
// from head and body, and the caller must not return before they are
// written. The frame's length, limits included, is len(head)+len(body),
// and its length field goes after its first LengthOffset bytes, wherever
// they end: inside head, at its end, or inside body. Callers with one
// slice pass it as body. It waits while the queue is full until
// there is room, the write deadline passes, or ctx ends; then nothing is
// queued, and the error is a [*StalledError]. admit, if not nil, is called with
// mu held just before the frame takes its place, and an error from it queues
// nothing. enqueue returns with mu held when err is nil, and otherwise
// with mu released; end is the stream position just past the frame.
func (q *writeQueue) enqueue(ctx context.Context, head, body []byte, direct bool, admit func() error) (end int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := len(head) + len(body)
	if n > q.limit || n < q.minLen {
		err := q.f.checkWrite(n, q.limit)
		if ferr := q.f.check(); ferr != nil {
			err = ferr // the limit of an invalid Format means nothing
		}
		return 0, err
	}
	need := q.hdrMax + n
	q.mu.Lock()
	var start time.Time
	for {
		if err := q.errLocked(); err != nil {
			q.mu.Unlock()
			return 0, err
		}
		if q.pending == 0 || q.pending+need <= q.maxPending {
			break
		}
		if q.corked && !q.writing {
			q.writeLocked() // corked and full: make room
			continue
		}
		q.kickLocked()
		if start.IsZero() {
			start = time.Now()
		}
		if err := q.waitLocked(ctx.Done(), q.deadline); err != nil {
			if err == errDone {
				err = ctx.Err()
			}
			err = &StalledError{Pending: q.pending, Waited: time.Since(start), Err: err}
			q.mu.Unlock()
			return 0, err
		}
	}
	if q.passed {
		q.mu.Unlock()
		return 0, fmt.Errorf("framed: write: %w", os.ErrDeadlineExceeded)
	}
	if admit != nil {
		if err := admit(); err != nil {
			q.mu.Unlock()
			return 0, err
		}
	}
	q.alone = q.pending == 0 && !q.writing
	at := len(q.buf)
	before1, before2, after1, after2 := splitParts(head, body, q.lf.off)
	q.buf = append(append(q.buf, before1...), before2...)
	q.buf = q.lf.append(q.buf, n)
	added := len(q.buf) - at + len(after1) + len(after2)
	if direct && n >= directWriteSize {
		for _, p := range [2][]byte{after1, after2} {
			if len(p) > 0 {
				q.large = append(q.large, directFrame{at: len(q.buf), p: p})
			}
		}
	} else {
		q.buf = append(append(q.buf, after1...), after2...)
	}
	q.pending += added
	q.queued += int64(added)
	if q.counts != nil {
		q.counts.frames++ // before it goes out, so a peer never sees a frame not yet counted
	}
	return q.queued, nil
}

// splitParts cuts the frame head followed by body at the byte offset at,
// which is at most len(head)+len(body): the bytes before it are before1
// then before2, those after it after1 then after2.
func splitParts(head, body []byte, at int) (before1, before2, after1, after2 []byte) {
	if at <= len(head) {
		return head[:at], nil, head[at:], body
	}
	return head, body[:at-len(head)], nil, body[at-len(head):]
}

// writeFrame is [Conn.WriteFrame] and [Conn.WriteFrameParts].
func (q *writeQueue) writeFrame(head, body []byte) error {
	direct := len(head)+len(body) >= directWriteSize
	end, err := q.enqueue(context.Background(), head, body, direct, nil)
	if err != nil {
		return err
	}
	if !direct {
		if q.alone && q.try != nil && !q.writer && !q.corked && q.state < writeFailed &&
			(!q.inlined || q.heard != nil && q.heard.Swap(false)) {
			// A lone frame, the first since the peer last spoke: a
			// request, say. It goes out now, with no hand-off. The next
			// one, if it comes before the peer speaks, is a stream, and
			// waits for the writer goroutine to batch it with the rest.
			q.inlined = true
			q.writeWith(q.try)
		}
		q.kickLocked()
		q.mu.Unlock()
		return nil
	}
	// The queue holds p itself: wait until it is written. The write in
	// flight is bounded by the write deadline and WriteTimeout, and a
	// failed write fails the queue, so this wait needs no deadline.
	for q.written < end && q.state < writeFailed {
		if !q.writing {
			q.writeLocked()
			continue
		}
		q.waitLocked(nil, time.Time{})
	}
	for q.writing && q.written < end {
		q.waitLocked(nil, time.Time{}) // until p is no longer in a write
	}
	err = nil
	if q.written < end {
		err = q.err
		if q.counts != nil {
			q.counts.frames--
		}
	}
	q.kickLocked()
	q.mu.Unlock()
	return err
}

// tryWriteLocked writes the queue in the caller's goroutine when that
// cannot block: when no write is in flight and the connection takes
// bytes without waiting. What it cannot write is left to the writer
// goroutine. A Request uses it so that its frame goes out with no
// goroutine hand-off.
func (q *writeQueue) tryWriteLocked() {
	if q.try != nil && !q.writing && !q.corked && q.state < writeFailed && len(q.large) == 0 {
		q.writeWith(q.try)
	}
	q.kickLocked()
}

// kickLocked starts the writer goroutine when frames wait, nobody writes
// them and the queue is not corked.
func (q *writeQueue) kickLocked() {
	if q.writer || q.writing || q.corked || q.pending == 0 || q.state >= writeFailed {
		return
	}
	q.writer = true
	q.done.Add(1)
	go q.runFn()
}

// run is the writer goroutine: it writes until the queue is empty, then
// exits, so an idle connection has none.
func (q *writeQueue) run() {
	defer q.done.Done()
	// Goroutines made runnable together (say, Requests whose replies
	// were just read) queue their frames before this one writes, so they
	// share the write: the new goroutine would otherwise run first.
	runtime.Gosched()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.pending > 0 && !q.corked && q.state < writeFailed {
		if q.writing {
			q.cond.Wait() // a Flush or a large frame's writer is writing
			continue
		}
		q.writeLocked()
	}
	q.writer = false
	q.broadcastLocked()
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
	defer q.kickLocked() // frames queued meanwhile go on without us
	for q.written < target && q.state < writeFailed {
		if !q.writing {
			q.writeLocked()
			continue
		}
		if err := q.waitLocked(nil, q.deadline); err != nil {
			return fmt.Errorf("framed: flush: %w", err)
		}
	}
	switch q.state {
	case writeOpen, writeClosing, writeShut:
		return nil // every frame queued before the FIN is on the wire
	}
	return q.errLocked()
}

// writeLocked writes what is queued, with mu released during the write.
func (q *writeQueue) writeLocked() { q.writeWith(nil) }

// writeWith takes the queue and writes it, with try when it is not nil,
// and otherwise with a write that may block. It is called with mu held,
// no write in flight, and returns with mu held.
func (q *writeQueue) writeWith(try func([]byte) (int, error)) {
	b, large := q.buf, q.large
	q.buf, q.spare = q.spare[:0], nil
	q.large, q.spareLarge = q.spareLarge[:0], nil
	size := q.pending
	q.pending = 0
	q.writing = true
	q.broadcastLocked() // the queue has room again
	if q.counts != nil {
		q.counts.bytes += int64(size) // before the write, so a peer never sees bytes not yet counted
	}
	var err error
	if try == nil {
		err = q.armWriteTimeoutLocked()
	}
	q.mu.Unlock()
	var n int64
	if err == nil {
		n, err = q.write(b, large, try)
	}
	q.mu.Lock()
	q.writing = false
	if try == nil && q.writeTimeout > 0 && err == nil {
		// Take WriteTimeout's deadline off the socket, back to the
		// caller's: a write that does not wait (an inline one) would
		// otherwise meet it long after, and fail.
		err = q.nc.SetWriteDeadline(q.deadline)
	}
	if q.counts != nil {
		q.counts.bytes -= int64(size) - n
	}
	q.written += n
	if err == nil && n < int64(size) {
		// A try that could not write it all: put the rest back in front,
		// and move the places of large frames queued meanwhile with it.
		rest := b[n:]
		q.buf = append(rest[:len(rest):len(rest)], q.buf...)
		for i := range q.large {
			q.large[i].at += len(rest)
		}
		q.pending += len(rest)
		b = nil
	}
	if cap(b) <= 2*q.maxPending+directWriteSize {
		q.spare = b[:0] // busy: keep it; release drops it when idle
	}
	clear(large)
	q.spareLarge = large[:0]
	if err != nil {
		q.failLocked(q.writeError(err, int(int64(size)-n)))
	}
	q.broadcastLocked()
}

// write writes b, with the large payloads in their places, and returns
// how many bytes went out. Only the goroutine that is writing calls it.
func (q *writeQueue) write(b []byte, large []directFrame, try func([]byte) (int, error)) (int64, error) {
	if try != nil {
		n, err := try(b)
		return int64(n), err
	}
	if len(large) == 0 {
		n, err := q.nc.Write(b)
		return int64(n), err
	}
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
	full := iov
	n, err := iov.WriteTo(q.nc)
	clear(full) // keep no reference to the callers' payloads
	q.iov = full[:0]
	return n, err
}

// writeError is the error a failed network write leaves on the queue.
func (q *writeQueue) writeError(err error, unsent int) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		waited := q.writeTimeout
		return fmt.Errorf("framed: write: %w", &StalledError{Pending: unsent, Waited: waited, Err: err})
	}
	return fmt.Errorf("framed: write: %w", err)
}

// armWriteTimeoutLocked bounds the write about to start by WriteTimeout
// as well as the write deadline. It runs with mu held, as does
// setDeadline's update of the connection, so that neither can overwrite a
// deadline the other set later.
func (q *writeQueue) armWriteTimeoutLocked() error {
	if q.writeTimeout <= 0 {
		return nil
	}
	d := time.Now().Add(q.writeTimeout)
	if !q.deadline.IsZero() && q.deadline.Before(d) {
		d = q.deadline
	}
	return q.nc.SetWriteDeadline(d)
}

// failLocked records the first write error and closes the connection:
// part of a frame may have gone out, and the stream cannot go on.
func (q *writeQueue) failLocked(err error) {
	if q.state < writeFailed {
		q.state, q.err = writeFailed, err
		q.ncClosed = true
		q.nc.Close()
	}
	q.dropLocked()
}

// dropLocked empties the queue.
func (q *writeQueue) dropLocked() {
	q.buf = q.buf[:0]
	clear(q.large)
	q.large = q.large[:0]
	q.pending = 0
	q.broadcastLocked()
}

// totals returns the frames and bytes counted, when a server counts them.
func (q *writeQueue) totals() (frames, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.counts == nil {
		return 0, 0
	}
	return q.counts.frames, q.counts.bytes
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
	for q.writing { // a write of nothing of ours may still be in flight
		q.waitLocked(nil, time.Time{})
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

// close closes the connection, and waits for the writer goroutine, which
// the closed connection stops. What is queued is written first when no
// write is in flight and the socket takes it without waiting, and
// otherwise dropped.
func (q *writeQueue) close() error {
	q.mu.Lock()
	if q.state == writeClosed {
		q.mu.Unlock()
		return fmt.Errorf("framed: close: %w", net.ErrClosed)
	}
	wasClosed := q.ncClosed // by a write that failed
	try := q.pending > 0 && q.try != nil && !q.writing && q.state < writeFailed && len(q.large) == 0
	// Closed from here on, for every other caller, a second Close
	// included, also while the last write below is in flight.
	q.state, q.err = writeClosed, errConnClosed
	if try {
		q.writeWith(q.try) // what the socket takes at once; an error is moot
	}
	q.ncClosed = true
	if q.dlTimer != nil {
		q.dlTimer.Stop()
	}
	q.dropLocked()
	q.mu.Unlock()
	err := fmt.Errorf("framed: close: %w", net.ErrClosed)
	if !wasClosed {
		err = q.nc.Close()
	}
	q.done.Wait()
	return err
}

// flushUncork flushes, and then uncorks the queue if corked is set: the
// server's step at the end of a run of frames, with the lock taken once.
func (q *writeQueue) flushUncork(corked bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	err := q.flushLocked()
	if corked {
		q.corked = false
		q.kickLocked()
	}
	return err
}

// setCorked makes writes queue without being written until Flush, or
// stops that. The server corks a connection while it serves frames that
// arrived together, so their replies share one write.
func (q *writeQueue) setCorked(corked bool) {
	q.mu.Lock()
	q.corked = corked
	if !corked {
		q.kickLocked()
	}
	q.mu.Unlock()
}

// setDeadline is [Conn.SetWriteDeadline].
func (q *writeQueue) setDeadline(t time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deadline = t
	// A timer, not a clock read per frame, says when the deadline passes.
	if q.dlTimer != nil {
		q.dlTimer.Stop()
		q.dlTimer = nil
	}
	d := time.Until(t)
	q.passed = !t.IsZero() && d <= 0
	if !t.IsZero() && d > 0 {
		q.dlTimer = time.AfterFunc(d, func() {
			q.mu.Lock()
			if q.deadline.Equal(t) {
				q.passed = true
				q.broadcastLocked()
			}
			q.mu.Unlock()
		})
	}
	q.broadcastLocked()
	return q.nc.SetWriteDeadline(t)
}

// release drops large queue buffers while nothing is being written, so
// that a connection waiting for its next frame pins none.
func (q *writeQueue) release() {
	q.mu.Lock()
	if !q.writing && q.pending == 0 {
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
// queue's state changes, deadline passes (zero is none) or done is closed
// (nil is never closed). It returns the deadline's or done's error.
func (q *writeQueue) waitLocked(done <-chan struct{}, deadline time.Time) error {
	q.waiters++
	defer func() { q.waiters-- }()
	if done == nil && deadline.IsZero() {
		q.cond.Wait()
		return nil
	}
	if q.changed == nil {
		q.changed = make(chan struct{})
	}
	changed := q.changed
	q.mu.Unlock()
	err := waitUntil(changed, done, deadline)
	q.mu.Lock()
	return err
}

// broadcastLocked wakes every goroutine in waitLocked.
func (q *writeQueue) broadcastLocked() {
	q.cond.Broadcast()
	if q.changed != nil {
		close(q.changed)
		q.changed = nil
	}
}

// errDone is waitUntil's error when done is closed; callers that pass a
// done channel replace it with the context's error.
var errDone = errors.New("framed: wait abandoned")

func waitUntil(changed, done <-chan struct{}, dl time.Time) error {
	if dl.IsZero() {
		select {
		case <-changed:
			return nil
		case <-done:
			return errDone
		}
	}
	d := time.Until(dl)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
		return nil
	case <-done:
		return errDone
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}
