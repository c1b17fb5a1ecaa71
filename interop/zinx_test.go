package interop_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aceld/zinx/zconf"
	"github.com/aceld/zinx/ziface"
	"github.com/aceld/zinx/zlog"
	"github.com/aceld/zinx/znet"
	"github.com/aceld/zinx/zpack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// zinxFormat is zinx v1.2.6's default TLV packet: msgID u32 BE, dataLen
// u32 BE, data. A frame is msgID followed by data.
var zinxFormat = framed.Format{LengthOffset: 4, BigEndian: true}

// Message IDs of the exchange: requests carry zinxAsk, replies zinxReply
// and the request's data reversed.
const (
	zinxAsk   = 1
	zinxReply = 2
)

func zinxFrame(id uint32, data []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, id), data...)
}

// reverseRouter replies to every request with its data reversed.
type reverseRouter struct{ znet.BaseRouter }

func (*reverseRouter) Handle(req ziface.IRequest) {
	_ = req.GetConnection().SendMsg(zinxReply, reversed(req.GetData()))
}

// zinxServer runs a zinx server with its default packet on a loopback
// port and prints its address.
func zinxServer() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	zlog.SetLogLevel(zlog.LogError)
	s := znet.NewUserConfServer(&zconf.Config{
		Name: "interop", Host: "127.0.0.1", TCPPort: port,
		MaxPacketSize: 1 << 20, LogIsolationLevel: zlog.LogError,
	})
	s.AddRouter(zinxAsk, &reverseRouter{})
	go s.Serve()
	if err := announce("127.0.0.1:" + strconv.Itoa(port)); err != nil {
		return err
	}
	select {} // until the test kills this process
}

// zinxClient connects a zinx client to the port in args, sends every
// message and checks the replies.
func zinxClient(args string) error {
	port, err := strconv.Atoi(args)
	if err != nil {
		return err
	}
	zlog.SetLogLevel(zlog.LogError)
	zconf.GlobalObject.MaxPacketSize = 1 << 20
	replies := make(chan []byte, 16)
	c := znet.NewClient("127.0.0.1", port)
	c.AddRouter(zinxReply, &collectRouter{replies: replies})
	sent := make(chan error, 1)
	c.SetOnConnStart(func(conn ziface.IConnection) {
		for _, m := range messages() {
			if err := conn.SendMsg(zinxAsk, m); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	})
	c.Start()
	defer c.Stop()
	timeout := time.After(peerTimeout / 2)
	select {
	case err := <-sent:
		if err != nil {
			return err
		}
	case err := <-c.GetErrChan():
		return err
	case <-timeout:
		return fmt.Errorf("could not send")
	}
	// zinx's client handles each message on a goroutine of its own, so
	// replies may reach the router in any order.
	want := map[string]int{}
	for _, m := range messages() {
		want[string(reversed(m))]++
	}
	for i := range messages() {
		select {
		case got := <-replies:
			if want[string(got)] == 0 {
				return fmt.Errorf("reply %d: %d bytes, not a request reversed", i, len(got))
			}
			want[string(got)]--
		case <-timeout:
			return fmt.Errorf("no reply %d", i)
		}
	}
	fmt.Println("OK")
	return nil
}

type collectRouter struct {
	znet.BaseRouter
	replies chan<- []byte
}

func (r *collectRouter) Handle(req ziface.IRequest) {
	r.replies <- bytes.Clone(req.GetData())
}

// TestZinxServer has a framed Client talk to a zinx v1.2.6 server.
func TestZinxServer(t *testing.T) {
	_, c, ctx := dialGoPeer(t, "zinx-server", &framed.Dialer{Format: zinxFormat})
	for _, m := range messages() {
		require.NoError(t, c.Send(ctx, zinxFrame(zinxAsk, m)), "Send of %d bytes", len(m))
	}
	for _, m := range messages() {
		got, err := c.Receive(ctx)
		require.NoError(t, err, "Receive the reply to %d bytes", len(m))
		assert.Equal(t, zinxFrame(zinxReply, reversed(m)), got, "reply to %d bytes", len(m))
	}
}

// TestZinxClient has a zinx v1.2.6 client talk to a framed Server.
func TestZinxClient(t *testing.T) {
	ln := listen(t)
	s := &framed.Server{Format: zinxFormat, Handler: framed.HandlerFunc(func(_ context.Context, c *framed.Conn, p []byte) error {
		if id := binary.BigEndian.Uint32(p); id != zinxAsk {
			return fmt.Errorf("message ID %d", id)
		}
		return c.WriteFrame(zinxFrame(zinxReply, reversed(p[4:])))
	})}
	serve(t, s, ln)
	_, port, _ := strings.Cut(ln.Addr().String(), ":")
	p := startGoPeer(t, "zinx-client", port)
	p.waitLine(t, "OK")
	assert.Equal(t, int64(len(messages())), s.Stats().FramesIn, "frames the Server read")
}

// TestZinxPack checks the golden vectors of testdata/golden.txt against
// zinx's own packer.
func TestZinxPack(t *testing.T) {
	dp := zpack.NewDataPack()
	for _, c := range goldenFrames(t, "zinx") {
		id := binary.BigEndian.Uint32(c.frame)
		got, err := dp.Pack(zpack.NewMsgPackage(id, c.frame[4:]))
		require.NoError(t, err)
		assert.Equal(t, c.wire, got, "golden.txt:%d: zinx's packet", c.line)
	}
}

// zinxConnected waits until the zinx client c, started with an
// OnConnStart hook that sends on started, is connected, and returns its
// connection; or says why it could not connect.
func zinxConnected(c ziface.IClient, started <-chan ziface.IConnection) (ziface.IConnection, error) {
	timer := time.NewTimer(peerTimeout / 2)
	defer timer.Stop()
	select {
	case conn := <-started:
		return conn, nil
	case err := <-c.GetErrChan():
		return nil, err
	case <-timer.C:
		return nil, errors.New("zinx client: no connection")
	}
}
