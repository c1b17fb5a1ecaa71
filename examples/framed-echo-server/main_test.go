package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEchoesFramesAndEnforcesMaxFrame(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0", "-max-frame", "16")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	client, err := (&framed.Dialer{Format: framed.Format{MaxFrameSize: 16}}).Dial(ctx, srv.Addr)
	require.NoError(t, err)
	defer client.Close()
	reply, err := client.Request(ctx, []byte("hello"))
	require.NoError(t, err)
	assert.Equal(t, "hello", string(reply))

	// A header above -max-frame ends that connection.
	raw, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, raw.SetDeadline(time.Now().Add(5*time.Second)))
	rc := framed.NewConn(raw, framed.ConnConfig{})
	require.NoError(t, rc.WriteFrame(make([]byte, 17)))
	_, err = rc.ReadFrame()
	assert.Error(t, err, "the server should close a connection that sent a 17-byte frame")

	// The first client is unaffected.
	reply, err = client.Request(ctx, []byte("again"))
	require.NoError(t, err)
	assert.Equal(t, "again", string(reply))
}

func TestShutdownPrintsStats(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	client, err := framed.Dial(ctx, srv.Addr)
	require.NoError(t, err)
	_, err = client.Request(ctx, []byte("x"))
	require.NoError(t, err)
	require.NoError(t, client.Close())
	srv.Stop()
	assert.Contains(t, srv.Output(), "stopped: 1 connections, 1 frames in, 1 frames out")
}

func TestRejectsBadMaxFrame(t *testing.T) {
	assert.Error(t, run(t.Context(), []string{"-max-frame", "0"}, nil))
}
