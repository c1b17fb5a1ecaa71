package interop_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// nettyFormat is the layout netty/NettyPeer.java speaks: a 2-byte tag,
// then a 3-byte big-endian length that counts the whole frame, then the
// body; Netty's LengthFieldBasedFrameDecoder(BIG_ENDIAN, max, 2, 3, -5, 0,
// true). A frame is the tag followed by the body.
var nettyFormat = framed.Format{LengthOffset: 2, HeaderSize: 3, BigEndian: true, LengthAdjust: -5}

// nettySizes are the body sizes exchanged with Netty: empty, small, and
// more than one read.
var nettySizes = []int{0, 1, 5, 300, 70000}

// nettyJars are the parts of Debian's libnetty-java the peer needs.
var nettyJars = []string{"common", "buffer", "transport", "codec", "resolver"}

// startNetty runs netty/NettyPeer.java with args. Without java or Netty's
// jars the test fails, saying what is missing, unless FRAMED_INTEROP_NO_JAVA
// is set.
func startNetty(t *testing.T, args ...string) *peer {
	t.Helper()
	java, err := exec.LookPath("java")
	var cp []string
	for _, j := range nettyJars {
		jar := "/usr/share/java/netty-" + j + ".jar"
		if _, statErr := os.Stat(jar); statErr != nil {
			err = errors.Join(err, statErr)
		}
		cp = append(cp, jar)
	}
	if err != nil {
		if os.Getenv("FRAMED_INTEROP_NO_JAVA") != "" {
			t.Skipf("no Netty peer (FRAMED_INTEROP_NO_JAVA is set): %v", err)
		}
		t.Fatalf("the Netty peer needs java and Debian's libnetty-java (apt-get install libnetty-java): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*peerTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, java, append([]string{"-cp", strings.Join(cp, ":"), "netty/NettyPeer.java"}, args...)...)
	return startPeer(t, cmd)
}

// nettyBody is NettyPeer.java's pattern(n).
func nettyBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func nettyFrame(tag uint16, body []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, tag), body...)
}

// TestNettyServer sends frames to a Netty server through framed's Writer
// and Reader on a raw connection and through a Client, and checks its
// replies: tag+1 and the body reversed.
func TestNettyServer(t *testing.T) {
	p := startNetty(t, "server")
	addr := p.waitLine(t, "LISTEN ")

	t.Run("Writer and Reader", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer nc.Close()
		require.NoError(t, nc.SetDeadline(time.Now().Add(peerTimeout)))
		w := framed.NewWriter(nc, nettyFormat)
		for _, n := range nettySizes {
			require.NoError(t, w.WriteFrame(nettyFrame(7, nettyBody(n))), "WriteFrame of %d bytes", n)
		}
		require.NoError(t, w.Flush())
		r := framed.NewReader(nc, nettyFormat)
		for _, n := range nettySizes {
			got, err := r.ReadFrame()
			require.NoError(t, err, "ReadFrame of the reply to %d bytes", n)
			assert.Equal(t, nettyFrame(8, reversed(nettyBody(n))), got, "reply to %d bytes", n)
		}
	})

	t.Run("Client", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
		defer cancel()
		c, err := (&framed.Dialer{Format: nettyFormat}).Dial(ctx, addr)
		require.NoError(t, err)
		defer c.Close()
		for _, n := range nettySizes {
			got, err := c.Request(ctx, nettyFrame(7, nettyBody(n)))
			require.NoError(t, err, "Request of %d bytes", n)
			assert.Equal(t, nettyFrame(8, reversed(nettyBody(n))), got, "reply to %d bytes", n)
		}
	})
}

// TestNettyClient has a Netty client send all its frames in one write to
// framed, which splits them and replies: through framed's Reader and
// Writer on an accepted connection, and through a Server.
func TestNettyClient(t *testing.T) {
	reply := func(p []byte) []byte {
		return nettyFrame(binary.BigEndian.Uint16(p)+1, reversed(p[2:]))
	}
	sizes := make([]string, len(nettySizes))
	for i, n := range nettySizes {
		sizes[i] = strconv.Itoa(n)
	}
	portOf := func(ln net.Listener) string { return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) }

	t.Run("Reader and Writer", func(t *testing.T) {
		ln := listen(t)
		defer ln.Close()
		errc := make(chan error, 1)
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				errc <- err
				return
			}
			defer nc.Close()
			r, w := framed.NewReader(nc, nettyFormat), framed.NewWriter(nc, nettyFormat)
			for range nettySizes {
				p, err := r.ReadFrame()
				if err != nil {
					errc <- fmt.Errorf("ReadFrame: %w", err)
					return
				}
				if err := w.WriteFrame(reply(p)); err != nil {
					errc <- err
					return
				}
			}
			errc <- w.Flush()
			_, _ = io.Copy(io.Discard, nc) // until the peer closes
		}()
		p := startNetty(t, append([]string{"client", portOf(ln)}, sizes...)...)
		p.waitLine(t, "OK")
		require.NoError(t, <-errc)
	})

	t.Run("Server", func(t *testing.T) {
		ln := listen(t)
		s := &framed.Server{Format: nettyFormat, Handler: framed.HandlerFunc(func(_ context.Context, c *framed.Conn, p []byte) error {
			return c.WriteFrame(reply(p))
		})}
		serve(t, s, ln)
		p := startNetty(t, append([]string{"client", portOf(ln)}, sizes...)...)
		p.waitLine(t, "OK")
		assert.Equal(t, int64(len(nettySizes)), s.Stats().FramesIn, "frames the Server read")
	})
}
