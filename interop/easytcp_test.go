package interop_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/DarthPestilane/easytcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// easytcpFormat is easytcp v0.3.2's DefaultPacker: dataSize u32 LE, id u32
// LE, data. A frame is id followed by data.
var easytcpFormat = framed.Format{LengthAdjust: 4}

// Message IDs of the exchange, as in easytcp's README.
const (
	easytcpAsk   = 1001
	easytcpReply = 1002
)

func easytcpFrame(id uint32, data []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, id), data...)
}

// easytcpServer runs an easytcp server with its DefaultPacker on a
// loopback port and prints its address.
func easytcpServer() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s := easytcp.NewServer(&easytcp.ServerOption{DoNotPrintRoutes: true})
	s.AddRoute(easytcpAsk, func(c easytcp.Context) {
		c.SetResponseMessage(easytcp.NewMessage(easytcpReply, reversed(c.Request().Data())))
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(addr) }()
	if err := announce(addr); err != nil {
		return err
	}
	return fmt.Errorf("easytcp: %w", <-errc) // until the test kills this process
}

// TestEasytcpServer has a framed Client talk to an easytcp v0.3.2 server.
func TestEasytcpServer(t *testing.T) {
	_, c, ctx := dialGoPeer(t, "easytcp-server", &framed.Dialer{Format: easytcpFormat})
	for _, m := range messages() {
		got, err := c.Request(ctx, easytcpFrame(easytcpAsk, m))
		require.NoError(t, err, "Request of %d bytes", len(m))
		assert.Equal(t, easytcpFrame(easytcpReply, reversed(m)), got, "reply to %d bytes", len(m))
	}
}

// TestEasytcpClient has easytcp's DefaultPacker, the whole of an easytcp
// client's wire format, talk to a framed Server.
func TestEasytcpClient(t *testing.T) {
	ln := listen(t)
	s := &framed.Server{Format: easytcpFormat, Handler: framed.HandlerFunc(func(_ context.Context, c *framed.Conn, p []byte) error {
		if id := binary.LittleEndian.Uint32(p); id != easytcpAsk {
			return fmt.Errorf("message ID %d", id)
		}
		return c.WriteFrame(easytcpFrame(easytcpReply, reversed(p[4:])))
	})}
	serve(t, s, ln)

	nc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(peerTimeout)))
	packer := easytcp.NewDefaultPacker()
	var stream []byte // every request in one write: the Server must split them
	for _, m := range messages() {
		b, err := packer.Pack(easytcp.NewMessage(easytcpAsk, m))
		require.NoError(t, err)
		stream = append(stream, b...)
	}
	_, err = nc.Write(stream)
	require.NoError(t, err)
	for _, m := range messages() {
		msg, err := packer.Unpack(nc)
		require.NoError(t, err, "Unpack the reply to %d bytes", len(m))
		assert.Equal(t, easytcpReply, msg.ID(), "reply ID")
		assert.Equal(t, reversed(m), msg.Data(), "reply to %d bytes", len(m))
	}
}

// TestEasytcpPack checks the golden vectors of testdata/golden.txt against
// easytcp's own packer.
func TestEasytcpPack(t *testing.T) {
	packer := easytcp.NewDefaultPacker()
	for _, c := range goldenFrames(t, "easytcp") {
		id := binary.LittleEndian.Uint32(c.frame)
		got, err := packer.Pack(easytcp.NewMessage(int(id), c.frame[4:]))
		require.NoError(t, err)
		assert.Equal(t, c.wire, got, "golden.txt:%d: easytcp's packet", c.line)
	}
}
