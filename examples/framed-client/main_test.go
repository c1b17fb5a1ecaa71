package main

import (
	"bytes"
	"context"
	"net"
	"testing"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

// startServer runs a framed Server with handler h until the test ends.
func startServer(t *testing.T, h framed.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &framed.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

func TestVerifiesEveryEcho(t *testing.T) {
	addr := startServer(t, framed.EchoHandler{})
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-addr", addr, "-n", "500", "-size", "100", "-c", "8"}, &out))
	assert.Contains(t, out.String(), "500 frames of 100 bytes sent to "+addr+", 500 echoes verified")
}

func TestDetectsAWrongEcho(t *testing.T) {
	addr := startServer(t, framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
		frame[len(frame)-1]++ // a server that corrupts the last byte
		return c.WriteFrame(frame)
	}))
	var out bytes.Buffer
	err := run(t.Context(), []string{"-addr", addr, "-n", "10"}, &out)
	assert.ErrorContains(t, err, "echo differs")
}

func TestRejectsBadFlags(t *testing.T) {
	assert.Error(t, run(t.Context(), []string{"-size", "4"}, nil))
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "framed-client")
}
