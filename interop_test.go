package framed_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// TestInteropPython exchanges frames with testdata/peer.py, a peer written
// with nothing but Python's socket and struct.pack("<i", n): it sends a
// frame of its own, then echoes every frame back with the length packed on
// its side. The default Format must be what such a peer speaks.
func TestInteropPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: skipping the test against a Python peer")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listen")
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "testdata/peer.py", port)
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start(), "start %s testdata/peer.py", python)
	waited := false
	defer func() {
		if !waited {
			cancel()
			_ = cmd.Wait()
		}
	}()

	deadline, _ := ctx.Deadline()
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(deadline), "listener deadline")
	nc, err := ln.Accept()
	require.NoError(t, err, "accept the Python peer (stderr: %s)", &stderr)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(deadline), "connection deadline")

	var frames [][]byte
	for i, n := range []int{0, 1, 5, 300, 100 << 10, 0, framed.DefaultReadBufferSize, 70000} {
		frames = append(frames, payload(i, n))
	}
	for i := range 200 {
		frames = append(frames, payload(i, i%50))
	}

	// Write while reading: the peer echoes as it reads, so neither side may
	// wait for the other to finish.
	written := make(chan error, 1)
	go func() {
		written <- writeInterop(nc.(*net.TCPConn), frames)
	}()
	writerDone := false
	defer func() {
		if !writerDone {
			nc.Close() // reading failed: unblock the writer
			<-written
		}
	}()

	r := framed.NewReader(nc, framed.Format{})
	greeting, err := r.ReadFrame()
	require.NoError(t, err, "ReadFrame of the Python peer's own frame (stderr: %s)", &stderr)
	assert.Equal(t, "hello from python", string(greeting), "the Python peer's own frame")
	for i, want := range frames {
		got, err := r.ReadFrame()
		require.NoError(t, err, "ReadFrame of echo %d (%d bytes; stderr: %s)", i, len(want), &stderr)
		require.True(t, bytes.Equal(want, got), "echo %d: %d bytes back for %d", i, len(got), len(want))
	}
	_, err = r.ReadFrame()
	assert.Equal(t, io.EOF, err, "the Python peer ends the stream between frames")

	writerDone = true
	require.NoError(t, <-written, "write frames to the Python peer")
	waited = true
	require.NoError(t, cmd.Wait(), "the Python peer exits cleanly (stderr: %s)", &stderr)
}

// writeInterop sends frames two ways (a Writer, and AppendFrame with plain
// writes), then closes its side so the peer sees the end of the stream.
func writeInterop(nc *net.TCPConn, frames [][]byte) error {
	half := len(frames) / 2
	w := framed.NewWriter(nc, framed.Format{})
	for _, p := range frames[:half] {
		if err := w.WriteFrame(p); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var buf []byte
	for _, p := range frames[half:] {
		var err error
		if buf, err = framed.AppendFrame(buf[:0], p); err != nil {
			return err
		}
		if _, err := nc.Write(buf); err != nil {
			return err
		}
	}
	return nc.CloseWrite()
}
