package framed_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// streamFrames is how many 64-byte frames the stream tests write: 6.8 MB,
// about 100 writes of a 64 KiB bufio.Writer.
const streamFrames = 100_000

// TestConnStreamBatchesOverTCP: one goroutine writing 64-byte frames back
// to back over TCP, with no Flush, makes at most twice the write system
// calls of a bufio loop with a 64 KiB buffer. Each writer runs in a child
// process of its own (this test binary, running
// TestStreamWriterProcess), which counts its write system calls in
// /proc/self/io: so only that connection's writes are counted, whatever
// else this process or the machine is doing.
func TestConnStreamBatchesOverTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	bufioWrites := streamWriterSyscalls(t, "bufio")
	framedWrites := streamWriterSyscalls(t, "framed")
	t.Logf("%d frames of 64 bytes: bufio loop %d write system calls, Conn.WriteFrame loop %d (%.2fx)",
		streamFrames, bufioWrites, framedWrites, float64(framedWrites)/float64(bufioWrites))
	assert.LessOrEqual(t, framedWrites, 2*bufioWrites, "write system calls of a WriteFrame loop, against a bufio loop's")
}

// streamWriterSyscalls runs a child process that writes streamFrames
// frames to a listener here, as mode says, and returns the write system
// calls it made, once this side has read every byte.
func streamWriterSyscalls(t *testing.T, mode string) int64 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	read := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			read <- -1
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(testTimeout))
		n, _ := io.Copy(io.Discard, c)
		read <- n
	}()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStreamWriterProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FRAMED_STREAM_WRITER="+mode+","+ln.Addr().String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "writer process: %s%s", out, stderr.Bytes())
	assert.EqualValues(t, streamFrames*68, wait(t, read, "the peer to read everything"), "bytes read")
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(line, "syscw "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("writer process printed no count: %s", out)
	return 0
}

// TestStreamWriterProcess is the child of TestConnStreamBatchesOverTCP:
// with FRAMED_STREAM_WRITER set to "mode,addr", it dials addr, writes the
// stream as mode says (a bufio loop, or a Conn.WriteFrame loop), and
// prints the write system calls that took.
func TestStreamWriterProcess(t *testing.T) {
	mode, addr, ok := strings.Cut(os.Getenv("FRAMED_STREAM_WRITER"), ",")
	if !ok {
		t.Skip("runs as a child of TestConnStreamBatchesOverTCP")
	}
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	msg := make([]byte, 64)
	before := writeSyscalls(t)
	switch mode {
	case "bufio":
		w := bufio.NewWriterSize(nc, 64<<10)
		var hdr [4]byte
		binary.LittleEndian.PutUint32(hdr[:], uint32(len(msg)))
		for range streamFrames {
			w.Write(hdr[:])
			w.Write(msg)
		}
		require.NoError(t, w.Flush())
		require.NoError(t, nc.(*net.TCPConn).CloseWrite())
	case "framed":
		c := framed.NewConn(nc, framed.ConnConfig{})
		for range streamFrames {
			require.NoError(t, c.WriteFrame(msg))
		}
		require.NoError(t, c.CloseWrite())
	}
	writes := writeSyscalls(t) - before
	nc.Close()
	os.Stdout.WriteString("syscw " + strconv.FormatInt(writes, 10) + "\n")
}

// writeSyscalls returns the write system calls this process has made
// (syscw in /proc/self/io).
func writeSyscalls(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "syscw: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}
