package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

func TestVerifiesEveryEcho(t *testing.T) {
	srv := framedtest.NewServer(framed.EchoHandler{})
	defer srv.Close()
	addr := srv.Addr
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-addr", addr, "-n", "500", "-size", "100", "-c", "8"}, &out))
	assert.Contains(t, out.String(), "500 frames of 100 bytes sent to "+addr+", 500 echoes verified")
}

func TestDetectsAWrongEcho(t *testing.T) {
	srv := framedtest.NewServer(framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
		frame[len(frame)-1]++ // a server that corrupts the last byte
		return c.WriteFrame(frame)
	}))
	defer srv.Close()
	var out bytes.Buffer
	err := run(t.Context(), []string{"-addr", srv.Addr, "-n", "10"}, &out)
	assert.ErrorContains(t, err, "echo differs")
}

func TestRejectsBadFlags(t *testing.T) {
	assert.Error(t, run(t.Context(), []string{"-size", "4"}, nil))
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "framed-client")
}

// TestSurvivesARestart restarts the server on its address halfway through
// a run given two addresses, the first of which refuses connections.
func TestSurvivesARestart(t *testing.T) {
	const n = 2000
	var (
		mu     sync.Mutex
		served int
	)
	half := make(chan struct{})
	handler := framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
		mu.Lock()
		served++
		if served == n/2 {
			close(half)
		}
		mu.Unlock()
		return c.WriteFrame(frame)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	serve := func(ln net.Listener) (stop func()) {
		srv := &framed.Server{Handler: handler}
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.Serve(ln)
		}()
		return func() {
			srv.Close()
			<-done
		}
	}
	stop := serve(ln)
	spare, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	spare.Close() // its address now refuses connections

	var out bytes.Buffer
	result := make(chan error, 1)
	go func() {
		result <- run(t.Context(), []string{"-addr", spare.Addr().String() + "," + addr, "-n", strconv.Itoa(n), "-c", "8"}, &out)
	}()
	<-half
	stop()
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	stop = serve(ln)
	defer stop()
	require.NoError(t, <-result)
	assert.Contains(t, out.String(), "2000 echoes verified")
}
