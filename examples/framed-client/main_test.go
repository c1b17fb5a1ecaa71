package main

import (
	"bytes"
	"context"
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
