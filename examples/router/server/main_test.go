package main

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

// msg is a frame: a message ID, then data.
func msg(id uint32, data string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, id), data...)
}

func TestRoutesByMessageID(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0", "-v")
	framedtest.NewFormatScript(zinx).
		Send(msg(msgPing, "")).
		Expect(msg(msgPing, "pong")).
		Send(msg(msgUpper, "hello, router")).
		Expect(msg(msgUpper, "HELLO, ROUTER")).
		Send(msg(msgReverse, "stressed")).
		Expect(msg(msgReverse, "desserts")).
		RunAddr(t, srv.Addr)
	srv.Stop()
	assert.Contains(t, srv.Output(), "stopped: 1 connections, 3 frames in, 3 frames out, 0 with no route")
	assert.Contains(t, srv.Output(), "msg=frame")
	assert.Contains(t, srv.Output(), "msgID=3 data=8")
}

// TestUnknownMessageIDEndsTheConnection: the frames before the unknown ID
// are answered, in the same write as it, and then the connection ends:
// nothing is answered after it, and nothing is dropped silently.
func TestUnknownMessageIDEndsTheConnection(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0")
	var stream []byte
	for _, m := range [][]byte{msg(msgPing, ""), msg(99, "anyone?"), msg(msgPing, "")} {
		var err error
		stream, err = zinx.AppendFrame(stream, m)
		if err != nil {
			t.Fatal(err)
		}
	}
	framedtest.NewFormatScript(zinx).
		SendRaw(stream).
		Expect(msg(msgPing, "pong")).
		ExpectEOF().
		RunAddr(t, srv.Addr)
	srv.Stop()
	assert.Contains(t, srv.Output(), "stopped: 1 connections, 2 frames in, 1 frames out, 1 with no route")
}

// TestReverseTakesAtMost256Bytes: the route's own middleware refuses more,
// and the connection ends.
func TestReverseTakesAtMost256Bytes(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0")
	data := string(bytes.Repeat([]byte("ab"), 128))
	framedtest.NewFormatScript(zinx).
		Send(msg(msgReverse, data)).
		Expect(msg(msgReverse, string(bytes.Repeat([]byte("ba"), 128)))).
		Send(msg(msgReverse, data+"c")).
		ExpectClosed(5*time.Second).
		RunAddr(t, srv.Addr)
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "router-server")
}
