package framed_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"math/big"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// testTimeout bounds every wait and every blocking read or write in these
// tests, so a lost frame, a missed wake-up or a bug fails the test instead
// of hanging it. It is never the time a test expects something to take.
const testTimeout = 20 * time.Second

// transport makes a connected pair of net.Conns that t's cleanup closes.
type transport struct {
	name string
	pair func(tb testing.TB) (a, b net.Conn)
}

// transports are the two every connection test runs over: net.Pipe has no
// buffering at all and reports io.ErrClosedPipe; TCP buffers megabytes in
// the kernel, has CloseWrite, and reports net.ErrClosed.
var transports = []transport{
	{"pipe", pipePair},
	{"tcp", tcpPair},
}

// forEachTransport runs f as a subtest once per transport.
func forEachTransport(t *testing.T, f func(t *testing.T, tr transport)) {
	t.Helper()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { f(t, tr) })
	}
}

// pipePair returns both ends of a net.Pipe.
func pipePair(tb testing.TB) (a, b net.Conn) {
	tb.Helper()
	a, b = net.Pipe()
	tb.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (a, b net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		accepted <- result{c, err}
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close() // ends the Accept above
		<-accepted
		require.NoError(tb, err)
	}
	r := <-accepted
	if r.err != nil {
		a.Close()
		require.NoError(tb, r.err)
	}
	b = r.c
	tb.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// connPair wraps both ends of tr's pair in Conns with the same config, and
// closes them at cleanup.
func connPair(tb testing.TB, tr transport, cfg framed.ConnConfig) (a, b *framed.Conn) {
	tb.Helper()
	na, nb := tr.pair(tb)
	a, b = framed.NewConn(na, cfg), framed.NewConn(nb, cfg)
	tb.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// countingConn counts the Write calls that reach a net.Conn.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// gatedConn holds the first Write in until release is called, so that
// frames written meanwhile must queue behind it. Later Writes pass straight
// through. It counts the Writes and bytes that reach the underlying conn.
type gatedConn struct {
	net.Conn
	entered     chan struct{} // closed when the first Write has begun
	gate        chan struct{}
	enterOnce   sync.Once
	releaseOnce sync.Once
	writes      atomic.Int64
	bytes       atomic.Int64
}

// newGatedConn wraps c in a gatedConn that tb's cleanup releases.
func newGatedConn(tb testing.TB, c net.Conn) *gatedConn {
	tb.Helper()
	g := &gatedConn{Conn: c, entered: make(chan struct{}), gate: make(chan struct{})}
	tb.Cleanup(g.release) // never leave a writer stuck in the gate
	return g
}

func (g *gatedConn) release() { g.releaseOnce.Do(func() { close(g.gate) }) }

// Close releases a held Write, as closing a net.Conn unblocks its Writes.
func (g *gatedConn) Close() error {
	err := g.Conn.Close() // first, so the held Write then fails
	g.release()
	return err
}

func (g *gatedConn) Write(p []byte) (int, error) {
	first := false
	g.enterOnce.Do(func() {
		first = true
		close(g.entered)
	})
	if first {
		<-g.gate
	}
	g.writes.Add(1)
	n, err := g.Conn.Write(p)
	g.bytes.Add(int64(n))
	return n, err
}

// wait receives from ch, failing the test if nothing arrives within
// testTimeout; what names the awaited event in the failure.
func wait[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// gatedPair returns a Conn over tr whose first Write g holds, and the
// frames its peer reads, as readConnFrames gives them. Cleanup closes
// both ends.
func gatedPair(t *testing.T, tr transport, cfg framed.ConnConfig) (g *gatedConn, a *framed.Conn, frames <-chan []byte, errc <-chan error) {
	t.Helper()
	na, nb := tr.pair(t)
	g = newGatedConn(t, na)
	a = framed.NewConn(g, cfg)
	b := framed.NewConn(nb, framed.ConnConfig{})
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	frames, errc = readConnFrames(t, b)
	return g, a, frames, errc
}

// readConnFrames reads frames on c in a goroutine until it fails, sending a
// copy of each on the returned channel, and its final error on errc. The
// test's cleanup closes c, stops the goroutine and waits for it.
func readConnFrames(t *testing.T, c *framed.Conn) (frames <-chan []byte, errc <-chan error) {
	t.Helper()
	fc := make(chan []byte, 1024)
	ec := make(chan error, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := c.ReadFrame()
			if err != nil {
				ec <- err
				return
			}
			select {
			case fc <- bytes.Clone(p):
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		c.Close()
		<-done
	})
	return fc, ec
}

// encoded returns p as a frame of the default format.
func encoded(tb testing.TB, p []byte) []byte {
	tb.Helper()
	b, err := framed.Encode(p)
	require.NoError(tb, err)
	return b
}

// frameOf returns n bytes that say which frame they are: seq, then a
// pattern that depends on seq.
func frameOf(seq, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(seq*7 + i)
	}
	if n >= 4 {
		binary.LittleEndian.PutUint32(p, uint32(seq))
	}
	return p
}

// running is a Server serving a loopback listener.
type running struct {
	s    *framed.Server
	addr string

	errc chan error
	once sync.Once
	err  error
}

// serve starts s on 127.0.0.1:0. Cleanup closes s and checks that Serve
// returned ErrServerClosed.
func serve(t testing.TB, s *framed.Server) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveOn(t, s, ln)
}

func serveOn(t testing.TB, s *framed.Server, ln net.Listener) *running {
	t.Helper()
	r := &running{s: s, addr: ln.Addr().String(), errc: make(chan error, 1)}
	go func() { r.errc <- s.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, s.Close(), "Close")
		assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed, "Serve's error")
	})
	return r
}

// serveErr waits for Serve to return and returns its error.
func (r *running) serveErr() error {
	r.once.Do(func() {
		t := time.NewTimer(testTimeout)
		defer t.Stop()
		select {
		case r.err = <-r.errc:
		case <-t.C:
			r.err = errors.New("Serve did not return")
		}
	})
	return r.err
}

// dialRaw connects to addr; cleanup closes the connection.
func dialRaw(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
	return nc.(*net.TCPConn)
}

// dial connects to addr with a framed Conn; cleanup closes it.
func dial(t testing.TB, addr string) *framed.Conn {
	t.Helper()
	return framed.NewConn(dialRaw(t, addr), framed.ConnConfig{})
}

// roundTrip sends msg on c and checks that the reply equals it.
func roundTrip(t testing.TB, c *framed.Conn, msg []byte) {
	t.Helper()
	require.NoError(t, c.WriteFrame(msg), "write %d bytes", len(msg))
	got, err := c.ReadFrame()
	require.NoError(t, err, "read reply to %d bytes", len(msg))
	require.True(t, bytes.Equal(msg, got), "reply to %d bytes differs (got %d bytes)", len(msg), len(got))
}

// rawHeader returns a default-format header claiming n bytes.
func rawHeader(n int32) []byte {
	return binary.LittleEndian.AppendUint32(nil, uint32(n))
}

// waitFor polls cond until it holds or d passes, for states that send no
// signal, such as counters.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "timed out waiting for "+what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// isTimeout reports whether err is a net.Error whose Timeout() is true, as
// the error of a read or write whose deadline passed is.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// requireTimeout fails the test unless err is a timeout both ways a caller
// may check one: isTimeout, and errors.Is(err, os.ErrDeadlineExceeded).
func requireTimeout(tb testing.TB, err error, what string) {
	tb.Helper()
	require.True(tb, isTimeout(err), "%s: %v is not a net.Error with Timeout()", what, err)
	require.ErrorIs(tb, err, os.ErrDeadlineExceeded, what)
}

// testTLSConfigs returns a server configuration with a self-signed ECDSA
// certificate for 127.0.0.1, and a client configuration that trusts it.
func testTLSConfigs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "framed test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	return server, &tls.Config{RootCAs: roots}
}
