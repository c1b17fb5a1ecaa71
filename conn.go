package framed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// DefaultMaxPendingBytes is how many bytes of frames a [Conn] queues for
// writing, when [ConnConfig].MaxPendingBytes is zero, before its writers
// block.
const DefaultMaxPendingBytes = 256 << 10

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
// concurrent writers never interleave.
//
// # When frames go out
//
// A lone frame, one written when nothing is queued and the peer has sent
// something or nothing has been written for a moment (a request, a reply,
// a heartbeat), goes out at once, in the writer's own goroutine. While
// ReadFrame returns frames that arrived together, the frames written in
// answer wait for the last of them, as a server's replies do. Frames
// that follow it back to back are a stream: they gather into batches of
// 64 KiB, as in a bufio.Writer, and what is left goes out once the stream
// pauses, or at once when someone calls Flush, closes the Conn, or starts
// a ReadFrame that must wait for the peer. A pause is 50 µs while the
// process is busy, and up to about a millisecond when it is otherwise
// idle (the resolution of Go's timers then). So a goroutine that writes
// frames in a loop makes as many system calls as a bufio loop, and one
// that writes a frame and then reads the reply never waits on its own
// frame; one that writes a few frames and then waits for something other
// than this Conn calls Flush to send them at once. A goroutine of the Conn's own writes what no
// caller does; it exists only while frames wait, and Close stops it.
//
// A goroutine that writes many frames to a peer that answers each one,
// and only then reads, deadlocks: the replies fill the buffers, the peer
// stops reading, and WriteFrame blocks on the full queue. Read on another
// goroutine while writing. A write deadline turns the wait into a
// [*StalledError].
//
// # Errors and closing
//
// Close unblocks ReadFrame, WriteFrame and Flush: they return an error
// matching [net.ErrClosed], over TCP, TLS and [net.Pipe] alike. A failed or
// timed-out network write closes the connection, since part of a frame may
// have gone out and cannot be taken back; every later write returns that
// error. The peer never reads a clean end of the stream inside a frame:
// when a write stops inside one (it failed, or Close stopped it), a TCP
// connection is reset rather than closed. (A [net.Pipe] cannot be reset:
// its peer then reads [io.ErrUnexpectedEOF].)
type Conn struct {
	nc net.Conn
	rd *Reader
	in countingReader // rd's source
	q  writeQueue
}

// countingReader counts the bytes read through it, so that a server can
// report bytes received as they arrive, also those of a frame still
// incomplete.
type countingReader struct {
	r     io.Reader
	n     atomic.Int64
	heard atomic.Bool // bytes arrived since the write queue last looked
	more  atomic.Bool // ReadFrame's last frame has another whole one buffered behind it
	q     *writeQueue // whose stream frames go out before a read waits
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.q != nil {
		r.q.sendStream() // a reader about to wait for the peer sends what it has
	}
	n, err := r.r.Read(p)
	if n > 0 {
		r.got(n)
	}
	return n, err
}

func (r *countingReader) got(n int) {
	r.n.Add(int64(n))
	if !r.heard.Load() {
		r.heard.Store(true)
	}
}

// NewConn returns a Conn that frames c as cfg says. The Conn owns c:
// closing the Conn closes c.
func NewConn(c net.Conn, cfg ConnConfig) *Conn {
	bufSize := cfg.ReadBufferSize
	if bufSize <= 0 {
		bufSize = DefaultReadBufferSize
	}
	fc := &Conn{nc: c}
	fc.in.r = c
	fc.rd = newReaderSize(&fc.in, cfg.Format, bufSize)
	fc.rd.wait = idleReader(c, fc.rd, &fc.in)
	fc.q.init(c, cfg)
	fc.q.peer = &fc.in
	fc.in.q = &fc.q
	return fc
}

// ReadFrame reads the next frame, as [Reader.ReadFrame] does: it returns
// the frame without its length field (see [Format]), valid until the next
// call; [io.EOF] means the peer closed its side exactly between frames; and
// a header that is invalid or above the limit leaves the stream unusable
// (close the Conn).
//
// A read deadline that passes returns an error whose Timeout method reports
// true and keeps the bytes received so far: after extending the deadline,
// ReadFrame goes on with the same frame.
func (c *Conn) ReadFrame() ([]byte, error) {
	p, err := c.rd.ReadFrame()
	if err != nil {
		return nil, c.readErr(err)
	}
	// While frames that arrived together are read, the frames written in
	// answer wait for the last of them, as a server's replies do.
	if more := c.rd.frameBuffered(); more != c.in.more.Load() {
		c.in.more.Store(more)
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
	c.q.release()
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
	if c.q.closed() {
		return fmt.Errorf("framed: read: %w", net.ErrClosed)
	}
	return err
}

// WriteFrame sends p as one frame. It returns once the frame is queued,
// and the frame goes out as the Conn's doc says: at once when it is lone,
// and otherwise with the frames around it, in batches. Inside a
// [Handler], the Conn holds replies until the handler's run of frames
// ends, and sends them together. Use Flush to wait until every queued
// frame is written.
//
// A p longer than the Format's limit is a [*FrameTooLargeError], and one
// shorter than its layout's header fields a [*FrameTooShortError]; nothing
// is sent and the Conn stays usable, as it does when the write deadline has
// passed (an error matching [os.ErrDeadlineExceeded]). When MaxPendingBytes
// are queued WriteFrame writes the queue itself, or waits for the write in
// flight, until there is room, the write deadline passes, or the Conn is
// closed; a writer that gives up waiting gets a [*StalledError], has
// queued nothing, and the Conn stays usable. Payloads of 64 KiB and more
// are not copied: they are written from p, and WriteFrame returns after
// that write.
//
// An error from an earlier write that failed (see [Conn]) is returned by
// the next WriteFrame.
func (c *Conn) WriteFrame(p []byte) error { return c.writeFrame(nil, p) }

// WriteFrameParts sends head followed by body as one frame, as WriteFrame
// sends append(head, body...), without that copy or its allocation: a reply
// that repeats the request's header fields (frame[:4] for zinx's message
// ID) with a new body, or a header built on the stack before a payload.
// Either part may be empty. The Format's length field goes after the
// frame's first LengthOffset bytes, whether they end inside head, at its
// end, or inside body.
//
// The limits and errors are WriteFrame's, for a frame of
// len(head)+len(body) bytes. head and body are not retained once
// WriteFrameParts returns: they are copied into the queue, except a body
// of 64 KiB or more, which is written from body itself before
// WriteFrameParts returns.
func (c *Conn) WriteFrameParts(head, body []byte) error { return c.writeFrame(head, body) }

func (c *Conn) writeFrame(head, body []byte) error {
	kind := sendStream
	if len(body) >= directWriteSize {
		kind = sendDirect
	}
	return c.q.send(context.Background(), head, body, kind, nil)
}

// Flush waits until every frame queued so far is written, the write
// deadline passes, or the write side fails. Frames queued after Flush is
// called do not hold it up. When no write is in flight, Flush writes the
// queue itself.
func (c *Conn) Flush() error { return c.q.flush() }

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
	return c.q.closeWrite(cw.CloseWrite)
}

// Close closes the connection. Frames still queued go out first if a
// plain socket takes them at once; otherwise they are dropped: call Flush
// (or CloseWrite) first to be sure they are sent. A write in flight is
// stopped at once. If the bytes sent then end inside a frame, a TCP
// connection is reset, so the peer reads a reset after the last whole
// frame, never a clean end inside one. A blocked ReadFrame, WriteFrame or
// Flush returns an error matching [net.ErrClosed], as does a second Close.
// Close returns once the Conn's writer goroutine, if any, has stopped.
func (c *Conn) Close() error { return c.q.close() }

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
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.q.setDeadline(t) }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// NetConn returns the underlying connection. Reading or writing it directly
// breaks the framing.
func (c *Conn) NetConn() net.Conn { return c.nc }

// position returns how many bytes of the stream ReadFrame has consumed.
func (c *Conn) position() int64 { return c.in.n.Load() - int64(c.rd.Buffered()) }

// Buffered returns the number of bytes received but not yet returned by
// ReadFrame.
func (c *Conn) Buffered() int { return c.rd.Buffered() }

var _ io.Closer = (*Conn)(nil)
