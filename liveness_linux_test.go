package framed_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// TestClientProbesEndStoppedServer: a Client with probes on whose server
// process is stopped (SIGSTOP: its kernel still takes the bytes, nothing
// answers) fails its pending Request with ErrPeerSilent within
// Idle+Timeout (±20%) of the last byte it received. The server runs in a child
// process, this test binary running TestStoppedServerProcess.
func TestClientProbesEndStoppedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoppedServerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FRAMED_STOPPED_SERVER=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe() // closing it stops the child
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "the child's address")
	addr, ok := strings.CutPrefix(lines.Text(), "listening ")
	require.True(t, ok, "the child printed %q", lines.Text())

	d := framed.Dialer{Probes: framed.Probes{Idle: probeIdle, Timeout: probeTimeout}}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cl, err := d.Dial(ctx, addr)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	got, err := cl.Request(ctx, []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
	lastByte := time.Now() // the last byte from the server came just before

	require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP))
	// The signal is delivered when the child is next scheduled: wait until
	// the kernel says it is stopped, before it can answer anything.
	waitFor(t, testTimeout, "the child to stop", func() bool { return processState(t, cmd.Process.Pid) == 'T' })
	_, err = cl.Request(ctx, []byte("are you there?"))
	assertWithin(t, probeIdle+probeTimeout, time.Since(lastByte), "failing a Request to a stopped server")
	require.ErrorIs(t, err, framed.ErrPeerSilent)
	assert.ErrorIs(t, err, framed.ErrOutcomeUnknown, "the request went out before the server was found silent")
}

// processState returns the state letter of process pid in /proc (R, S,
// T for stopped, ...).
func processState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err)
	// pid (comm) state ...: comm may hold spaces, so look after its ')'.
	i := bytes.LastIndexByte(b, ')')
	require.True(t, i >= 0 && i+2 < len(b), "stat: %q", b)
	return b[i+2]
}

// TestStoppedServerProcess is the child of TestClientProbesEndStoppedServer:
// with FRAMED_STOPPED_SERVER set, it serves echo on a loopback port, prints
// "listening ADDR", and stops when its standard input closes.
func TestStoppedServerProcess(t *testing.T) {
	if os.Getenv("FRAMED_STOPPED_SERVER") == "" {
		t.Skip("runs as a child of TestClientProbesEndStoppedServer")
	}
	s := &framed.Server{}
	r := serve(t, s)
	os.Stdout.WriteString("listening " + r.addr + "\n")
	buf := make([]byte, 1)
	os.Stdin.Read(buf) // until the parent closes it
}
