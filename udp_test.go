package framed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listenUDP opens a socket on a free loopback port; it is closed by cleanup.
func listenUDP(t *testing.T, network, addr string) net.PacketConn {
	t.Helper()
	conn, err := net.ListenPacket(network, addr)
	require.NoError(t, err, "listen %s %s", network, addr)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// serveUDP runs srv.Serve(conn) until cleanup closes srv, then checks that
// Serve returned ErrUDPServerClosed. It returns conn's address.
func serveUDP(t *testing.T, srv *framed.UDPServer, conn net.PacketConn) string {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(conn) }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close())
		assert.ErrorIs(t, <-served, framed.ErrUDPServerClosed)
	})
	return conn.LocalAddr().String()
}

// startUDP serves srv on a free IPv4 loopback port and returns its address.
func startUDP(t *testing.T, srv *framed.UDPServer) string {
	t.Helper()
	return serveUDP(t, srv, listenUDP(t, "udp", "127.0.0.1:0"))
}

// exchange sends msg to addr with ExchangeUDP and requires a reply.
func exchange(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	reply, err := framed.ExchangeUDP(ctx, addr, msg)
	require.NoError(t, err, "exchange %d bytes with %s", len(msg), addr)
	return reply
}

// send writes each message to addr from conn, one datagram each.
func send(t *testing.T, conn net.PacketConn, addr string, msgs ...string) {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp", addr)
	require.NoError(t, err)
	for _, m := range msgs {
		_, err := conn.WriteTo([]byte(m), to)
		require.NoError(t, err, "send %q", m)
	}
}

// assertSilent checks that nothing arrives on conn within a short while.
func assertSilent(t *testing.T, conn net.PacketConn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	n, _, err := conn.ReadFrom(make([]byte, 1024))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "got %d bytes, want none", n)
}

// datagram returns n bytes that differ from one index to the next.
func datagram(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return p
}

func TestUDPServerEcho(t *testing.T) {
	tests := []struct {
		name    string
		network string
		addr    string
		give    int
	}{
		{name: "empty", network: "udp4", addr: "127.0.0.1:0", give: 0},
		{name: "one byte", network: "udp4", addr: "127.0.0.1:0", give: 1},
		{name: "one MTU", network: "udp4", addr: "127.0.0.1:0", give: 1400},
		{name: "largest IPv4", network: "udp4", addr: "127.0.0.1:0", give: 65507},
		{name: "largest IPv6", network: "udp6", addr: "[::1]:0", give: 65527},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.ListenPacket(tt.network, tt.addr)
			if err != nil && tt.network == "udp6" {
				t.Skipf("no IPv6 loopback here: %v", err)
			}
			require.NoError(t, err)
			var srv framed.UDPServer
			addr := serveUDP(t, &srv, conn)

			want := datagram(tt.give)
			got := exchange(t, addr, want)
			require.NoError(t, srv.Close()) // Stats are final once Close returns
			assert.True(t, bytes.Equal(want, got), "echo of %d bytes came back as %d different bytes", tt.give, len(got))
			assert.Equal(t, framed.UDPStats{
				DatagramsIn: 1, BytesIn: uint64(tt.give), DatagramsOut: 1, BytesOut: uint64(tt.give),
			}, srv.Stats())
		})
	}
}

func TestUDPServerConcurrentExchanges(t *testing.T) {
	const clients = 100
	var srv framed.UDPServer
	addr := startUDP(t, &srv)

	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			want := fmt.Sprintf("client %03d says hello", i)
			got, err := framed.ExchangeUDP(ctx, addr, []byte(want))
			if assert.NoError(t, err, "client %d", i) {
				assert.Equal(t, want, string(got), "client %d", i)
			}
		})
	}
	wg.Wait()
	require.NoError(t, srv.Close())
	assert.EqualValues(t, clients, srv.Stats().DatagramsOut)
}

// lockedBuffer is a log destination safe for the server and the test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestUDPServerSurvivesBadDatagrams(t *testing.T) {
	var logs lockedBuffer
	srv := &framed.UDPServer{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Handler: framed.UDPHandlerFunc(func(_ context.Context, req []byte, _ net.Addr) ([]byte, error) {
			switch string(req) {
			case "panic":
				panic("handler bug")
			case "error":
				return nil, errors.New("unparsable request")
			case "amplify":
				return bytes.Repeat(req, 3), nil
			case "silence":
				return nil, nil
			}
			return req, nil
		}),
	}
	addr := startUDP(t, srv)
	raw := listenUDP(t, "udp", "127.0.0.1:0")

	// Datagrams are served in arrival order, so the ones sent first have
	// been dealt with once the exchange's reply is back.
	send(t, raw, addr, "panic", "error", "amplify", "silence")
	assert.Equal(t, "ok", string(exchange(t, addr, []byte("ok"))))
	assertSilent(t, raw)

	require.NoError(t, srv.Close()) // Stats are final once Close returns
	assert.Equal(t, framed.UDPStats{
		DatagramsIn: 5, BytesIn: 5 + 5 + 7 + 7 + 2, DatagramsOut: 1, BytesOut: 2,
		Amplification: 1, HandlerErrors: 1, Panics: 1,
	}, srv.Stats())
	for _, want := range []string{"handler bug", "unparsable request", "larger than its request"} {
		assert.Contains(t, logs.String(), want)
	}
}

func TestUDPServerAllowAmplification(t *testing.T) {
	srv := &framed.UDPServer{
		AllowAmplification: true,
		Handler: framed.UDPHandlerFunc(func(_ context.Context, req []byte, _ net.Addr) ([]byte, error) {
			return bytes.Repeat(req, 3), nil
		}),
	}
	addr := startUDP(t, srv)
	assert.Equal(t, "abcabcabc", string(exchange(t, addr, []byte("abc"))))
	assert.Zero(t, srv.Stats().Amplification)
}

func TestUDPServerMaxDatagramSize(t *testing.T) {
	srv := &framed.UDPServer{MaxDatagramSize: 16}
	addr := startUDP(t, srv)
	raw := listenUDP(t, "udp", "127.0.0.1:0")

	send(t, raw, addr, strings.Repeat("x", 17))
	want := strings.Repeat("y", 16)
	assert.Equal(t, want, string(exchange(t, addr, []byte(want))))
	assertSilent(t, raw)
	require.NoError(t, srv.Close())
	assert.Equal(t, framed.UDPStats{
		DatagramsIn: 1, BytesIn: 16, DatagramsOut: 1, BytesOut: 16, Oversize: 1,
	}, srv.Stats())
}

func TestUDPServerRejectsBadMaxDatagramSize(t *testing.T) {
	for _, give := range []int{-1, 65528} {
		t.Run(fmt.Sprint(give), func(t *testing.T) {
			conn := listenUDP(t, "udp", "127.0.0.1:0")
			srv := &framed.UDPServer{MaxDatagramSize: give}
			err := srv.Serve(conn)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "MaxDatagramSize")
			_, _, err = conn.ReadFrom(make([]byte, 1))
			assert.ErrorIs(t, err, net.ErrClosed, "Serve must close the socket it refused")
		})
	}
}

var errInjected = errors.New("injected fault")

// faultyConn fails its first reads and every write of "drop".
type faultyConn struct {
	net.PacketConn
	readFaults atomic.Int32
}

func (c *faultyConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if c.readFaults.Add(-1) >= 0 {
		return 0, nil, errInjected
	}
	return c.PacketConn.ReadFrom(p)
}

func (c *faultyConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if string(p) == "drop" {
		return 0, errInjected
	}
	return c.PacketConn.WriteTo(p, addr)
}

func TestUDPServerSurvivesSocketErrors(t *testing.T) {
	conn := &faultyConn{PacketConn: listenUDP(t, "udp", "127.0.0.1:0")}
	conn.readFaults.Store(2)
	var srv framed.UDPServer
	addr := serveUDP(t, &srv, conn)
	raw := listenUDP(t, "udp", "127.0.0.1:0")

	send(t, raw, addr, "drop")
	assert.Equal(t, "ok", string(exchange(t, addr, []byte("ok"))))
	require.NoError(t, srv.Close())
	st := srv.Stats()
	assert.EqualValues(t, 2, st.ReadErrors)
	assert.EqualValues(t, 1, st.WriteErrors)
	assert.EqualValues(t, 1, st.DatagramsOut)
}

func TestUDPServerSocketClosedUnderIt(t *testing.T) {
	conn := listenUDP(t, "udp", "127.0.0.1:0")
	var srv framed.UDPServer
	served := make(chan error, 1)
	go func() { served <- srv.Serve(conn) }()
	exchange(t, conn.LocalAddr().String(), []byte("up?"))

	require.NoError(t, conn.Close())
	err := <-served
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.NotErrorIs(t, err, framed.ErrUDPServerClosed)
	assert.NoError(t, srv.Close())
}

// interop runs a command with a bounded time and returns its output.
func interop(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed; install it to check interoperability with a real client", name)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s: %s", name, stderr.String())
	return string(out)
}

func TestUDPServerAnswersSocat(t *testing.T) {
	t.Parallel() // socat lingers a second after its reply
	var srv framed.UDPServer
	addr := startUDP(t, &srv)
	const msg = "hello from socat\n"
	got := interop(t, msg, "socat", "-t", "1", "-", "UDP4:"+addr)
	assert.Equal(t, msg, got)
}
