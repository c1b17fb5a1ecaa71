package framedtest

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// DefaultBufferSize is how many bytes a connection of a [Listener] holds in
// each direction, unread, before its writer blocks, when the Listener was
// made with a size of zero: 64 KiB, about what a loopback TCP socket
// buffers.
const DefaultBufferSize = 64 << 10

// memAddr is the address of either end of an in-memory connection.
type memAddr string

func (a memAddr) Network() string { return "memory" }
func (a memAddr) String() string  { return string(a) }

// link holds the state of both directions of one in-memory connection. One
// mutex guards both, and one condition tells every waiter that something
// changed: data, room, a shutdown, a close, a reset or a passing deadline.
type link struct {
	mu   sync.Mutex
	cond sync.Cond
	dirs [2]direction
}

// direction is the bytes on their way from one end to the other.
type direction struct {
	buf   []byte
	shut  bool // the writer shut down: the reader gets io.EOF after buf
	gone  bool // the reader closed: writes fail
	reset bool // the connection was reset: reads and writes fail
}

// memConn is one end of an in-memory connection. It behaves as a TCP
// connection does where tests rely on it: writes block while the peer's
// buffer is full, CloseWrite makes the peer read io.EOF after the data,
// Close makes the peer read io.EOF and its writes fail, deadlines return
// errors whose Timeout method reports true, and every method may be called
// concurrently.
type memConn struct {
	l             *link
	in, out       *direction
	size          int
	local, remote net.Addr

	// Guarded by l.mu.
	closed   bool
	wshut    bool
	rdl, wdl time.Time
	rtm, wtm *time.Timer
}

// newMemPipe returns the two ends of a new in-memory connection, each
// buffering up to size bytes in the direction it reads.
func newMemPipe(size int, aAddr, bAddr net.Addr) (*memConn, *memConn) {
	if size <= 0 {
		size = DefaultBufferSize
	}
	l := &link{}
	l.cond.L = &l.mu
	a := &memConn{l: l, in: &l.dirs[1], out: &l.dirs[0], size: size, local: aAddr, remote: bAddr}
	b := &memConn{l: l, in: &l.dirs[0], out: &l.dirs[1], size: size, local: bAddr, remote: aAddr}
	return a, b
}

func (c *memConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "memory", Source: c.local, Addr: c.remote, Err: err}
}

// expired reports whether deadline t is set and has passed.
func expired(t time.Time) bool {
	return !t.IsZero() && !time.Now().Before(t)
}

// Read reads what the peer wrote, waiting for at least one byte.
func (c *memConn) Read(b []byte) (int, error) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, c.opErr("read", net.ErrClosed)
		case c.in.reset:
			return 0, c.opErr("read", syscall.ECONNRESET)
		case expired(c.rdl):
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		case len(b) == 0:
			return 0, nil
		case len(c.in.buf) > 0:
			n := copy(b, c.in.buf)
			c.in.buf = c.in.buf[n:]
			if len(c.in.buf) == 0 {
				c.in.buf = nil
			}
			c.l.cond.Broadcast()
			return n, nil
		case c.in.shut:
			return 0, io.EOF
		}
		c.l.cond.Wait()
	}
}

// Write writes all of b, waiting for room in the peer's buffer as needed.
func (c *memConn) Write(b []byte) (int, error) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	n := 0
	for {
		switch {
		case c.closed:
			return n, c.opErr("write", net.ErrClosed)
		case c.out.reset:
			return n, c.opErr("write", syscall.ECONNRESET)
		case c.wshut || c.out.gone:
			return n, c.opErr("write", syscall.EPIPE)
		case expired(c.wdl):
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		case len(b) == 0:
			return n, nil
		}
		if room := c.size - len(c.out.buf); room > 0 {
			k := min(room, len(b))
			c.out.buf = append(c.out.buf, b[:k]...)
			b = b[k:]
			n += k
			c.l.cond.Broadcast()
			continue
		}
		c.l.cond.Wait()
	}
}

// CloseWrite shuts down the writing side: the peer reads io.EOF once it has
// read everything written before. Reading goes on.
func (c *memConn) CloseWrite() error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.wshut = true
	c.out.shut = true
	c.l.cond.Broadcast()
	return nil
}

// Close closes the connection: blocked calls on this end return an error
// matching net.ErrClosed, the peer reads io.EOF after the data already
// written, and the peer's writes fail.
func (c *memConn) Close() error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	c.out.shut = true
	c.in.gone = true
	c.in.buf = nil
	c.stopTimers()
	c.l.cond.Broadcast()
	return nil
}

func (c *memConn) stopTimers() {
	if c.rtm != nil {
		c.rtm.Stop()
	}
	if c.wtm != nil {
		c.wtm.Stop()
	}
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(&c.rdl, &c.rtm, t)
}

func (c *memConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(&c.wdl, &c.wtm, t)
}

// setDeadline sets *dl to t and arms a timer that wakes the waiters when t
// passes, so that they see it.
func (c *memConn) setDeadline(dl *time.Time, tm **time.Timer, t time.Time) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.closed {
		return c.opErr("set deadline", net.ErrClosed)
	}
	*dl = t
	if *tm != nil {
		(*tm).Stop()
		*tm = nil
	}
	if d := time.Until(t); !t.IsZero() && d > 0 {
		*tm = time.AfterFunc(d, func() {
			c.l.mu.Lock()
			c.l.cond.Broadcast()
			c.l.mu.Unlock()
		})
	}
	c.l.cond.Broadcast()
	return nil
}

// reset ends the connection as a TCP reset does: reads and writes on both
// ends fail with ECONNRESET, and data in flight is lost.
func (c *memConn) reset() {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	for i := range c.l.dirs {
		c.l.dirs[i].reset = true
		c.l.dirs[i].buf = nil
	}
	c.l.cond.Broadcast()
}

// waitDrained waits until the peer has read everything written so far, the
// connection ends, or stop is closed; it reports whether the bytes were
// read.
func (c *memConn) waitDrained(stop <-chan struct{}) bool {
	woken := make(chan struct{})
	defer close(woken)
	go func() {
		select {
		case <-stop:
			c.l.mu.Lock()
			c.l.cond.Broadcast()
			c.l.mu.Unlock()
		case <-woken:
		}
	}()
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	for {
		select {
		case <-stop:
			return false
		default:
		}
		switch {
		case c.closed || c.out.reset || c.out.gone:
			return false
		case len(c.out.buf) == 0:
			return true
		}
		c.l.cond.Wait()
	}
}
