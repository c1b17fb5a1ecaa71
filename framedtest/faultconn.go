package framedtest

import (
	"net"
	"sync"
	"time"
)

// FaultConn is a net.Conn with [Faults] on each direction, wrapped around
// another net.Conn: what is written to it goes through Out on its way to c,
// and what c receives goes through In on its way to Read. It behaves as the
// connections of a [Listener] do (deadlines, CloseWrite, Close); a
// [github.com/framed-go/framed.Conn] can be made on it, on either end of a
// test, to see how the code behaves when the network cuts, delays or breaks
// the stream.
//
// Two goroutines move the bytes; Close stops them and waits for them.
type FaultConn struct {
	*memConn

	// Out is what happens to the bytes written to the FaultConn.
	Out *Faults
	// In is what happens to the bytes c receives, before Read returns
	// them.
	In *Faults

	c       net.Conn
	inner   *memConn
	unstall chan struct{}
	stop    chan struct{}
	once    sync.Once
	endOnce sync.Once
	up      sync.WaitGroup
	down    sync.WaitGroup
}

// WrapConn returns a FaultConn around c, with no faults set yet. The
// FaultConn owns c: closing it closes c.
func WrapConn(c net.Conn) *FaultConn {
	user, inner := newMemPipe(DefaultBufferSize, c.LocalAddr(), c.RemoteAddr())
	fc := &FaultConn{
		memConn: user, Out: &Faults{}, In: &Faults{},
		c: c, inner: inner,
		unstall: make(chan struct{}), stop: make(chan struct{}),
	}
	up := &pump{src: inner, dst: c, f: fc.Out, stop: fc.stop, unstall: fc.unstall, end: fc.end,
		eof: func() {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}}
	down := &pump{src: c, dst: inner, f: fc.In, stop: fc.stop, unstall: fc.unstall, end: fc.end,
		eof: func() { inner.CloseWrite() }}
	fc.up.Add(1)
	fc.down.Add(1)
	go func() { defer fc.up.Done(); up.run() }()
	go func() { defer fc.down.Done(); down.run() }()
	return fc
}

// end ends the connection both ways when a fault's limit is reached: with
// a reset, or with a close that both ends read as EOF.
func (fc *FaultConn) end(reset bool) {
	fc.endOnce.Do(func() {
		if reset {
			resetConn(fc.c)
			fc.inner.reset()
		} else {
			fc.c.Close()
			fc.inner.Close()
		}
	})
}

// Reset resets the connection now, both ways: c is closed with a TCP RST
// when it is a TCP connection, and Read and Write on the FaultConn return
// errors matching syscall.ECONNRESET.
func (fc *FaultConn) Reset() { fc.end(true) }

// closeLinger bounds how long Close waits for the bytes already written to
// go on to c.
const closeLinger = time.Second

// Close closes the FaultConn. The bytes already written go on to c through
// Out's faults, for at most a second (a stall ends at once and drops what it
// held); then c is closed, and Close returns once both goroutines have
// stopped.
func (fc *FaultConn) Close() error {
	err := fc.memConn.Close()
	fc.once.Do(func() {
		var stopOnce sync.Once
		stop := func() { stopOnce.Do(func() { close(fc.stop) }) }
		close(fc.unstall)
		fc.c.SetWriteDeadline(time.Now().Add(closeLinger))
		t := time.AfterFunc(closeLinger, stop)
		fc.up.Wait()
		t.Stop()
		fc.end(false)
		stop()
		fc.down.Wait()
	})
	return err
}
