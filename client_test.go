package framed_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startTestPeer listens on a loopback port and runs serve on each
// connection it accepts, on a goroutine of its own. Cleanup closes the
// listener and the connections, and waits for those goroutines.
func startTestPeer(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	return startTestPeerTLS(t, nil, serve)
}

// startTestPeerTLS is startTestPeer with TLS when cfg is not nil.
func startTestPeerTLS(t testing.TB, cfg *tls.Config, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() { serve(nc) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echoFrames returns a peer that echoes every frame of format f, after a
// random delay of up to maxDelay, and counts them in frames if it is not
// nil.
func echoFrames(f framed.Format, maxDelay time.Duration, frames *atomic.Int64) func(net.Conn) {
	return func(nc net.Conn) {
		c := framed.NewConn(nc, framed.ConnConfig{Format: f})
		defer c.Close()
		for {
			p, err := c.ReadFrame()
			if err != nil {
				return
			}
			if frames != nil {
				frames.Add(1)
			}
			if maxDelay > 0 {
				time.Sleep(mrand.N(maxDelay))
			}
			if err := c.WriteFrame(p); err != nil {
				return
			}
		}
	}
}

// dialTestClient dials addr with d, or the zero Dialer if d is nil, and
// closes the Client at cleanup.
func dialTestClient(t *testing.T, d *framed.Dialer, addr string) *framed.Client {
	t.Helper()
	if d == nil {
		d = new(framed.Dialer)
	}
	c, err := d.Dial(t.Context(), addr)
	require.NoError(t, err, "Dial %s", addr)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientSendReceive(t *testing.T) {
	tests := []struct {
		name string
		give framed.Format
	}{
		{"default", framed.Format{}},
		{"big-endian uint16", framed.Format{HeaderSize: 2, BigEndian: true}},
		{"varint", framed.Format{Varint: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startTestPeer(t, echoFrames(tt.give, 0, nil))
			c := dialTestClient(t, &framed.Dialer{Format: tt.give}, addr)

			msgs := [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte("x"), 1000)}
			for _, msg := range msgs {
				require.NoError(t, c.Send(t.Context(), msg), "Send %d bytes", len(msg))
			}
			for _, want := range msgs {
				got, err := c.Receive(t.Context())
				require.NoError(t, err)
				assert.Equal(t, want, got)
			}
		})
	}
}

func TestClientReceiveEOF(t *testing.T) {
	addr := startTestPeer(t, func(nc net.Conn) {
		c := framed.NewConn(nc, framed.ConnConfig{})
		c.WriteFrame([]byte("only"))
		c.Close()
	})
	c := dialTestClient(t, nil, addr)

	got, err := c.Receive(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "only", string(got))
	_, err = c.Receive(t.Context())
	assert.ErrorIs(t, err, io.EOF)
}

func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := framed.Dial(ctx, addr)
	assert.Error(t, err, "Dial %s after its listener closed", addr)
	assert.Nil(t, c)
	assert.NoError(t, ctx.Err(), "Dial to a closed port should fail at once")
}

func TestDialInvalidFormat(t *testing.T) {
	// The address cannot be dialed: an ErrInvalidFormat shows that Dial
	// checked the Format before trying.
	d := &framed.Dialer{Format: framed.Format{HeaderSize: 5}}
	c, err := d.Dial(t.Context(), "no such address")
	assert.ErrorIs(t, err, framed.ErrInvalidFormat)
	assert.Nil(t, c)
}

func TestDialTLSHandshakeContext(t *testing.T) {
	// A peer that accepts and never speaks: the TLS handshake waits for
	// its reply until ctx ends.
	addr := startTestPeer(t, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	_, clientTLS := testTLSConfigs(t)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := (&framed.Dialer{TLSConfig: clientTLS}).Dial(ctx, addr)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Nil(t, c)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestDialerTimeout checks that Dialer.Timeout bounds the TLS handshake
// on its own, well before the ctx's own, later deadline.
func TestDialerTimeout(t *testing.T) {
	addr := startTestPeer(t, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	_, clientTLS := testTLSConfigs(t)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // only a safety net
	defer cancel()
	start := time.Now()
	c, err := (&framed.Dialer{Timeout: 100 * time.Millisecond, TLSConfig: clientTLS}).Dial(ctx, addr)
	took := time.Since(start)
	require.Error(t, err)
	assert.Nil(t, c)
	var ne net.Error
	assert.True(t, errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded),
		"a timeout error, got %v", err)
	assert.GreaterOrEqual(t, took, 100*time.Millisecond, "returned before the timeout")
	assert.Less(t, took, 2*time.Second, "returned long after the timeout")
}

func TestClientTLS(t *testing.T) {
	serverTLS, clientTLS := testTLSConfigs(t)
	addr := startTestPeerTLS(t, serverTLS, echoFrames(framed.Format{}, 0, nil))
	c := dialTestClient(t, &framed.Dialer{TLSConfig: clientTLS}, addr)

	for i := range 10 {
		msg := fmt.Appendf(nil, "secret %d", i)
		got, err := c.Request(t.Context(), msg)
		require.NoError(t, err)
		assert.Equal(t, msg, got)
	}
}

func TestRequestPipelined(t *testing.T) {
	const (
		goroutines = 32
		perG       = 40
	)
	var frames atomic.Int64
	addr := startTestPeer(t, echoFrames(framed.Format{}, 100*time.Microsecond, &frames))
	c := dialTestClient(t, nil, addr)

	var replied, cancelled, notSent atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				msg := fmt.Appendf(nil, "g%02d-i%03d-%s", g, i, bytes.Repeat([]byte("p"), mrand.IntN(200)))
				ctx, cancel := context.WithCancel(t.Context())
				switch mrand.IntN(4) {
				case 0: // done before sending
					cancel()
				case 1: // may end while the request is in flight
					ctx, cancel = context.WithTimeout(t.Context(), mrand.N(500*time.Microsecond))
				}
				// Otherwise cancelled after the reply, below.
				wasDone := ctx.Err() != nil
				got, err := c.Request(ctx, msg)
				cancel()
				switch {
				case err == nil:
					replied.Add(1)
					assert.Equal(t, string(msg), string(got), "reply to %q", msg)
				case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
					cancelled.Add(1)
					if wasDone {
						notSent.Add(1)
					}
				default:
					t.Errorf("Request %q: %v", msg, err)
				}
			}
		})
	}
	wg.Wait()

	assert.Equal(t, int64(goroutines*perG), replied.Load()+cancelled.Load())
	t.Logf("%d replied, %d cancelled (%d before sending)", replied.Load(), cancelled.Load(), notSent.Load())

	// The stream is still in step: each Request gets its own reply, and
	// every request sent reached the peer, but none whose ctx was done.
	for i := range 3 {
		msg := fmt.Appendf(nil, "final %d", i)
		got, err := c.Request(t.Context(), msg)
		require.NoError(t, err)
		assert.Equal(t, string(msg), string(got))
	}
	assert.LessOrEqual(t, frames.Load(), int64(goroutines*perG)-notSent.Load()+3)
	assert.GreaterOrEqual(t, frames.Load(), replied.Load()+3)
}

func TestRequestDoneContextSendsNothing(t *testing.T) {
	var frames atomic.Int64
	addr := startTestPeer(t, echoFrames(framed.Format{}, 0, &frames))
	c := dialTestClient(t, nil, addr)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Request(ctx, []byte("never"))
	assert.ErrorIs(t, err, context.Canceled)

	got, err := c.Request(t.Context(), []byte("sent"))
	require.NoError(t, err)
	assert.Equal(t, "sent", string(got))
	assert.Equal(t, int64(1), frames.Load(), "frames the peer received")
}

func TestRequestPeerClosesMidFlight(t *testing.T) {
	const (
		requests = 8
		answered = 3
	)
	// The peer reads every request, answers the first few, and closes.
	addr := startTestPeer(t, func(nc net.Conn) {
		c := framed.NewConn(nc, framed.ConnConfig{})
		defer c.Close()
		var got [][]byte
		for range requests {
			p, err := c.ReadFrame()
			if err != nil {
				return
			}
			got = append(got, bytes.Clone(p))
		}
		for _, p := range got[:answered] {
			c.WriteFrame(p)
		}
		c.Flush()
	})
	c, err := framed.Dial(t.Context(), addr)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	errs := make(chan error, requests)
	for i := range requests {
		go func() {
			msg := fmt.Appendf(nil, "request %d", i)
			got, err := c.Request(ctx, msg)
			if err == nil && !bytes.Equal(got, msg) {
				err = fmt.Errorf("reply %q to request %q", got, msg)
			}
			errs <- err
		}()
	}
	var ok int
	for range requests {
		if err := <-errs; err == nil {
			ok++
		} else {
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		}
	}
	assert.Equal(t, answered, ok, "Requests answered")

	_, err = c.Request(ctx, []byte("later"))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "Request after the peer closed")
	assert.Error(t, c.Send(t.Context(), []byte("later")), "Send after the peer closed")
	assert.NoError(t, c.Close(), "first Close after the connection failed")
	assert.NoError(t, ctx.Err(), "Requests should fail at once")
}

func TestCloseWhileRequestsBlocked(t *testing.T) {
	const requests = 8
	// The peer reads requests and never answers.
	received := make(chan struct{}, requests)
	addr := startTestPeer(t, func(nc net.Conn) {
		c := framed.NewConn(nc, framed.ConnConfig{})
		defer c.Close()
		for {
			if _, err := c.ReadFrame(); err != nil {
				return
			}
			received <- struct{}{}
		}
	})
	c, err := framed.Dial(t.Context(), addr)
	require.NoError(t, err)

	errs := make(chan error, requests)
	for range requests {
		go func() {
			_, err := c.Request(context.Background(), []byte("hang"))
			errs <- err
		}()
	}
	for range requests {
		<-received
	}
	require.NoError(t, c.Close())
	for range requests {
		assert.ErrorIs(t, <-errs, net.ErrClosed)
	}

	_, err = c.Request(t.Context(), []byte("later"))
	assert.ErrorIs(t, err, net.ErrClosed, "Request after Close")
	assert.ErrorIs(t, c.Send(t.Context(), []byte("later")), net.ErrClosed, "Send after Close")
	assert.ErrorIs(t, c.Close(), net.ErrClosed, "second Close")
}

func TestCloseConcurrent(t *testing.T) {
	addr := startTestPeer(t, echoFrames(framed.Format{}, 0, nil))
	c, err := framed.Dial(t.Context(), addr)
	require.NoError(t, err)
	_, err = c.Request(t.Context(), []byte("start the reader"))
	require.NoError(t, err)

	const closers = 4
	errs := make(chan error, closers)
	for range closers {
		go func() { errs <- c.Close() }()
	}
	var ok int
	for range closers {
		if err := <-errs; err == nil {
			ok++
		} else {
			assert.ErrorIs(t, err, net.ErrClosed)
		}
	}
	assert.Equal(t, 1, ok, "Close calls that returned nil")
}

func TestCloseUnblocksReceive(t *testing.T) {
	addr := startTestPeer(t, func(nc net.Conn) { io.Copy(io.Discard, nc) })
	c, err := framed.Dial(t.Context(), addr)
	require.NoError(t, err)

	done := make(chan error)
	go func() {
		_, err := c.Receive(t.Context())
		done <- err
	}()
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-done, net.ErrClosed)
}

func TestReceiveAfterClose(t *testing.T) {
	// Frames already read ahead into the Client's buffer are not returned
	// once the Client is closed.
	addr := startTestPeer(t, func(nc net.Conn) {
		var both []byte
		for _, msg := range []string{"first", "second"} {
			both, _ = framed.AppendFrame(both, []byte(msg))
		}
		nc.Write(both)
		io.Copy(io.Discard, nc)
	})
	c, err := framed.Dial(t.Context(), addr)
	require.NoError(t, err)
	got, err := c.Receive(t.Context())
	require.NoError(t, err)
	require.Equal(t, "first", string(got))
	require.NoError(t, c.Close())
	got, err = c.Receive(t.Context())
	assert.ErrorIs(t, err, net.ErrClosed, "Receive after Close returned %q", got)
}

func TestRequestWriteBlocked(t *testing.T) {
	// The peer never reads, so writes fill the socket buffers and then
	// block. Every Request must still return when its ctx ends, and Close
	// must stop the writer.
	addr := startTestPeer(t, func(net.Conn) {})
	c, err := framed.Dial(t.Context(), addr)
	require.NoError(t, err)

	msg := make([]byte, 1<<20)
	for i := range 24 { // more than loopback's socket buffers hold
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		start := time.Now()
		_, err := c.Request(ctx, msg)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "Request %d", i)
		require.Less(t, time.Since(start), 2*time.Second, "Request %d", i)
	}
	require.NoError(t, c.Close())
}

func TestRequestBigFrames(t *testing.T) {
	addr := startTestPeer(t, echoFrames(framed.Format{}, 0, nil))
	c := dialTestClient(t, nil, addr)

	msg := make([]byte, 1<<20)
	rand.Read(msg)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			got, err := c.Request(t.Context(), msg)
			if assert.NoError(t, err) {
				assert.True(t, bytes.Equal(msg, got), "1 MiB reply differs")
			}
		})
	}
	wg.Wait()
}

func TestClientFrameTooLarge(t *testing.T) {
	f := framed.Format{MaxFrameSize: 1024}
	addr := startTestPeer(t, echoFrames(f, 0, nil))
	c := dialTestClient(t, &framed.Dialer{Format: f}, addr)

	var tooLarge *framed.FrameTooLargeError
	err := c.Send(t.Context(), make([]byte, 1025))
	require.ErrorAs(t, err, &tooLarge, "Send 1025 bytes")
	assert.Equal(t, framed.FrameTooLargeError{Size: 1025, Limit: 1024}, *tooLarge)

	_, err = c.Request(t.Context(), make([]byte, 1025))
	require.ErrorAs(t, err, &tooLarge, "Request 1025 bytes")

	msg := bytes.Repeat([]byte("k"), 1024)
	got, err := c.Request(t.Context(), msg)
	require.NoError(t, err, "Request at the limit after refusals")
	assert.Equal(t, msg, got)
}

func TestRequestReplyTooLarge(t *testing.T) {
	// The peer answers with a frame above the client's limit: the stream
	// cannot go on, so the Client fails and closes the connection.
	peerClosed := make(chan struct{})
	addr := startTestPeer(t, func(nc net.Conn) {
		defer close(peerClosed)
		c := framed.NewConn(nc, framed.ConnConfig{})
		defer c.Close()
		if _, err := c.ReadFrame(); err != nil {
			return
		}
		c.WriteFrame(make([]byte, 2048))
		c.ReadFrame() // until the client closes
	})
	c := dialTestClient(t, &framed.Dialer{Format: framed.Format{MaxFrameSize: 1024}}, addr)

	_, err := c.Request(t.Context(), []byte("big one, please"))
	assert.ErrorIs(t, err, framed.ErrFrameTooLarge)
	<-peerClosed
	_, err = c.Request(t.Context(), []byte("again"))
	assert.ErrorIs(t, err, framed.ErrFrameTooLarge)
}

func TestRequestUnexpectedFrame(t *testing.T) {
	// The peer answers the first request twice. The second frame has no
	// Request to go to, so the Client closes the connection.
	peerClosed := make(chan struct{})
	addr := startTestPeer(t, func(nc net.Conn) {
		defer close(peerClosed)
		c := framed.NewConn(nc, framed.ConnConfig{})
		defer c.Close()
		p, err := c.ReadFrame()
		if err != nil {
			return
		}
		c.WriteFrame(p)
		c.WriteFrame(p)
		c.ReadFrame() // until the client closes
	})
	c := dialTestClient(t, nil, addr)

	got, err := c.Request(t.Context(), []byte("once"))
	require.NoError(t, err)
	assert.Equal(t, "once", string(got))
	<-peerClosed
	_, err = c.Request(t.Context(), []byte("twice"))
	assert.ErrorContains(t, err, "no Request waiting")
}

func TestReceiveWithRequest(t *testing.T) {
	addr := startTestPeer(t, echoFrames(framed.Format{}, 0, nil))

	c := dialTestClient(t, nil, addr)
	_, err := c.Request(t.Context(), []byte("a"))
	require.NoError(t, err)
	_, err = c.Receive(t.Context())
	assert.ErrorIs(t, err, framed.ErrReceiveWithRequest, "Receive after Request")

	c = dialTestClient(t, nil, addr)
	require.NoError(t, c.Send(t.Context(), []byte("b")))
	_, err = c.Receive(t.Context())
	require.NoError(t, err)
	_, err = c.Request(t.Context(), []byte("c"))
	assert.ErrorIs(t, err, framed.ErrReceiveWithRequest, "Request after Receive")
}

func TestClientOverPipe(t *testing.T) {
	p1, p2 := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { echoFrames(framed.Format{}, 0, nil)(p2) })
	c := framed.NewClient(framed.NewConn(p1, framed.ConnConfig{}))
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})

	var rg sync.WaitGroup
	for i := range 8 {
		rg.Go(func() {
			msg := fmt.Appendf(nil, "pipe %d", i)
			got, err := c.Request(t.Context(), msg)
			if assert.NoError(t, err) {
				assert.Equal(t, msg, got)
			}
		})
	}
	rg.Wait()
}

func TestRequestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over loopback")
	}
	addr := startTestPeer(t, echoFrames(framed.Format{}, 0, nil))
	c := dialTestClient(t, nil, addr)
	msg := make([]byte, 64)
	ctx := context.Background()

	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Request(ctx, msg); err != nil {
			t.Fatal(err)
		}
	})
	// The reply's copy; the rest is reused.
	assert.LessOrEqual(t, allocs, 1.0, "allocations per Request")
}

// BenchmarkClientRequest measures Requests to an echoing peer, with the
// Client's probes off and on (an Idle that never comes: the cost of
// looking at each reply for a probe).
func BenchmarkClientRequest(b *testing.B) {
	for _, probes := range []bool{false, true} {
		b.Run("probes="+onOff(probes), func(b *testing.B) {
			var d framed.Dialer
			if probes {
				d.Probes.Idle = time.Hour
			}
			benchmarkClientRequest(b, &d)
		})
	}
}

func benchmarkClientRequest(b *testing.B, d *framed.Dialer) {
	addr := startTestPeer(b, echoFrames(framed.Format{}, 0, nil))
	c, err := d.Dial(b.Context(), addr)
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	msg := make([]byte, 64)

	b.Run("serial", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Request(b.Context(), msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipelined32", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Request(context.Background(), msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
