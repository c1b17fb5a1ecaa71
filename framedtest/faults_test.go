package framedtest_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultLink is one direction through a fault: bytes written to send arrive
// at recv after going through faults.
type faultLink struct {
	send, recv net.Conn
	faults     *framedtest.Faults
	reset      func()
	// exact is true when each Read at recv returns what one write of the
	// fault passed on (a FaultConn's incoming side); over TCP the kernel
	// may merge pieces.
	exact bool
}

// tcpPair returns both ends of a loopback TCP connection, closed at cleanup.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// links returns each way a fault can sit between two peers: on a
// FaultConn's outgoing and incoming sides, and on a Proxy's way up and
// down.
func links(t *testing.T) map[string]func(t *testing.T) faultLink {
	return map[string]func(t *testing.T) faultLink{
		"FaultConn.Out": func(t *testing.T) faultLink {
			a, b := tcpPair(t)
			fc := framedtest.WrapConn(a)
			t.Cleanup(func() { fc.Close() })
			return faultLink{send: fc, recv: b, faults: fc.Out, reset: fc.Reset}
		},
		"FaultConn.In": func(t *testing.T) faultLink {
			a, b := tcpPair(t)
			fc := framedtest.WrapConn(a)
			t.Cleanup(func() { fc.Close() })
			return faultLink{send: b, recv: fc, faults: fc.In, reset: fc.Reset, exact: true}
		},
		"Proxy.Up": func(t *testing.T) faultLink {
			client, server, p := proxied(t)
			return faultLink{send: client, recv: server, faults: p.Up, reset: p.Reset}
		},
		"Proxy.Down": func(t *testing.T) faultLink {
			client, server, p := proxied(t)
			return faultLink{send: server, recv: client, faults: p.Down, reset: p.Reset}
		},
	}
}

// proxied returns a client connected through a new Proxy and the target's
// end of that connection.
func proxied(t *testing.T) (client, server net.Conn, p *framedtest.Proxy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	p = framedtest.NewProxy(ln.Addr().String())
	t.Cleanup(p.Close)
	client, err = net.Dial("tcp", p.Addr)
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server, p
}

// eachLink runs f for every kind of link.
func eachLink(t *testing.T, f func(t *testing.T, l faultLink)) {
	for name, mk := range links(t) {
		t.Run(name, func(t *testing.T) { f(t, mk(t)) })
	}
}

// readSizes reads n bytes from c and returns them and the size of each read.
func readSizes(t *testing.T, c net.Conn, n int) ([]byte, []int) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	defer c.SetReadDeadline(time.Time{})
	var got []byte
	var sizes []int
	buf := make([]byte, 64<<10)
	for len(got) < n {
		k, err := c.Read(buf)
		got = append(got, buf[:k]...)
		if k > 0 {
			sizes = append(sizes, k)
		}
		require.NoError(t, err, "after %d of %d bytes", len(got), n)
	}
	return got, sizes
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/256)
	}
	return b
}

func TestFaultsPassThroughUnchanged(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		msg := pattern(100 << 10)
		go l.send.Write(msg)
		got, _ := readSizes(t, l.recv, len(msg))
		assert.True(t, bytes.Equal(msg, got))
	})
}

func TestFaultSlice(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.Slice(1)
		// Over TCP the kernel merges pieces that the reader has not taken
		// yet; 8 KiB in one-byte writes take long enough for the reader
		// to see several.
		msg := pattern(8 << 10)
		_, err := l.send.Write(msg)
		require.NoError(t, err)
		got, sizes := readSizes(t, l.recv, len(msg))
		assert.Equal(t, msg, got)
		if l.exact {
			assert.Len(t, sizes, len(msg), "one byte per read")
		} else {
			assert.Greater(t, len(sizes), 1, "one write of %d bytes arrived in pieces", len(msg))
		}
	})
}

func TestFaultSliceRandom(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.SliceRandom(7)
		msg := pattern(20000)
		_, err := l.send.Write(msg)
		require.NoError(t, err)
		got, sizes := readSizes(t, l.recv, len(msg))
		assert.Equal(t, msg, got)
		if !l.exact {
			assert.Greater(t, len(sizes), 1)
			return
		}
		seen := map[int]bool{}
		for _, s := range sizes {
			assert.LessOrEqual(t, s, 7)
			seen[s] = true
		}
		assert.Greater(t, len(seen), 3, "sizes vary: %v", seen)
	})
}

// TestFaultSliceOnTheWire counts the writes a FaultConn makes on the
// connection it wraps: each piece is a write of its own.
func TestFaultSliceOnTheWire(t *testing.T) {
	a, b := tcpPair(t)
	rec := &writeRecorder{Conn: a}
	fc := framedtest.WrapConn(rec)
	defer fc.Close()
	fc.Out.Slice(3)
	msg := pattern(100)
	_, err := fc.Write(msg)
	require.NoError(t, err)
	got, _ := readSizes(t, b, len(msg))
	assert.Equal(t, msg, got)
	sizes := rec.sizes()
	require.Len(t, sizes, 34, "100 bytes in pieces of 3: %v", sizes)
	for _, s := range sizes[:33] {
		assert.Equal(t, 3, s)
	}
	assert.Equal(t, 1, sizes[33])
}

// writeRecorder records the size of every Write.
type writeRecorder struct {
	net.Conn
	mu sync.Mutex
	n  []int
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.n = append(w.n, len(p))
	w.mu.Unlock()
	return w.Conn.Write(p)
}

func (w *writeRecorder) sizes() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.n...)
}

func TestFaultCoalesce(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.Coalesce(100, 10*time.Second)
		msg := pattern(100)
		for i := 0; i < 50; i += 10 {
			_, err := l.send.Write(msg[i : i+10])
			require.NoError(t, err)
		}
		// Half the bytes are held back until the rest come.
		require.NoError(t, l.recv.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
		n, err := l.recv.Read(make([]byte, 100))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "got %d bytes before the hundredth", n)
		for i := 50; i < 100; i += 10 {
			_, err := l.send.Write(msg[i : i+10])
			require.NoError(t, err)
		}
		got, sizes := readSizes(t, l.recv, len(msg))
		assert.Equal(t, msg, got)
		assert.Equal(t, []int{100}, sizes, "ten writes arrive as one")
	})
}

func TestFaultLatency(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.Latency(100*time.Millisecond, 20*time.Millisecond)
		start := time.Now()
		_, err := l.send.Write([]byte("late"))
		require.NoError(t, err)
		got, _ := readSizes(t, l.recv, 4)
		assert.Equal(t, "late", string(got))
		assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	})
}

func TestFaultBandwidth(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.Bandwidth(20000) // 2,000 bytes take 100 ms
		msg := pattern(2000)
		start := time.Now()
		go l.send.Write(msg)
		got, _ := readSizes(t, l.recv, len(msg))
		assert.Equal(t, msg, got)
		// The pause after the last piece does not delay it: 80 ms.
		assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
	})
}

func TestFaultStall(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.Stall()
		_, err := l.send.Write([]byte("held"))
		require.NoError(t, err)
		require.NoError(t, l.recv.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
		n, err := l.recv.Read(make([]byte, 10))
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "%d bytes passed a stall", n)
		l.faults.Release()
		got, _ := readSizes(t, l.recv, 4)
		assert.Equal(t, "held", string(got))
	})
}

// TestFaultLimit checks exactly n bytes pass, then both ends see the
// connection end.
func TestFaultLimit(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		_, err := l.send.Write([]byte("before"))
		require.NoError(t, err)
		got, _ := readSizes(t, l.recv, 6)
		require.Equal(t, "before", string(got))

		l.faults.Limit(10) // counted from now
		_, err = l.send.Write(pattern(100))
		require.NoError(t, err)
		require.NoError(t, l.recv.SetReadDeadline(time.Now().Add(10*time.Second)))
		got, err = io.ReadAll(l.recv)
		require.NoError(t, err, "the receiver reads EOF")
		assert.Equal(t, pattern(10), got)

		require.NoError(t, l.send.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = l.send.Read(make([]byte, 1))
		assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "the sender sees the end: %v", err)
	})
}

func TestFaultResetAfter(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.ResetAfter(10)
		_, err := l.send.Write(pattern(100))
		require.NoError(t, err)
		require.NoError(t, l.recv.SetReadDeadline(time.Now().Add(10*time.Second)))
		got, err := io.ReadAll(l.recv)
		assert.ErrorIs(t, err, syscall.ECONNRESET, "the receiver")
		assert.LessOrEqual(t, len(got), 10)
		require.NoError(t, l.send.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err = l.send.Read(make([]byte, 1))
		assert.ErrorIs(t, err, syscall.ECONNRESET, "the sender")
	})
}

func TestReset(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		_, err := l.send.Write([]byte("x"))
		require.NoError(t, err)
		readSizes(t, l.recv, 1)
		l.reset()
		for name, c := range map[string]net.Conn{"sender": l.send, "receiver": l.recv} {
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, err := c.Read(make([]byte, 1))
			assert.ErrorIs(t, err, syscall.ECONNRESET, name)
		}
	})
}

func TestFaultSlowClose(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.SlowClose(150 * time.Millisecond)
		_, err := l.send.Write([]byte("bye"))
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, l.send.(interface{ CloseWrite() error }).CloseWrite())
		require.NoError(t, l.recv.SetReadDeadline(time.Now().Add(10*time.Second)))
		got, err := io.ReadAll(l.recv)
		require.NoError(t, err)
		assert.Equal(t, "bye", string(got))
		assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "EOF came late")
	})
}

// TestFaultsChangeWhileFlowing slices, then clears, on one connection.
func TestFaultsChangeWhileFlowing(t *testing.T) {
	a, b := tcpPair(t)
	fc := framedtest.WrapConn(a)
	defer fc.Close()
	fc.In.Slice(2)
	_, err := b.Write(pattern(10))
	require.NoError(t, err)
	_, sizes := readSizes(t, fc, 10)
	assert.Equal(t, []int{2, 2, 2, 2, 2}, sizes)
	fc.In.Clear()
	_, err = b.Write(pattern(10))
	require.NoError(t, err)
	_, sizes = readSizes(t, fc, 10)
	assert.Equal(t, []int{10}, sizes)
}

// TestFaultConnCloseDelivers checks Close sends what was written, through
// the faults, before it closes.
func TestFaultConnCloseDelivers(t *testing.T) {
	a, b := tcpPair(t)
	fc := framedtest.WrapConn(a)
	fc.Out.Latency(50*time.Millisecond, 0)
	fc.Out.Slice(1)
	_, err := fc.Write([]byte("last"))
	require.NoError(t, err)
	require.NoError(t, fc.Close())
	require.NoError(t, b.SetReadDeadline(time.Now().Add(10*time.Second)))
	got, err := io.ReadAll(b)
	require.NoError(t, err)
	assert.Equal(t, "last", string(got))
	assert.ErrorIs(t, fc.Close(), net.ErrClosed, "a second Close")
}

// TestFaultConnCloseBounded checks Close returns when the peer reads
// nothing and the bytes written cannot go out.
func TestFaultConnCloseBounded(t *testing.T) {
	ln := framedtest.NewListener(1024)
	defer ln.Close()
	a, err := ln.Dial()
	require.NoError(t, err)
	b, err := ln.Accept()
	require.NoError(t, err)
	defer b.Close()
	fc := framedtest.WrapConn(a)
	wrote := make(chan error, 1)
	go func() {
		_, err := fc.Write(make([]byte, 1<<20))
		wrote <- err
	}()
	// The writer fills every buffer on the way and blocks.
	require.NoError(t, b.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadFull(b, make([]byte, 1))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, fc.Close())
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.ErrorIs(t, <-wrote, net.ErrClosed, "the blocked Write")
}

// TestFaultLimitExact checks the connection ends as soon as the limit is
// reached, with no more bytes to come.
func TestFaultLimitExact(t *testing.T) {
	eachLink(t, func(t *testing.T, l faultLink) {
		l.faults.Limit(10)
		_, err := l.send.Write(pattern(10))
		require.NoError(t, err)
		require.NoError(t, l.recv.SetReadDeadline(time.Now().Add(10*time.Second)))
		got, err := io.ReadAll(l.recv)
		require.NoError(t, err, "the receiver reads EOF after the tenth byte")
		assert.Equal(t, pattern(10), got)
	})
}
