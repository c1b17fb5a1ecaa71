package framed_test

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// blackholeAddr returns a loopback address that drops connection attempts
// unanswered, as a host that is down does: a listener with a backlog of
// one, filled, that never accepts. Linux then drops further SYNs, so a
// dial waits until its timeout.
func blackholeAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	f := os.NewFile(uintptr(fd), "blackhole")
	ln, err := net.FileListener(f) // a dup: f is closed below
	f.Close()
	require.NoError(t, err)
	addr := ln.Addr().String()
	var fill []net.Conn
	t.Cleanup(func() {
		for _, c := range fill {
			c.Close()
		}
		ln.Close()
	})
	// Fill the accept queue (backlog 0 takes one) and the SYN queue.
	for range 2 {
		c, err := net.DialTimeout("tcp", addr, 100e6)
		if err != nil {
			break
		}
		fill = append(fill, c)
	}
	return addr
}
