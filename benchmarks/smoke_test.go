package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smokeFrames is how many frames the smoke test sends in each workload: a
// few windows' worth, divisible by the connection or goroutine count.
func smokeFrames(w *Workload, im Impl) int {
	switch {
	case w.Name == "echo1m":
		return 3 * bigWindow
	case w.Name == "pingpong":
		return 50
	case w.Name == "echo64x64" || im.Key == "framed-request" && !w.LowerIsBetter:
		return echoConns * 8
	case w.Name == "writers8":
		return writerCount * 200
	}
	return 5 * window
}

// TestWorkloads runs every workload over every implementation with a few
// frames, comparing each echoed payload byte for byte and each sink's
// count with the frames sent.
func TestWorkloads(t *testing.T) {
	checkAll = true
	t.Cleanup(func() { checkAll = false })
	for _, w := range workloads() {
		for _, im := range w.Impls {
			t.Run(w.Name+"/"+im.Key, func(t *testing.T) {
				s, err := w.open(w, im, time.Now().Add(10*time.Second))
				require.NoError(t, err)
				n := smokeFrames(w, im)
				// Two batches: frames left in flight by the first must
				// carry over into the second.
				require.NoError(t, s.batch(n/2))
				require.NoError(t, s.batch(n-n/2))
				frames, end, err := s.finish()
				require.NoError(t, err)
				assert.Equal(t, int64(n), frames, "frames received")
				assert.False(t, end.IsZero(), "end time")
				if ls, ok := s.(latencySession); ok && w.LowerIsBetter {
					assert.Len(t, ls.latencies(), n, "round trips timed")
				}
				assert.NoError(t, s.close())
			})
		}
	}
}

// TestWriteSyscalls checks the writers8 count of write system calls: the
// mutex row makes at least one per frame, and framed's Conn, whose
// concurrent writers share writes, at most one per frame.
func TestWriteSyscalls(t *testing.T) {
	if _, _, err := procIO(); err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	w, ok := workloadByName("writers8")
	require.True(t, ok)
	for _, im := range w.Impls {
		t.Run(im.Key, func(t *testing.T) {
			smp, err := measure(w, im, Limits{Dur: time.Millisecond, MaxFrames: 1})
			require.NoError(t, err)
			require.Equal(t, int64(w.Batch), smp.Frames, "frames received")
			switch im.Name {
			case mutexWriterName:
				assert.GreaterOrEqual(t, smp.Writes, smp.Frames, "write system calls of %s", im.Name)
			default:
				assert.Positive(t, smp.Writes, "write system calls of %s", im.Name)
				assert.LessOrEqual(t, smp.Writes, smp.Frames, "write system calls of %s", im.Name)
			}
		})
	}
}

// TestIdleMemory checks the idle measurement on a few connections: a raw
// server with 64 KiB bufio buffers must cost more than those 128 KiB per
// connection, one with 4 KiB buffers less than 64 KiB, and framed with
// every connection stalled in a 4 MiB frame less than 64 KiB.
func TestIdleMemory(t *testing.T) {
	for _, row := range idleRows() {
		t.Run(strings.ReplaceAll(row.Name, " ", "_"), func(t *testing.T) {
			perConn, err := measureIdle(row, 50)
			require.NoError(t, err)
			switch row.Name {
			case "raw, bufio 64 KiB":
				assert.Greater(t, perConn, 128.0*1024, "bytes per connection")
			case "raw, bufio 4 KiB":
				assert.Less(t, perConn, 64.0*1024, "bytes per connection")
			case stalledRow:
				// A header claiming 4 MiB must cost what arrived, not what
				// was claimed.
				assert.Less(t, perConn, 64.0*1024, "bytes per stalled connection")
			}
		})
	}
}

// TestServerAllocs checks the allocation measurement: the naive server
// allocates three slices per echoed frame, the raw one none.
func TestServerAllocs(t *testing.T) {
	tests := []struct {
		give     Impl
		min, max float64
	}{
		{rawImpl(), -0.05, 0.05},
		{naiveImpl(), 2.9, 3.1},
	}
	for _, tt := range tests {
		t.Run(tt.give.Key, func(t *testing.T) {
			perFrame, err := measureAllocs(tt.give, 1<<20, time.Millisecond)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, perFrame, tt.min, "allocations per frame of %s", tt.give.Name)
			assert.LessOrEqual(t, perFrame, tt.max, "allocations per frame of %s", tt.give.Name)
		})
	}
}

// TestProgram runs the whole program briefly and checks that the table
// has a row for every workload and the targets.
func TestProgram(t *testing.T) {
	var out bytes.Buffer
	err := runMain([]string{"-reps", "1", "-dur", "5ms", "-idle-conns", "20",
		"-only", "oneway64,echo64,echo64x64,pingpong,requests64,writers8,idle,allocs"}, &out, io.Discard)
	require.NoError(t, err)
	for _, want := range []string{
		"Machine: go", "one-way 64 B", "ping-pong 64 B", "requests 64 B", "8 goroutines",
		"Memory per idle connection", "allocations per 64 B echo frame", "targets of issue 20",
		"| framed Client.Send |", "| framed Writer/Reader |", "| framed Client.Request |",
		"| one-way 64 B, Conn.WriteFrame loop, frames/s | framed |",
		"| one-way 64 B, Client.Send loop, frames/s | framed Client.Send |",
		"| echo 64 B through Conn, 1 conn, frames/s | framed |",
		"| echo 64 B through Conn, 64 conns, frames/s | framed |",
		"| ping-pong 64 B through Conn, p50 | framed |",
		"| ping-pong 64 B, Client.Request, p50 | framed Client.Request |",
		"| 64 goroutines × Client.Request on one Client, frames/s | framed Client.Request |",
		"| 8 goroutines writing 64 B to one Conn, write calls per frame | framed |",
		"| 8 goroutines writing 64 B to one Conn, frames/s | framed |",
	} {
		assert.Contains(t, out.String(), want)
	}
	assert.NotContains(t, out.String(), "Failed runs")
}

// TestProgramImpls runs one workload with only some rows: those asked for
// and the baseline run, and no other.
func TestProgramImpls(t *testing.T) {
	var out bytes.Buffer
	err := runMain([]string{"-reps", "1", "-dur", "5ms", "-only", "oneway64", "-impls", "framed-send"}, &out, io.Discard)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "| one-way 64 B, pipelined | raw |")
	assert.Contains(t, out.String(), "| one-way 64 B, pipelined | framed Client.Send |")
	assert.NotContains(t, out.String(), "| one-way 64 B, pipelined | framed |")
	assert.NotContains(t, out.String(), "| one-way 64 B, pipelined | naive |")
	assert.NotContains(t, out.String(), "Failed runs")
}

// TestProgramHelp checks that -h documents how to run some workloads and
// rows, and is not an error.
func TestProgramHelp(t *testing.T) {
	var help bytes.Buffer
	require.NoError(t, runMain([]string{"-h"}, io.Discard, &help))
	for _, want := range []string{"-only", "-impls", "-reps", "requests64", "framed-send", "framed-writer"} {
		assert.Contains(t, help.String(), want)
	}
}

func TestProgramFlags(t *testing.T) {
	tests := []struct {
		give []string
		want string
	}{
		{[]string{"-only", "nosuch"}, `unknown workload "nosuch"`},
		{[]string{"-reps", "0"}, "must be positive"},
		{[]string{"-impls", "nosuch"}, `unknown implementation "nosuch"`},
	}
	for _, tt := range tests {
		err := runMain(tt.give, io.Discard, io.Discard)
		require.Error(t, err, "args %q", tt.give)
		assert.Contains(t, err.Error(), tt.want, "args %q", tt.give)
	}
}
