package framed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxPendingBytes is how many bytes of frames a [Conn] queues for
// writing, when [ConnConfig].MaxPendingBytes is zero, before its writers
// block.
const DefaultMaxPendingBytes = 256 << 10

// directWriteSize is the payload size from which WriteFrame writes the
// caller's slice directly (one vectored write with the header) instead of
// copying it into the queue.
const directWriteSize = 64 << 10

// keepQueueCap is the largest write queue a Conn keeps while it waits for
// its next frame. While writes go on it keeps its queues up to twice
// MaxPendingBytes, so a busy Conn does not grow a new queue for every
// write.
const keepQueueCap = 64 << 10

// errWriteClosed is returned by writes after CloseWrite.
var errWriteClosed = fmt.Errorf("framed: write after CloseWrite: %w", net.ErrClosed)

// ConnConfig configures a [Conn]. The zero value is ready to use.
type ConnConfig struct {
	// Format is the wire format; the zero value is the default one.
	Format Format

	// WriteTimeout bounds each write to the network. Zero means no bound
	// beyond the deadline set with SetWriteDeadline.
	WriteTimeout time.Duration

	// MaxPendingBytes bounds the bytes of frames queued for writing. A
	// writer that would go past it blocks until the queue drains: that is
	// the backpressure on a slow peer. A frame is always accepted into an
	// empty queue, whatever its size. Zero means [DefaultMaxPendingBytes].
	MaxPendingBytes int

	// ReadBufferSize is the size of the read buffer. Zero means
	// [DefaultReadBufferSize].
	ReadBufferSize int
}

// Conn reads and writes whole frames on a [net.Conn].
//
// # Concurrency
//
// ReadFrame may be called by one goroutine at a time. WriteFrame, Flush,
// CloseWrite, Close and the deadline and address methods may be called by
// any number of goroutines, also while ReadFrame runs. Frames from
// concurrent writers never interleave. Frames that writers queue while
// another write is in flight go out together in the next write, so many
// small writers do not mean many system calls.
//
// # Errors and closing
//
// Close unblocks ReadFrame, WriteFrame and Flush: they return an error
// matching [net.ErrClosed], over TCP, TLS and [net.Pipe] alike. A failed or
// timed-out network write closes the connection, since part of a frame may
// have gone out and cannot be taken back; every later write returns that
// error.
type Conn struct {
	nc           net.Conn
	rd           *Reader
	f            Format
	limit        int
	writeTimeout time.Duration
	maxPending   int
	closed       atomic.Bool
	in           countingReader // rd's source

	mu       sync.Mutex
	queue    []byte // frames waiting to be written
	spare    []byte // the other queue buffer, written from while unlocked
	flushing bool   // a goroutine is writing and will drain the queue
	corked   bool   // hold frames in the queue until Flush
	shut     bool   // CloseWrite has begun: no more frames are accepted
	werr     error  // the write side cannot go on
	queued   int64  // bytes ever appended to the queue
	written  int64  // bytes of the queue the network has taken
	deadline time.Time
	waiters  int
	changed  chan struct{} // closed when the write side's state changes

	iov  [2][]byte   // a large frame's write: the queue, then the payload
	bufs net.Buffers // iov, as WriteTo consumes it

	framesOut int64 // frames for which WriteFrame returned, or will return, nil
	bytesOut  int64 // bytes written, or being written, to the network
}

// countingReader counts the bytes read through it, so that a server can
// report bytes received as they arrive, also those of a frame still
// incomplete.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.n.Add(int64(n))
	}
	return n, err
}

// NewConn returns a Conn that frames c as cfg says. The Conn owns c:
// closing the Conn closes c.
func NewConn(c net.Conn, cfg ConnConfig) *Conn {
	bufSize := cfg.ReadBufferSize
	if bufSize <= 0 {
		bufSize = DefaultReadBufferSize
	}
	maxPending := cfg.MaxPendingBytes
	if maxPending <= 0 {
		maxPending = DefaultMaxPendingBytes
	}
	fc := &Conn{
		nc:           c,
		f:            cfg.Format,
		limit:        cfg.Format.Limit(),
		writeTimeout: cfg.WriteTimeout,
		maxPending:   maxPending,
	}
	fc.in.r = c
	fc.rd = newReaderSize(&fc.in, cfg.Format, bufSize)
	fc.rd.wait = idleReader(c, fc.rd, &fc.in)
	if err := cfg.Format.check(); err != nil {
		fc.werr = err
	}
	return fc
}

// ReadFrame reads the next frame, as [Reader.ReadFrame] does: the payload is
// valid until the next call, [io.EOF] means the peer closed its side
// exactly between frames, and a header that is invalid or above the limit
// leaves the stream unusable (close the Conn).
//
// A read deadline that passes returns an error whose Timeout method reports
// true and keeps the bytes received so far: after extending the deadline,
// ReadFrame goes on with the same frame.
func (c *Conn) ReadFrame() ([]byte, error) {
	p, err := c.rd.ReadFrame()
	if err != nil {
		return nil, c.readErr(err)
	}
	return p, nil
}

// readFrameWithin reads a frame while no more than idle passes before its
// first byte and no more than frame from its first byte to its last. Zero
// means no bound. A frame already buffered is returned without touching the
// deadline.
func (c *Conn) readFrameWithin(idle, frame time.Duration) ([]byte, error) {
	if (idle == 0 && frame == 0) || c.rd.frameBuffered() {
		return c.ReadFrame()
	}
	if err := c.waitFrame(idle, frame); err != nil {
		return nil, err
	}
	if err := c.nc.SetReadDeadline(deadline(frame)); err != nil {
		return nil, c.readErr(err)
	}
	return c.ReadFrame()
}

// waitFrame blocks until at least one byte of the next frame is buffered,
// no longer than idle. It returns at once when a byte is already buffered,
// and [io.EOF] when the stream ends between frames. When idle and frame are
// both zero it leaves the read deadline alone, as readFrameWithin does.
//
// Waiting apart from reading lets the server tell a connection that is
// idle between frames from one that is in the middle of a frame.
func (c *Conn) waitFrame(idle, frame time.Duration) error {
	if c.rd.Buffered() > 0 {
		return nil
	}
	c.releaseQueue()
	if idle != 0 || frame != 0 {
		if err := c.nc.SetReadDeadline(deadline(idle)); err != nil {
			return c.readErr(err)
		}
	}
	if err := c.rd.waitData(); err != nil {
		return c.readErr(err)
	}
	return nil
}

// deadline returns the time d from now, or no deadline when d is zero.
func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

func (c *Conn) readErr(err error) error {
	if c.closed.Load() {
		return fmt.Errorf("framed: read: %w", net.ErrClosed)
	}
	return err
}

// WriteFrame sends p as one frame. It returns once the frame is written or,
// when another goroutine's write is in flight, once the frame is queued
// behind it; that goroutine writes it next. Use Flush to wait until every
// queued frame is written.
//
// A p longer than the Format's limit is a [*FrameTooLargeError]; nothing is
// sent and the Conn stays usable. When the queue is full WriteFrame blocks
// until it drains, the write deadline passes, or the Conn is closed.
// Payloads of 64 KiB and more are not copied: they are written from p, and
// WriteFrame returns after that write.
func (c *Conn) WriteFrame(p []byte) error {
	if len(p) > c.limit {
		if err := c.f.check(); err != nil {
			return err // the limit of an invalid Format means nothing
		}
		return &FrameTooLargeError{Size: uint64(len(p)), Limit: c.limit}
	}
	need := c.f.maxHeaderSize() + len(p)
	c.mu.Lock()
	counted := false // counted before it goes out, so a peer never sees a frame not yet counted
	for {
		if c.werr != nil {
			break
		}
		if c.shut {
			c.mu.Unlock()
			return errWriteClosed
		}
		if len(p) >= directWriteSize {
			if !c.flushing {
				c.enqueueLocked(p, true) // the payload goes out from p
				counted = true
				c.drainLocked(p)
				break
			}
		} else if len(c.queue) == 0 || len(c.queue)+need <= c.maxPending {
			c.enqueueLocked(p, false)
			counted = true
			if !c.flushing && !c.corked {
				c.drainLocked(nil)
			}
			break
		} else if !c.flushing {
			c.drainLocked(nil) // corked and full
			continue
		}
		if err := c.waitLocked(nil); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	err := c.werr
	if err != nil && counted {
		c.framesOut--
	}
	c.mu.Unlock()
	return err
}

// queueFrame queues p as one frame without writing it, for a caller that
// must not block on the network and must know the order of frames on the
// wire. admit is called with c.mu held just before p takes its place in the
// queue; if it returns an error, nothing is queued and that error is
// returned.
//
// Like WriteFrame, queueFrame waits while the queue is full; it also stops
// waiting when ctx ends, and then returns ctx's error with nothing queued.
// It reports whether no goroutine is writing: then the caller must see that
// the queue is flushed (see Flush).
func (c *Conn) queueFrame(ctx context.Context, p []byte, admit func() error) (idle bool, err error) {
	if len(p) > c.limit {
		return false, &FrameTooLargeError{Size: uint64(len(p)), Limit: c.limit}
	}
	need := c.f.maxHeaderSize() + len(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.werr == nil && len(c.queue) > 0 && len(c.queue)+need > c.maxPending {
		if err := c.waitLocked(ctx.Done()); err != nil {
			return false, err
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
	if c.werr != nil {
		return false, c.werr
	}
	if c.shut {
		return false, errWriteClosed
	}
	if err := admit(); err != nil {
		return false, err
	}
	c.enqueueLocked(p, false)
	return !c.flushing, nil
}

// enqueueLocked appends p's header to the queue, and p itself unless
// headerOnly (a large payload written from p by drainLocked), and counts
// the frame.
func (c *Conn) enqueueLocked(p []byte, headerOnly bool) {
	n := len(c.queue)
	c.queue = c.f.appendHeader(c.queue, len(p))
	if !headerOnly {
		c.queue = append(c.queue, p...)
	}
	c.queued += int64(len(c.queue) - n)
	c.framesOut++
}

// Flush waits until every frame queued so far is written, the write
// deadline passes, or the write side fails. Frames queued after Flush is
// called do not hold it up.
func (c *Conn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

// flushLocked is Flush with c.mu held.
func (c *Conn) flushLocked() error {
	target := c.queued
	for c.werr == nil && c.written < target && (c.flushing || len(c.queue) > 0) {
		if !c.flushing {
			c.drainLocked(nil)
			continue
		}
		if err := c.waitLocked(nil); err != nil {
			return err
		}
	}
	return c.werr
}

// releaseQueue drops large write queue buffers while nothing is being
// written, so that a connection waiting for its next frame pins none.
func (c *Conn) releaseQueue() {
	c.mu.Lock()
	if !c.flushing && len(c.queue) == 0 {
		if cap(c.queue) > keepQueueCap {
			c.queue = nil
		}
		if cap(c.spare) > keepQueueCap {
			c.spare = nil
		}
	}
	c.mu.Unlock()
}

// setCorked makes writes queue without flushing until Flush, or stops
// that. The server corks a connection while it serves frames that arrived
// together, so their replies share one write.
func (c *Conn) setCorked(corked bool) {
	c.mu.Lock()
	c.corked = corked
	c.mu.Unlock()
}

// drainLocked writes the queue, and then p if it is not nil, until the
// queue is empty or a write fails. It is called with c.mu held and returns
// with it held, but does not hold it while writing.
func (c *Conn) drainLocked(p []byte) {
	c.flushing = true
	for c.werr == nil && (len(c.queue) > 0 || p != nil) {
		q := c.queue
		c.queue, c.spare = c.spare[:0], nil
		c.broadcastLocked() // the queue has room again
		size := int64(len(q) + len(p))
		c.bytesOut += size // before the write, so a peer never sees bytes not yet counted
		var n int64
		err := c.armWriteTimeoutLocked()
		c.mu.Unlock()
		if err == nil {
			n, err = c.write(q, p)
		}
		p = nil
		c.mu.Lock()
		c.bytesOut -= size - n
		if cap(q) <= 2*c.maxPending+directWriteSize {
			c.spare = q[:0] // busy: keep it; releaseQueue drops it when idle
		}
		if err != nil {
			c.failWriteLocked(fmt.Errorf("framed: write: %w", err))
		} else {
			c.written += int64(len(q))
		}
	}
	c.flushing = false
	c.broadcastLocked()
}

// armWriteTimeoutLocked bounds the write about to start by WriteTimeout
// as well as the write deadline. It runs with c.mu held, as does
// SetWriteDeadline's update of the connection, so that neither can
// overwrite a deadline the other set later.
func (c *Conn) armWriteTimeoutLocked() error {
	if c.writeTimeout <= 0 {
		return nil
	}
	d := time.Now().Add(c.writeTimeout)
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		d = c.deadline
	}
	return c.nc.SetWriteDeadline(d)
}

// write writes q and then p, in one system call where the platform allows,
// and returns the number of bytes written.
func (c *Conn) write(q, p []byte) (int64, error) {
	if p == nil {
		n, err := c.nc.Write(q)
		return int64(n), err
	}
	// Only the goroutine that is flushing uses c.iov and c.bufs: kept in
	// the Conn, they cost no allocation per large frame.
	c.iov = [2][]byte{q, p}
	c.bufs = c.iov[:]
	n, err := c.bufs.WriteTo(c.nc)
	c.iov, c.bufs = [2][]byte{}, nil // keep no reference to the caller's p
	return n, err
}

// counts returns the frames WriteFrame has accepted and the bytes read from
// and written to the connection so far. Any goroutine may call it.
func (c *Conn) counts() (framesOut, bytesIn, bytesOut int64) {
	c.mu.Lock()
	framesOut, bytesOut = c.framesOut, c.bytesOut
	c.mu.Unlock()
	return framesOut, c.in.n.Load(), bytesOut
}

// failWriteLocked records the first write error and closes the connection:
// part of a frame may have gone out, and the stream cannot go on.
func (c *Conn) failWriteLocked(err error) {
	if c.werr == nil || c.werr == errWriteClosed {
		c.werr = err
	}
	if c.closed.CompareAndSwap(false, true) {
		c.nc.Close()
	}
	c.queue = c.queue[:0]
	c.broadcastLocked()
}

// waitLocked waits, with c.mu held on entry and on return, until the write
// side's state changes, the write deadline passes, or done is closed. A nil
// done is never closed.
func (c *Conn) waitLocked(done <-chan struct{}) error {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	changed, dl := c.changed, c.deadline
	c.waiters++
	c.mu.Unlock()
	err := waitUntil(changed, done, dl)
	c.mu.Lock()
	c.waiters--
	return err
}

func waitUntil(changed, done <-chan struct{}, dl time.Time) error {
	if dl.IsZero() {
		select {
		case <-changed:
		case <-done:
		}
		return nil
	}
	d := time.Until(dl)
	if d <= 0 {
		return fmt.Errorf("framed: write: %w", os.ErrDeadlineExceeded)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
		return nil
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("framed: write: %w", os.ErrDeadlineExceeded)
	}
}

// broadcastLocked wakes every goroutine in waitLocked.
func (c *Conn) broadcastLocked() {
	if c.waiters > 0 {
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// CloseWrite writes every queued frame and then shuts down the writing side
// of the connection (a TCP FIN), so the peer reads [io.EOF] after the last
// frame. Reading goes on. Writes that begin once CloseWrite is called
// return an error matching [net.ErrClosed]. It returns an error matching
// [errors.ErrUnsupported] when the underlying connection has no CloseWrite
// method (as with [net.Pipe]).
func (c *Conn) CloseWrite() error {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("framed: CloseWrite on %T: %w", c.nc, errors.ErrUnsupported)
	}
	c.mu.Lock()
	if c.werr == nil && !c.shut {
		// Accept no more frames, so the queue drains for good and no
		// write can be in flight when the FIN goes out.
		c.shut = true
		c.broadcastLocked()
	}
	err := c.flushLocked()
	if err == nil {
		c.werr = errWriteClosed
		c.broadcastLocked()
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return cw.CloseWrite()
}

// Close closes the connection. Frames still queued are dropped: call Flush
// first to send them. A blocked ReadFrame, WriteFrame or Flush returns an
// error matching [net.ErrClosed], as does a second Close.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("framed: close: %w", net.ErrClosed)
	}
	c.mu.Lock()
	if c.werr == nil || c.werr == errWriteClosed {
		c.werr = fmt.Errorf("framed: write: %w", net.ErrClosed)
	}
	c.queue = c.queue[:0]
	c.broadcastLocked()
	c.mu.Unlock()
	return c.nc.Close()
}

// SetDeadline sets the read and write deadlines, as [net.Conn] does.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for ReadFrame. A ReadFrame that times
// out can be called again; it goes on where it stopped.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for writes, including the wait of a
// writer blocked on a full queue. A write to the network that times out
// closes the Conn; a writer that times out while waiting for room has
// queued nothing, and the Conn stays usable.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	c.broadcastLocked()
	return c.nc.SetWriteDeadline(t)
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// NetConn returns the underlying connection. Reading or writing it directly
// breaks the framing.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Buffered returns the number of bytes received but not yet returned by
// ReadFrame.
func (c *Conn) Buffered() int { return c.rd.Buffered() }

var _ io.Closer = (*Conn)(nil)
