package framed

import (
	"net"
	"syscall"
	"unsafe"
)

// receiveQueued returns how many bytes c's socket has received that no
// read has taken yet, or -1 when that cannot be known: a connection that
// is not a plain TCP socket, TLS included (its bytes are not the
// plaintext's).
func receiveQueued(c net.Conn) int {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return -1
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	rc.Control(func(fd uintptr) {
		var v int32
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v)))
		if errno == 0 {
			n = int(v)
		}
	})
	return n
}
