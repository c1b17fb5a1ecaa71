package main

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/cli"
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

	// A frame above -max-frame ends that connection, with no reply.
	framedtest.NewScript().Send(make([]byte, 17)).ExpectClosed(5*time.Second).RunAddr(t, srv.Addr)

	// The first client is unaffected.
	reply, err = client.Request(ctx, []byte("again"))
	require.NoError(t, err)
	assert.Equal(t, "again", string(reply))
}

// TestPassesConformance holds the server, as its flags start it, to what
// framedspec checks; CI also runs framedspec against the built program.
func TestPassesConformance(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0", "-max-frame", "1000")
	framedtest.Conformance(t, srv.Addr, framedtest.ConformanceOptions{Format: framed.Format{MaxFrameSize: 1000}})
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
	assert.Contains(t, srv.Output(), "stopped: 1 connections, 1 frames in, 1 frames out, 0 refused as too large, 0 with an invalid length")
}

func TestShutdownCountsRefusedConnections(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0", "-max-frame", "16")
	for _, header := range [][]byte{{17, 0, 0, 0}, {0xff, 0xff, 0xff, 0xff}} {
		framedtest.NewScript().SendRaw(header).ExpectClosed(5*time.Second).RunAddr(t, srv.Addr)
	}
	srv.Stop()
	assert.Contains(t, srv.Output(), "stopped: 2 connections, 0 frames in, 0 frames out, 1 refused as too large, 1 with an invalid length")
}

// TestStopsWithinSixSecondsWithStalledPeer runs the server with its default
// flags, as `go run` does: a peer stalled in the middle of a frame must not
// hold a Ctrl-C for the whole 10 s frame timeout.
func TestStopsWithinSixSecondsWithStalledPeer(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0")
	raw, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
	require.NoError(t, err)
	defer raw.Close()
	require.NoError(t, raw.SetDeadline(time.Now().Add(10*time.Second)))

	// One whole frame, then the header of a 100-byte frame and 10 bytes of
	// it, in one write: once the first echo is back, the server has read
	// the rest too and waits in the middle of the second frame.
	stream := []byte{2, 0, 0, 0, 'h', 'i', 100, 0, 0, 0}
	stream = append(stream, make([]byte, 10)...)
	_, err = raw.Write(stream)
	require.NoError(t, err)
	echo := make([]byte, 6)
	_, err = io.ReadFull(raw, echo)
	require.NoError(t, err)
	require.Equal(t, []byte{2, 0, 0, 0, 'h', 'i'}, echo)

	start := time.Now()
	srv.Stop() // fails the test if run returns an error: the exit status would be 1
	elapsed := time.Since(start)
	assert.Less(t, elapsed, 6*time.Second, "Ctrl-C with a stalled peer")
	assert.Contains(t, srv.Output(), "stopped: 1 connections, 1 frames in, 1 frames out")
	t.Logf("stopped in %v with a peer stalled mid-frame", elapsed.Round(time.Millisecond))
}

// TestProbesCloseSilentClient: with -probe-idle, a client that goes
// silent is sent an empty probe frame, and closed when it does not answer;
// the stats line counts both.
func TestProbesCloseSilentClient(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0", "-probe-idle", "100ms", "-probe-timeout", "100ms")
	framedtest.NewScript().Send([]byte("hi")).Expect([]byte("hi")).
		Expect([]byte{}). // the probe, once the client has been silent for 100 ms
		ExpectClosed(5*time.Second).
		RunAddr(t, srv.Addr)
	srv.Stop()
	assert.Contains(t, srv.Output(), "probes: 1 sent, 0 answered, 1 silent peers closed")
}

func TestRejectsBadValues(t *testing.T) {
	for _, give := range [][]string{{"-max-frame", "0"}, {"-grace", "0s"}, {"-probe-idle", "-1s"}} {
		err := run(t.Context(), give, io.Discard)
		var ue *cli.UsageError
		assert.ErrorAs(t, err, &ue, "%q is a usage error", give)
	}
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "framed-echo-server")
}
