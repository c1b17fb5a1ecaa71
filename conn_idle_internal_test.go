//go:build unix

package framed

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tcpPairInternal(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	b, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	a, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestWaitFrameErrors checks what waiting for a frame's first byte
// returns, on a socket read directly while idle and on a net.Pipe read as
// usual: the bytes and their count when they come, a timeout that can be
// retried, net.ErrClosed after Close, io.EOF when the peer closes, and
// that an idle Conn holds no pooled buffer.
func TestWaitFrameErrors(t *testing.T) {
	for _, tr := range []string{"tcp", "pipe"} {
		t.Run(tr, func(t *testing.T) {
			pair := func() (*Conn, net.Conn) {
				var a, b net.Conn
				if tr == "tcp" {
					a, b = tcpPairInternal(t)
				} else {
					a, b = net.Pipe()
					t.Cleanup(func() { a.Close(); b.Close() })
				}
				return NewConn(a, ConnConfig{}), b
			}

			c, peer := pair()
			if tr == "tcp" {
				require.NotNil(t, c.rd.wait, "a TCP socket is read directly while idle")
			} else {
				require.Nil(t, c.rd.wait, "a pipe is read as usual")
			}
			err := c.waitFrame(20*time.Millisecond, 0)
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "%v is a timeout", err)
			if tr == "tcp" {
				assert.Nil(t, c.rd.buf, "no buffer held after an idle timeout")
			}
			go peer.Write([]byte{3, 0, 0, 0, 'a', 'b', 'c'})
			require.NoError(t, c.waitFrame(time.Second, time.Second), "after a timeout")
			p, err := c.readFrameWithin(time.Second, time.Second)
			require.NoError(t, err)
			assert.Equal(t, "abc", string(p))
			in := c.in.n.Load()
			assert.Equal(t, int64(7), in, "bytes in")

			go func() {
				time.Sleep(20 * time.Millisecond)
				c.Close()
			}()
			require.NoError(t, c.nc.SetReadDeadline(time.Time{}))
			err = c.waitFrame(0, 0)
			assert.ErrorIs(t, err, net.ErrClosed, "Close while waiting")

			c, peer = pair()
			go func() {
				time.Sleep(20 * time.Millisecond)
				peer.Close()
			}()
			assert.Equal(t, io.EOF, c.waitFrame(0, 0), "peer closed")
			_, err = c.ReadFrame()
			assert.Equal(t, io.EOF, err, "ReadFrame after EOF")
		})
	}
}
