package framed_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// unacked returns the bytes c has sent that its peer's TCP has not yet
// acknowledged (ioctl TIOCOUTQ): zero means the peer's kernel holds them.
func unacked(t testing.TB, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var v int32
	var errno syscall.Errno
	require.NoError(t, rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v)))
	}))
	require.Zero(t, errno)
	return int(v)
}

// drainSetup starts s, whose handler blocks on the first frame of each
// connection until release is closed, and connects clients that each send
// one frame, wait for the server to be serving it, then send more frames
// that pile up in the server's socket, unread, and wait until the
// server's TCP has acknowledged every byte. It returns the clients and
// the frames each had delivered to the server.
func drainSetup(t *testing.T, s *framed.Server, clients, more int, release <-chan struct{}, reply bool) (*running, []*framed.Conn) {
	t.Helper()
	started := make(chan struct{}, clients)
	var firsts atomic.Int64
	s.Handler = framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if binary.LittleEndian.Uint32(p) == 0 {
			firsts.Add(1)
			started <- struct{}{}
			<-release
		}
		if reply {
			return c.WriteFrame(p)
		}
		return nil
	})
	r := serve(t, s)
	conns := make([]*framed.Conn, clients)
	for i := range clients {
		nc := dialRaw(t, r.addr)
		require.NoError(t, nc.SetReadBuffer(4096)) // replies back up quickly
		c := framed.NewConn(nc, framed.ConnConfig{})
		msg := make([]byte, 1024)
		require.NoError(t, c.WriteFrame(msg))
		require.NoError(t, c.Flush())
		wait(t, started, "the first frame to be served")
		for seq := 1; seq <= more; seq++ {
			binary.LittleEndian.PutUint32(msg, uint32(seq))
			require.NoError(t, c.WriteFrame(msg))
		}
		require.NoError(t, c.Flush())
		waitFor(t, testTimeout, "the server's TCP to acknowledge every byte", func() bool { return unacked(t, nc) == 0 })
		conns[i] = c
	}
	return r, conns
}

// TestServerShutdownDrains: frames the server's TCP had received, unread,
// when Shutdown began are all served and answered, then EOF.
func TestServerShutdownDrains(t *testing.T) {
	const (
		clients = 4
		more    = 48 // 1 KiB frames: within the receive window
	)
	release := make(chan struct{})
	s := &framed.Server{}
	r, conns := drainSetup(t, s, clients, more, release, true)
	received := clients * (1 + more)

	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()
	// Serve returns once Shutdown has closed the listener and reached
	// every connection.
	assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
	close(release)

	// Read every client at once: a client left unread meanwhile would
	// have its peer back off in zero-window probes.
	counts := make([]int, clients)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				p, err := c.ReadFrame()
				if err != nil {
					assert.Equal(t, io.EOF, err, "client %d after %d replies", i, seq)
					counts[i] = seq
					return
				}
				if !assert.Equal(t, uint32(seq), binary.LittleEndian.Uint32(p), "client %d reply %d", i, seq) {
					return
				}
			}
		})
	}
	wg.Wait()
	replies := 0
	for i, n := range counts {
		assert.Equal(t, 1+more, n, "client %d replies", i)
		replies += n
	}
	require.NoError(t, wait(t, shutdown, "Shutdown"))
	st := s.Stats()
	t.Logf("frames received at Shutdown: %d; served %d; replies received %d", received, st.FramesIn, replies)
	assert.Equal(t, received, replies, "every frame received before Shutdown is answered")
	assert.EqualValues(t, received, st.FramesIn)
	assert.EqualValues(t, received, st.FramesOut)
}

// TestServerShutdownDrainsOneWay: a sink counts every frame that reached
// the server before Shutdown.
func TestServerShutdownDrainsOneWay(t *testing.T) {
	const (
		clients = 4
		more    = 48
	)
	release := make(chan struct{})
	s := &framed.Server{}
	r, _ := drainSetup(t, s, clients, more, release, false)
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()
	assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
	close(release)
	require.NoError(t, wait(t, shutdown, "Shutdown"))
	assert.EqualValues(t, clients*(1+more), s.Stats().FramesIn, "frames served once Shutdown returned")
}
