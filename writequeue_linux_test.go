package framed_test

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// writeSyscalls returns the write system calls this process has made
// (syscw in /proc/self/io).
func writeSyscalls(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	require.NoError(t, err)
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw: ")); ok {
			n, err := strconv.ParseInt(string(v), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}

// TestConnStreamBatchesOverTCP: one goroutine writing 64-byte frames back
// to back over TCP, with no Flush, makes a small fraction of a write
// system call per frame, as a bufio loop does, and not one per frame.
func TestConnStreamBatchesOverTCP(t *testing.T) {
	const frames = 20000
	na, nb := tcpPair(t)
	drained := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, nb)
		drained <- n
	}()
	c := framed.NewConn(na, framed.ConnConfig{})
	msg := make([]byte, 64)
	before := writeSyscalls(t)
	for range frames {
		require.NoError(t, c.WriteFrame(msg))
	}
	require.NoError(t, c.CloseWrite())
	writes := writeSyscalls(t) - before
	assert.EqualValues(t, frames*68, wait(t, drained, "the peer to read everything"))
	require.NoError(t, c.Close())
	perFrame := float64(writes) / frames
	t.Logf("%d frames in %d write system calls (%.4f per frame)", frames, writes, perFrame)
	limit := 0.1
	if raceEnabled {
		limit = 0.5 // the race detector slows the writer more than the writes
	}
	assert.Less(t, perFrame, limit, "write system calls per frame")
}
