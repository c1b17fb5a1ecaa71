//go:build unix

package framed

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// idleRead reads a connection that has no bytes buffered without holding a
// read buffer while it waits: the buffer is taken from the pool only once
// the socket is readable. So a connection idle between frames costs no
// read buffer, whatever the buffer's size.
type idleRead struct {
	rc     syscall.RawConn
	rd     *Reader
	in     *countingReader
	read   func(uintptr) bool        // tryRead, made once so that waiting does not allocate
	readFd func([]byte) (int, error) // readSocket, likewise
	fd     int                       // the socket, while the poller calls tryRead
	got    int
	err    error
}

// plainSocket returns c's raw connection when c is one of the net
// package's own socket types, and nil for anything else (TLS, net.Pipe, a
// wrapper): a wrapper that embeds a socket has its SyscallConn but may
// have its own Read or Write, with bytes buffered or transformed, which
// using the socket directly would skip.
func plainSocket(c net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := c.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// idleReader returns the Reader's wait function for c, or nil when c is
// not a plain socket (TLS, net.Pipe), which is then read as usual. Only
// the net package's own socket types qualify: a wrapper that embeds one
// has its SyscallConn but may have its own Read, with bytes buffered or
// transformed, which reading the socket directly would skip.
func idleReader(c net.Conn, rd *Reader, in *countingReader) func() error {
	rc := plainSocket(c)
	if rc == nil {
		return nil
	}
	ir := &idleRead{rc: rc, rd: rd, in: in}
	ir.read, ir.readFd = ir.tryRead, ir.readSocket
	return ir.wait
}

// wait reads at least one byte into the Reader's buffer, or returns why it
// could not: io.EOF, a timeout, or a closed or failed connection.
func (ir *idleRead) wait() error {
	ir.got, ir.err = 0, nil
	if err := ir.rc.Read(ir.read); err != nil {
		return asRead(err)
	}
	if ir.err != nil {
		return ir.err
	}
	if ir.got == 0 {
		return io.EOF
	}
	return nil
}

// tryRead reads what the socket has into the Reader. It reports false
// when there is nothing yet, the Reader holding no buffer: the poller then
// waits until the socket is readable, closed or past its deadline, and
// calls it again.
func (ir *idleRead) tryRead(fd uintptr) bool {
	ir.fd = int(fd)
	n, err := ir.rd.readIdle(ir.readFd)
	switch {
	case err == syscall.EAGAIN:
		return false
	case err != nil:
		ir.err = os.NewSyscallError("read", err)
	case n > 0:
		ir.got = n
		ir.in.got(n)
	}
	return true
}

// readSocket is one read(2) of the socket, retried when a signal
// interrupts it.
func (ir *idleRead) readSocket(p []byte) (int, error) {
	for {
		n, err := syscall.Read(ir.fd, p)
		if err != syscall.EINTR {
			return max(n, 0), err
		}
	}
}

// asRead names a failed wait after the read it stands for. The poller calls
// its operation "raw-read", so an idle timeout would log "raw-read tcp ...:
// i/o timeout" where a timeout inside a frame logs "read tcp ...".
func asRead(err error) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "raw-read" {
		return err
	}
	named := *oe
	named.Op = "read"
	return &named
}
