package interop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/DarthPestilane/easytcp"
	"github.com/aceld/zinx/zconf"
	"github.com/aceld/zinx/ziface"
	"github.com/aceld/zinx/zlog"
	"github.com/aceld/zinx/znet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// The routes of the Mux tests, by message ID: ping answers pong, upper
// the data in upper case, reverse the data reversed, each reply with the
// request's message ID. unknownID has no route.
const (
	routePing    = 1
	routeUpper   = 2
	routeReverse = 3
	unknownID    = 99
)

// routedExchange is what each route is sent and answers.
var routedExchange = []struct {
	id         uint32
	data, want string
}{
	{routePing, "ping", "pong"},
	{routeUpper, "hello", "HELLO"},
	{routeReverse, "stressed", "desserts"},
}

// routedServer serves format with a Mux of the three routes, keyed by
// key, on a loopback port. closed receives once per connection, after the
// Server has counted how it ended.
func routedServer(t *testing.T, format framed.Format, key framed.Key) (s *framed.Server, addr string, closed <-chan struct{}) {
	t.Helper()
	mux := &framed.Mux{Key: key}
	const idLen = 4 // zinx's and easytcp's message IDs are 4 bytes at the frame's start
	mux.HandleFunc(routePing, func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:idLen], []byte("pong"))
	})
	mux.HandleFunc(routeUpper, func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:idLen], bytes.ToUpper(frame[idLen:]))
	})
	mux.HandleFunc(routeReverse, func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:idLen], reversed(frame[idLen:]))
	})
	ch := make(chan struct{}, 16)
	s = &framed.Server{Format: format, Handler: mux, ConnState: func(_ *framed.Conn, st framed.ConnState) {
		if st == framed.StateClosed {
			ch <- struct{}{}
		}
	}}
	ln := listen(t)
	serve(t, s, ln)
	return s, ln.Addr().String(), ch
}

// waitClosed waits for a connection of a routedServer to be gone.
func waitClosed(t *testing.T, closed <-chan struct{}) {
	t.Helper()
	select {
	case <-closed:
	case <-time.After(peerTimeout):
		t.Fatal("the connection was not closed")
	}
}

// zinxMuxClient is a zinx v1.2.6 client with a router (AddRouter) per
// message ID: it sends a request to each route of a framed Mux on the
// port in args, checks each reply in the router of its ID, and prints
// ROUTED; then it sends a message ID the Mux has no route for, and prints
// CLOSED when the server has ended the connection.
func zinxMuxClient(args string) error {
	port, err := strconv.Atoi(args)
	if err != nil {
		return err
	}
	zlog.SetLogLevel(zlog.LogError)
	zconf.GlobalObject.MaxPacketSize = 1 << 20
	replies := make(chan zinxReplyMsg, 16)
	stopped := make(chan struct{})
	c := znet.NewClient("127.0.0.1", port)
	for _, ex := range routedExchange {
		c.AddRouter(ex.id, &idRouter{replies: replies})
	}
	started := make(chan ziface.IConnection, 1)
	c.SetOnConnStart(func(conn ziface.IConnection) { started <- conn })
	c.SetOnConnStop(func(ziface.IConnection) { close(stopped) })
	c.Start()
	defer c.Stop()
	timeout := time.After(peerTimeout / 2) // bounds the whole exchange
	conn, err := zinxConnected(c, started)
	if err != nil {
		return err
	}
	for _, ex := range routedExchange {
		if err := conn.SendMsg(ex.id, []byte(ex.data)); err != nil {
			return err
		}
	}
	// zinx's client handles each message on a goroutine of its own, so
	// replies may reach their routers in any order.
	want := map[uint32]string{}
	for _, ex := range routedExchange {
		want[ex.id] = ex.want
	}
	for range routedExchange {
		select {
		case r := <-replies:
			if want[r.id] != r.data {
				return fmt.Errorf("msgID %d: reply %q, want %q", r.id, r.data, want[r.id])
			}
			delete(want, r.id)
		case <-timeout:
			return fmt.Errorf("replies missing: %v", want)
		}
	}
	fmt.Println("ROUTED")

	if err := conn.SendMsg(unknownID, []byte("anyone?")); err != nil {
		return err
	}
	select {
	case <-stopped:
		fmt.Println("CLOSED")
		return nil
	case r := <-replies:
		return fmt.Errorf("msgID %d: got a reply %q to a message ID with no route", r.id, r.data)
	case <-timeout:
		return errors.New("the server did not end the connection")
	}
}

type zinxReplyMsg struct {
	id   uint32
	data string
}

// idRouter passes every message it gets, with its ID, to replies.
type idRouter struct {
	znet.BaseRouter
	replies chan<- zinxReplyMsg
}

func (r *idRouter) Handle(req ziface.IRequest) {
	r.replies <- zinxReplyMsg{id: req.GetMsgID(), data: string(req.GetData())}
}

// TestZinxClientThroughMux has a zinx v1.2.6 client, with a router per
// message ID, talk to a framed Mux: each reply reaches the client's router
// for its ID, and a message ID with no route ends the connection, counted
// by the Server, instead of going unanswered.
func TestZinxClientThroughMux(t *testing.T) {
	s, addr, closed := routedServer(t, zinxFormat, framed.Key{BigEndian: true})
	_, port, _ := strings.Cut(addr, ":")
	p := startGoPeer(t, "zinx-mux-client", port)
	p.waitLine(t, "ROUTED")
	p.waitLine(t, "CLOSED")
	waitClosed(t, closed)
	st := s.Stats()
	assert.EqualValues(t, 1, st.Unrouted, "the unknown message ID")
	assert.EqualValues(t, len(routedExchange), st.FramesOut, "a reply per routed request")
}

// TestZinxServerDropsUnknownIDs shows the other direction: a zinx server
// logs a message ID it has no router for and drops it, so a client that
// matches replies in order takes the next reply for it. (A framed Mux
// ends the connection instead; see TestZinxClientThroughMux.)
func TestZinxServerDropsUnknownIDs(t *testing.T) {
	_, c, ctx := dialGoPeer(t, "zinx-server", &framed.Dialer{Format: zinxFormat})
	require.NoError(t, c.Send(ctx, zinxFrame(unknownID, []byte("lost"))))
	require.NoError(t, c.Send(ctx, zinxFrame(zinxAsk, []byte("abc"))))
	got, err := c.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, zinxFrame(zinxReply, []byte("cba")), got,
		"the first reply is the second request's: the first was dropped without a word")
}

// TestEasytcpClientThroughMux has easytcp v0.3.2's DefaultPacker, what
// easytcp's example clients use (easytcp has no client of its own), talk
// to a framed Mux keyed by easytcp's message ID: every reply carries its
// request's ID, and a message ID with no route ends the connection after
// the replies owed, with none to the request after it.
func TestEasytcpClientThroughMux(t *testing.T) {
	s, addr, closed := routedServer(t, easytcpFormat, framed.Key{}) // id u32 LE at the frame's start
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(peerTimeout)))
	packer := easytcp.NewDefaultPacker()
	var stream []byte // every request in one write
	for _, ex := range routedExchange {
		b, err := packer.Pack(easytcp.NewMessage(int(ex.id), []byte(ex.data)))
		require.NoError(t, err)
		stream = append(stream, b...)
	}
	for _, id := range []int{unknownID, routePing} {
		b, err := packer.Pack(easytcp.NewMessage(id, []byte("after")))
		require.NoError(t, err)
		stream = append(stream, b...)
	}
	_, err = nc.Write(stream)
	require.NoError(t, err)
	for _, ex := range routedExchange {
		msg, err := packer.Unpack(nc)
		require.NoError(t, err, "Unpack the reply to msgID %d", ex.id)
		assert.EqualValues(t, ex.id, msg.ID(), "reply ID")
		assert.Equal(t, ex.want, string(msg.Data()), "reply to msgID %d", ex.id)
	}
	_, err = nc.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the connection ends after the replies owed")
	nc.Close()
	waitClosed(t, closed)
	assert.EqualValues(t, 1, s.Stats().Unrouted)
}

// TestEasytcpServerDropsUnknownIDs: an easytcp server without a NotFound
// handler drops a message ID it has no route for in silence, so a client
// that matches replies in order takes the next reply for it.
func TestEasytcpServerDropsUnknownIDs(t *testing.T) {
	_, c, ctx := dialGoPeer(t, "easytcp-server", &framed.Dialer{Format: easytcpFormat})
	require.NoError(t, c.Send(ctx, easytcpFrame(unknownID, []byte("lost"))))
	require.NoError(t, c.Send(ctx, easytcpFrame(easytcpAsk, []byte("abc"))))
	got, err := c.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, easytcpFrame(easytcpReply, []byte("cba")), got,
		"the first reply is the second request's: the first was dropped in silence")
}
