package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startEcho runs a UDPServer on a loopback port until the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &framed.UDPServer{}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(pc) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return pc.LocalAddr().String()
}

func TestSendsLinesUntilQ(t *testing.T) {
	addr := startEcho(t)
	var out bytes.Buffer
	err := run(t.Context(), []string{"-addr", addr}, strings.NewReader("hello\nworld\nq\nnot sent\n"), &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "echo: hello\necho: world\nbye\n")
	assert.NotContains(t, out.String(), "not sent")
}

func TestReportsLostReply(t *testing.T) {
	// A socket that receives but never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	var out bytes.Buffer
	err = run(context.Background(), []string{"-addr", pc.LocalAddr().String(), "-timeout", "50ms"}, strings.NewReader("anyone?\n"), &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "no reply within 50ms")
}
