package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// Peers from other frameworks run in a process of their own (this test
// binary, started again): they keep goroutines, global configuration and
// logs that must not leak into the tests.
const (
	peerEnv     = "FRAMED_INTEROP_PEER"
	peerArgsEnv = "FRAMED_INTEROP_ARGS"
	peerTimeout = 20 * time.Second
)

// peer is a running peer process.
type peer struct {
	lines  chan string // its output, line by line, closed at its end
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

// startPeer starts cmd, whose output is read line by line; cleanup kills
// it and waits for it.
func startPeer(t *testing.T, cmd *exec.Cmd) *peer {
	t.Helper()
	p := &peer{lines: make(chan string, 64), cmd: cmd, stderr: new(bytes.Buffer)}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start(), "start %s", cmd.Path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", cmd.Path, p.stderr)
		}
	})
	return p
}

// startGoPeer runs this test binary as the named peer with args.
func startGoPeer(t *testing.T, name string, args ...string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	// Races inside other frameworks are not ours to report.
	cmd.Env = append(os.Environ(), peerEnv+"="+name, peerArgsEnv+"="+strings.Join(args, " "), "GORACE=exitcode=0")
	return startPeer(t, cmd)
}

// dialGoPeer starts the Go peer name, waits until it listens, and dials
// it with d. The ctx it returns bounds the test's exchanges; t's cleanup
// closes the Client before the peer is stopped.
func dialGoPeer(t *testing.T, name string, d *framed.Dialer) (*peer, *framed.Client, context.Context) {
	t.Helper()
	p := startGoPeer(t, name)
	addr := p.waitLine(t, "LISTEN ")
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	t.Cleanup(cancel)
	c, err := d.Dial(ctx, addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return p, c, ctx
}

// waitLine returns the first line of p's output that starts with prefix,
// without the prefix.
func (p *peer) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	timer := time.NewTimer(peerTimeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				require.Failf(t, "peer ended", "%s ended before printing %q; it printed:\n%s",
					p.cmd.Path, prefix, strings.Join(seen, "\n"))
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest
			}
			seen = append(seen, line)
		case <-timer.C:
			require.Failf(t, "peer timed out", "no %q from %s in %v; it printed:\n%s",
				prefix, p.cmd.Path, peerTimeout, strings.Join(seen, "\n"))
		}
	}
}

// runPeer runs the named peer in this process and returns its exit code.
func runPeer(name, args string) int {
	var err error
	switch name {
	case "zinx-server":
		err = zinxServer()
	case "zinx-client":
		err = zinxClient(args)
	case "zinx-mux-client":
		err = zinxMuxClient(args)
	case "zinx-heartbeat-client":
		err = zinxHeartbeatClient(args)
	case "zinx-heartbeat-server":
		err = zinxHeartbeatServer()
	case "easytcp-server":
		err = easytcpServer()
	default:
		err = fmt.Errorf("unknown peer %q", name)
	}
	if err != nil {
		fmt.Println("FAIL", err)
		return 1
	}
	return 0
}

// freePort returns a loopback port that was free a moment ago, for peers
// that take a port number and cannot report the one port 0 chose.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// announce waits until addr accepts connections and prints "LISTEN addr".
func announce(addr string) error {
	deadline := time.Now().Add(peerTimeout / 2)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			fmt.Println("LISTEN " + addr)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never accepted: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a port another framework opens; no signal exists
	}
}

// messages are the payloads every exchange with a peer carries: empty,
// small, and larger than one read.
func messages() [][]byte {
	msgs := [][]byte{{}, []byte("hello"), []byte("a slightly longer message")}
	big := make([]byte, 60000)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	return append(msgs, big)
}

// reversed returns p reversed, the transformation every peer applies, so
// that an echo of the request does not pass for a reply.
func reversed(p []byte) []byte {
	out := bytes.Clone(p)
	slices.Reverse(out)
	return out
}
