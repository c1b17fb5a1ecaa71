package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests here run the framecat binary that TestMain built, as a shell
// would: exit status, stdout and stderr.

// command returns the binary with args, killed if still running after 15 s.
func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return exec.CommandContext(ctx, binary, args...)
}

// execBinary runs the binary with stdin and args to the end.
func execBinary(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := command(t, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	require.NoError(t, err, "run framecat %q", args)
	return out.String(), errb.String(), 0
}

func TestBinaryPipeOf10000Lines(t *testing.T) {
	addr := serve(t, &framed.Server{})
	var in strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&in, "line %05d\n", i)
	}
	stdout, stderr, code := execBinary(t, in.String(), addr)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	assert.Empty(t, stderr)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, 10000, "one reply per line")
	assert.True(t, stdout == in.String(), "10,000 replies in order")
}

func TestBinaryExitStatus(t *testing.T) {
	big := framed.HandlerFunc(func(_ context.Context, c *framed.Conn, _ []byte) error {
		return c.WriteFrame(make([]byte, 17))
	})
	bigAddr := serve(t, &framed.Server{Handler: big})
	silent := silentServer(t)
	echo := serve(t, &framed.Server{})
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string // the one line framecat prints
		wantStdout string
	}{
		{name: "success", args: []string{"-req", echo}, wantCode: 0, wantStdout: "x\n"},
		{name: "no mode", args: nil, wantCode: 2,
			wantStderr: "framecat: need HOST:PORT, -req HOST:PORT or -l ADDR (framecat -h for help)\n"},
		{name: "stray argument", args: []string{echo, "extra"}, wantCode: 2,
			wantStderr: `framecat: unexpected argument "extra" (framecat -h for help)` + "\n"},
		{name: "unknown flag", args: []string{"-z", echo}, wantCode: 2,
			wantStderr: "framecat: flag provided but not defined: -z (framecat -h for help)\n"},
		{name: "invalid format", args: []string{"-varint", "-size", "2", echo}, wantCode: 2,
			wantStderr: "framecat: framed: invalid Format: Varint with HeaderSize 2 (framecat -h for help)\n"},
		{name: "frame over -max", args: []string{"-max", "16", bigAddr}, wantCode: 1,
			wantStderr: "framecat: read from " + bigAddr + ": frame too large: 17 > 16 (-max)\n"},
		{name: "silent server", args: []string{"-timeout", "200ms", "-req", silent}, wantCode: 1,
			wantStderr: "framecat: no reply from " + silent + " within 200ms (-timeout)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := execBinary(t, "x\n", tt.args...)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", stderr)
			assert.Equal(t, tt.wantStderr, stderr)
			assert.Equal(t, tt.wantStdout, stdout)
		})
	}
}

func TestBinaryHelp(t *testing.T) {
	stdout, stderr, code := execBinary(t, "", "-h")
	assert.Equal(t, 0, code)
	assert.Empty(t, stdout, "help is a diagnostic: stdout carries only data")
	assert.Contains(t, stderr, "Usage:")
	assert.Contains(t, stderr, "-timeout")
}

func TestBinaryConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	stdout, stderr, code := execBinary(t, "x\n", "-req", addr)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.True(t, strings.HasPrefix(stderr, "framecat: connect to "+addr+": "), "stderr: %s", stderr)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %s", stderr)
}

// closedPort returns a loopback address that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestBinaryRawPipe chains two framecats: raw frames out of one are the
// input of the other, as in a shell pipe.
func TestBinaryRawPipe(t *testing.T) {
	addr := serve(t, &framed.Server{})
	first := command(t, "-out", "raw", addr)
	second := command(t, "-in", "raw", "-out", "hex", addr)
	first.Stdin = strings.NewReader("hello\n\nworld\n")
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	first.Stdout, second.Stdin = pw, pr
	var out, errs1, errs2 bytes.Buffer
	second.Stdout, second.Stderr, first.Stderr = &out, &errs2, &errs1
	require.NoError(t, first.Start())
	require.NoError(t, second.Start())
	pw.Close()
	pr.Close()
	require.NoError(t, first.Wait(), "stderr: %s", &errs1)
	require.NoError(t, second.Wait(), "stderr: %s", &errs2)
	assert.Equal(t, "68656c6c6f\n\n776f726c64\n", out.String())
}

// TestBinaryInterrupt: Ctrl-C ends listen and connect modes with status 0.
func TestBinaryInterrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to send on Windows")
	}
	t.Run("listen", func(t *testing.T) {
		cmd := command(t, "-l", "127.0.0.1:0", "-echo")
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(stderr)
		require.True(t, lines.Scan(), "a line on stderr")
		addr, ok := strings.CutPrefix(lines.Text(), "framecat: listening on ")
		require.True(t, ok, "stderr: %s", lines.Text())

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		client, err := framed.Dial(ctx, addr)
		require.NoError(t, err)
		defer client.Close()
		reply, err := client.Request(ctx, []byte("ping"))
		require.NoError(t, err)
		assert.Equal(t, "ping", string(reply))

		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		rest, _ := io.ReadAll(stderr)
		assert.NoError(t, cmd.Wait(), "Ctrl-C ends listen mode with status 0 (stderr: %s)", rest)
	})
	t.Run("connect", func(t *testing.T) {
		addr := serve(t, &framed.Server{})
		cmd := command(t, addr)
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		defer stdin.Close()
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		_, err = io.WriteString(stdin, "hi\n")
		require.NoError(t, err)
		lines := bufio.NewScanner(stdout)
		require.True(t, lines.Scan(), "the echo")
		assert.Equal(t, "hi", lines.Text())

		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		_, _ = io.ReadAll(stdout)
		assert.NoError(t, cmd.Wait(), "Ctrl-C ends connect mode with status 0 (stderr: %s)", &stderr)
		assert.Empty(t, stderr.String())
	})
}
