//go:build unix

package framed

import (
	"net"
	"os"
	"syscall"
)

// socketTryWrite returns a function that writes what a plain socket takes
// at once, without waiting, or nil for any other connection (see
// plainSocket).
func socketTryWrite(c net.Conn) func([]byte) (int, error) {
	rc := plainSocket(c)
	if rc == nil {
		return nil
	}
	t := &tryWriter{rc: rc}
	t.fn = t.tryWrite
	return t.write
}

// tryWriter is one socket's non-blocking write. Its fields are used by one
// write at a time: the write queue's writer.
type tryWriter struct {
	rc  syscall.RawConn
	fn  func(uintptr) bool // tryWrite, made once so that writing does not allocate
	b   []byte
	n   int
	err error
}

func (t *tryWriter) write(b []byte) (int, error) {
	t.b, t.n, t.err = b, 0, nil
	err := t.rc.Write(t.fn)
	t.b = nil
	if err != nil {
		return t.n, err
	}
	return t.n, t.err
}

// tryWrite writes until the socket would block, and then reports true
// anyway, so that the poller never waits.
func (t *tryWriter) tryWrite(fd uintptr) bool {
	for t.n < len(t.b) {
		n, err := syscall.Write(int(fd), t.b[t.n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			t.err = os.NewSyscallError("write", err)
			return true
		case n <= 0:
			return true
		}
		t.n += n
	}
	return true
}
