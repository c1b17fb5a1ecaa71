package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/cli"
	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

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
	err = run(context.Background(), []string{"-addr", pc.LocalAddr().String(), "-timeout", "50ms"}, strings.NewReader("anyone?\nstill there?\n"), &out)
	assert.ErrorContains(t, err, "no reply from "+pc.LocalAddr().String()+" to any of 2 datagrams")
	assert.Equal(t, 1, cli.Exit(io.Discard, "udp-echo-client", err), "exit status when no reply ever came")
	assert.Equal(t, 2, strings.Count(out.String(), "no reply within 50ms"), out.String())
}

func TestReportsRefusalAtOnce(t *testing.T) {
	// A port that was just free: nothing listens on it now.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())

	var out bytes.Buffer
	start := time.Now()
	err = run(t.Context(), []string{"-addr", addr, "-timeout", "5s"}, strings.NewReader("anyone?\nnot sent\n"), &out)
	assert.ErrorIs(t, err, framed.ErrExchangeRefused)
	assert.ErrorContains(t, err, "nothing listens at "+addr)
	assert.Less(t, time.Since(start), 2*time.Second, "the refusal waited for -timeout")
	assert.Equal(t, 1, cli.Exit(io.Discard, "udp-echo-client", err), "exit status")
	assert.NotContains(t, out.String(), "no reply within")
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "udp-echo-client")
}
