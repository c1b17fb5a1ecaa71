package interop_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aceld/zinx/zconf"
	"github.com/aceld/zinx/ziface"
	"github.com/aceld/zinx/zlog"
	"github.com/aceld/zinx/znet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// zinxBeat is the heartbeat interval of both ends, and zinxBeatData the
// heartbeat's data: zinx's default data names the connection, which a
// fixed probe frame cannot match, so both tests set it.
const zinxBeat = 100 * time.Millisecond

var zinxBeatData = []byte("ping")

// zinxHeartbeatClient connects a zinx client that runs StartHeartBeat to
// the port in args, lets ten heartbeats go, then sends a request and
// checks the reply. It fails if zinx finds the framed server not alive.
func zinxHeartbeatClient(args string) error {
	port, err := strconv.Atoi(args)
	if err != nil {
		return err
	}
	zlog.SetLogLevel(zlog.LogError)
	zconf.GlobalObject.MaxPacketSize = 1 << 20
	replies := make(chan []byte, 16)
	dead := make(chan struct{}, 1)
	started := make(chan ziface.IConnection, 1)
	c := znet.NewClient("127.0.0.1", port)
	c.AddRouter(zinxReply, &collectRouter{replies: replies})
	c.StartHeartBeatWithOption(zinxBeat, &ziface.HeartBeatOption{
		MakeMsg:          func(ziface.IConnection) []byte { return zinxBeatData },
		OnRemoteNotAlive: func(ziface.IConnection) { dead <- struct{}{} },
		HeartBeatMsgID:   ziface.HeartBeatDefaultMsgID,
		Router:           &znet.HeatBeatDefaultRouter{},
	})
	c.SetOnConnStart(func(conn ziface.IConnection) { started <- conn })
	c.Start()
	defer c.Stop()
	timeout := time.After(peerTimeout / 2) // bounds the whole exchange
	conn, err := zinxConnected(c, started)
	if err != nil {
		return err
	}
	select {
	case <-time.After(10 * zinxBeat): // heartbeats flow meanwhile
	case <-dead:
		return fmt.Errorf("zinx found the framed server not alive")
	case err := <-c.GetErrChan():
		return err
	}
	if err := conn.SendMsg(zinxAsk, []byte("abc")); err != nil {
		return err
	}
	select {
	case got := <-replies:
		if string(got) != "cba" {
			return fmt.Errorf("reply %q", got)
		}
	case <-timeout:
		return fmt.Errorf("no reply")
	}
	fmt.Println("OK")
	return nil
}

// beatRouter prints BEAT for each heartbeat a zinx server receives.
type beatRouter struct{ znet.BaseRouter }

func (*beatRouter) Handle(req ziface.IRequest) { fmt.Println("BEAT", string(req.GetData())) }

// zinxBeatID is the heartbeat message id of the zinx server: one of the
// user's, since zinx keeps its own router for its default id.
const zinxBeatID = 99998

// zinxHeartbeatServer runs a zinx server with its default packet and
// StartHeartBeat, prints its address, and prints BEAT for every heartbeat
// it receives and DEAD if it finds a client not alive.
func zinxHeartbeatServer() error {
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
	s.StartHeartBeatWithOption(zinxBeat, &ziface.HeartBeatOption{
		MakeMsg:          func(ziface.IConnection) []byte { return zinxBeatData },
		OnRemoteNotAlive: func(conn ziface.IConnection) { fmt.Println("DEAD"); conn.Stop() },
		HeartBeatMsgID:   zinxBeatID,
		Router:           &beatRouter{},
	})
	go s.Serve()
	if err := announce("127.0.0.1:" + strconv.Itoa(port)); err != nil {
		return err
	}
	select {} // until the test kills this process
}

// TestZinxHeartbeatClient: a zinx v1.2.6 client running StartHeartBeat
// against a framed Server whose probe frame is zinx's heartbeat message.
// The heartbeats are answered (at most one per Idle), never reach the
// Handler nor count as frames, and zinx finds the server alive.
func TestZinxHeartbeatClient(t *testing.T) {
	ln := listen(t)
	handled := make(chan uint32, 64)
	s := &framed.Server{
		Format: zinxFormat,
		Probes: framed.Probes{Idle: zinxBeat, Frame: zinxFrame(ziface.HeartBeatDefaultMsgID, zinxBeatData)},
		Handler: framed.HandlerFunc(func(_ context.Context, c *framed.Conn, p []byte) error {
			id := binary.BigEndian.Uint32(p)
			handled <- id
			if id != zinxAsk {
				return fmt.Errorf("message ID %d", id)
			}
			return c.WriteFrame(zinxFrame(zinxReply, reversed(p[4:])))
		}),
	}
	serve(t, s, ln)
	_, port, _ := strings.Cut(ln.Addr().String(), ":")
	p := startGoPeer(t, "zinx-heartbeat-client", port)
	p.waitLine(t, "OK")
	st := s.Stats()
	t.Logf("framed server: %d probes answered, %d sent", st.ProbesAnswered, st.ProbesSent)
	assert.EqualValues(t, 1, st.FramesIn, "frames served: the request, no heartbeat")
	assert.Equal(t, uint32(zinxAsk), <-handled, "the Handler saw the request")
	assert.Empty(t, handled, "the Handler saw no heartbeat")
	assert.NotZero(t, st.ProbesAnswered, "heartbeats answered")
	assert.Zero(t, st.PeersSilent, "PeersSilent")
}

// TestZinxHeartbeatServer: a framed Client with probes against a zinx
// v1.2.6 server running StartHeartBeat with the same message. The
// server's heartbeats are never taken for replies, the Client's probes
// reach zinx's heartbeat router, and Requests go on being answered.
func TestZinxHeartbeatServer(t *testing.T) {
	d := framed.Dialer{Format: zinxFormat, Probes: framed.Probes{Idle: zinxBeat, Frame: zinxFrame(zinxBeatID, zinxBeatData)}}
	p, c, ctx := dialGoPeer(t, "zinx-heartbeat-server", &d)
	defer c.Close()
	for i := range 3 {
		msg := fmt.Appendf(nil, "request %d", i)
		got, err := c.Request(ctx, zinxFrame(zinxAsk, msg))
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, zinxFrame(zinxReply, reversed(msg)), got, "reply %d", i)
		for range 3 {
			assert.Equal(t, " ping", p.waitLine(t, "BEAT"), "zinx got the Client's probe")
		}
	}
}
