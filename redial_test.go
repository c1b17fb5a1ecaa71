package framed_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restartServer is an echo server on one loopback address that can be
// stopped and started again there. It counts how many times it served
// each request id (a frame's first 8 bytes), and signals hit once it has
// served every frames more.
type restartServer struct {
	t    testing.TB
	addr string

	mu     sync.Mutex
	srv    *framed.Server
	done   chan struct{} // closed when Serve returns
	served map[uint64]int
	total  int
	mark   int           // total at which hit is signalled
	hit    chan struct{} // receives when total reaches mark
}

func newRestartServer(t testing.TB) *restartServer {
	s := &restartServer{t: t, addr: "127.0.0.1:0", served: make(map[uint64]int), hit: make(chan struct{}, 1)}
	s.start()
	t.Cleanup(func() { s.stop(false) })
	return s
}

func (s *restartServer) serveFrame(ctx context.Context, c *framed.Conn, frame []byte) error {
	s.mu.Lock()
	s.served[binary.LittleEndian.Uint64(frame)]++
	s.total++
	if s.total == s.mark {
		select {
		case s.hit <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	return c.WriteFrame(frame)
}

// start listens on the server's address again, and serves.
func (s *restartServer) start() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	require.NoError(s.t, err, "listen on %s", s.addr)
	s.addr = ln.Addr().String()
	srv := &framed.Server{Handler: framed.HandlerFunc(s.serveFrame)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	s.mu.Lock()
	s.srv, s.done = srv, done
	s.mu.Unlock()
}

// stop stops the server: gracefully, serving the frames it has, or with
// Close, dropping them.
func (s *restartServer) stop(graceful bool) {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	if graceful {
		srv.Shutdown(context.Background())
	} else {
		srv.Close()
	}
	<-done
}

// signalAfter arranges for hit to receive once n more frames are served.
func (s *restartServer) signalAfter(n int) {
	s.mu.Lock()
	s.mark = s.total + n
	s.mu.Unlock()
}

func (s *restartServer) count(id uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[id]
}

// closedAddr returns a loopback address that refuses connections.
func closedAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitForState waits until r is in state want.
func waitForState(t testing.TB, r *framed.Redialer, want framed.RedialState) {
	t.Helper()
	for st, _ := r.State(); st != want; st, _ = r.State() {
		require.True(t, r.WaitForStateChange(t.Context(), st), "waiting for %v", want)
	}
}

func newRedialer(t testing.TB, r *framed.Redialer) *framed.Redialer {
	t.Helper()
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedialerSurvivesRestarts(t *testing.T) {
	const (
		goroutines = 8
		restarts   = 20
		requests   = 10000
		perRestart = requests / (restarts + 2) // frames served between restarts
		timeout    = 5 * time.Second
		slack      = 250 * time.Millisecond // for a busy machine under -race
	)
	srv := newRestartServer(t)
	r := newRedialer(t, &framed.Redialer{
		Addrs:      []string{srv.addr},
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond,
	})

	type result struct {
		id      uint64
		err     error
		late    time.Duration // past the ctx's deadline
		wrongly bool          // answered with another frame
	}
	results := make(chan result, requests)
	next := make(chan uint64)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			msg := make([]byte, 32)
			for id := range next {
				binary.LittleEndian.PutUint64(msg, id)
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				reply, err := r.Request(ctx, msg)
				dl, _ := ctx.Deadline()
				cancel()
				results <- result{id: id, err: err, late: time.Since(dl), wrongly: err == nil && !bytes.Equal(reply, msg)}
			}
		})
	}
	feed := make(chan struct{})
	go func() {
		defer close(feed)
		defer close(next)
		for id := range uint64(requests) {
			next <- id
		}
	}()

	// Restart whenever perRestart more frames are served: with Close
	// (the requests in flight are lost: outcome unknown, or not sent) and
	// with Shutdown (they are answered) in turn.
	for i := range restarts {
		srv.signalAfter(perRestart)
		select {
		case <-srv.hit:
		case <-feed:
		}
		srv.stop(i%2 == 0)
		if i%3 == 0 {
			// Down long enough for requests to wait for a connection.
			waitForState(t, r, framed.RedialBackingOff)
		}
		srv.start()
	}
	<-feed
	wg.Wait()
	close(results)

	var ok, notSent, unknown int
	for res := range results {
		served := srv.count(res.id)
		assert.LessOrEqual(t, served, 1, "request %d served %d times", res.id, served)
		assert.Less(t, res.late, slack, "request %d outlived its ctx", res.id)
		assert.False(t, res.wrongly, "request %d answered with another's reply", res.id)
		switch {
		case res.err == nil:
			ok++
			assert.Equal(t, 1, served, "request %d answered", res.id)
		case errors.Is(res.err, framed.ErrNotSent) && !errors.Is(res.err, framed.ErrOutcomeUnknown):
			notSent++
			assert.Zero(t, served, "request %d not sent (%v)", res.id, res.err)
		case errors.Is(res.err, framed.ErrOutcomeUnknown) && !errors.Is(res.err, framed.ErrNotSent):
			unknown++
		default:
			t.Errorf("request %d: untyped error: %v", res.id, res.err)
		}
	}
	t.Logf("%d requests, %d restarts: %d answered, %d not sent, %d outcome unknown", requests, restarts, ok, notSent, unknown)
	assert.Equal(t, requests, ok+notSent+unknown)
	assert.Greater(t, ok, requests/2, "most requests answered")

	// Once the server is back, the next Request succeeds within the
	// backoff and 100 ms.
	srv.stop(false)
	ctx := t.Context()
	waitForState(t, r, framed.RedialBackingOff)
	srv.start()
	start := time.Now()
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := r.Request(reqCtx, make([]byte, 8))
	require.NoError(t, err)
	took := time.Since(start)
	t.Logf("first Request after the server came back: %v", took)
	assert.Less(t, took, 48*time.Millisecond+100*time.Millisecond+slack, "first Request after the restart")
}

func TestRedialerAddrs(t *testing.T) {
	srv := newRestartServer(t)
	refusing := closedAddr(t)
	blackholed := blackholeAddr(t)
	const dialTimeout = 200 * time.Millisecond
	r := newRedialer(t, &framed.Redialer{
		Dialer: &framed.Dialer{Timeout: dialTimeout},
		Addrs:  []string{refusing, blackholed, srv.addr},
	})
	start := time.Now()
	msg := make([]byte, 16)
	binary.LittleEndian.PutUint64(msg, 7)
	reply, err := r.Request(t.Context(), msg)
	took := time.Since(start)
	require.NoError(t, err)
	assert.Equal(t, msg, reply)
	assert.Equal(t, 1, srv.count(7), "served by the third address")
	// The refused address costs little, the blackholed one the dial
	// timeout.
	assert.GreaterOrEqual(t, took, dialTimeout)
	assert.Less(t, took, dialTimeout+150*time.Millisecond)
	st, err := r.State()
	assert.Equal(t, framed.RedialReady, st)
	assert.NoError(t, err)
}

func TestRedialerRefusedCostsLittle(t *testing.T) {
	srv := newRestartServer(t)
	r := newRedialer(t, &framed.Redialer{Addrs: []string{closedAddr(t), closedAddr(t), srv.addr}})
	start := time.Now()
	_, err := r.Request(t.Context(), make([]byte, 8))
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 2*10*time.Millisecond+50*time.Millisecond, "two refused addresses")
}

func TestRedialerCloseDuringBackoff(t *testing.T) {
	r := &framed.Redialer{Addrs: []string{closedAddr(t)}, MinBackoff: time.Hour, MaxBackoff: time.Hour}
	ctx := t.Context()
	for st, _ := r.State(); st != framed.RedialBackingOff; st, _ = r.State() {
		require.True(t, r.WaitForStateChange(ctx, st))
	}
	_, lastErr := r.State()
	assert.ErrorContains(t, lastErr, "refused")

	waiting := make(chan error, 1)
	go func() {
		_, err := r.Request(ctx, []byte("x"))
		waiting <- err
	}()
	start := time.Now()
	require.NoError(t, r.Close())
	assert.Less(t, time.Since(start), 100*time.Millisecond, "Close during an hour's backoff")
	err := <-waiting
	assert.ErrorIs(t, err, net.ErrClosed)
	st, _ := r.State()
	assert.Equal(t, framed.RedialClosed, st)
	assert.ErrorIs(t, r.Close(), net.ErrClosed, "second Close")
	_, err = r.Request(ctx, []byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed, "Request after Close")
}

func TestRedialerFailFastAndWaitingBound(t *testing.T) {
	tests := []struct {
		name       string
		failFast   bool
		maxWaiting int
		want       error
	}{
		{"FailFast", true, 0, framed.ErrNotSent},
		{"MaxWaitingBytes", false, 4, framed.ErrNotSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRedialer(t, &framed.Redialer{
				Addrs:           []string{closedAddr(t)},
				FailFast:        tt.failFast,
				MaxWaitingBytes: tt.maxWaiting,
				MinBackoff:      time.Hour,
				MaxBackoff:      time.Hour,
			})
			for st, _ := r.State(); st != framed.RedialBackingOff; st, _ = r.State() {
				require.True(t, r.WaitForStateChange(t.Context(), st))
			}
			_, err := r.Request(t.Context(), []byte("longer than four"))
			assert.ErrorIs(t, err, tt.want)
			assert.ErrorIs(t, r.Send(t.Context(), []byte("longer than four")), tt.want)
		})
	}
}

func TestRedialerWaitsForItsCtx(t *testing.T) {
	r := newRedialer(t, &framed.Redialer{Addrs: []string{closedAddr(t)}, MinBackoff: time.Hour, MaxBackoff: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Request(ctx, []byte("x"))
		done <- err
	}()
	cancel()
	err := <-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, framed.ErrNotSent)
}

func TestRedialerBadConfig(t *testing.T) {
	r := newRedialer(t, &framed.Redialer{})
	_, err := r.Request(t.Context(), []byte("x"))
	assert.ErrorContains(t, err, "no Addrs")
	st, _ := r.State()
	assert.Equal(t, framed.RedialClosed, st)
}

func TestRedialerSendReceiveAcrossRedial(t *testing.T) {
	srv := newRestartServer(t)
	r := newRedialer(t, &framed.Redialer{Addrs: []string{srv.addr}, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	ctx := t.Context()
	frame := func(id uint64) []byte { return binary.LittleEndian.AppendUint64(nil, id) }

	require.NoError(t, r.Send(ctx, frame(1)))
	got, err := r.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, frame(1), got)

	srv.stop(true)
	srv.start()
	// The Receive loop learns of the new connection once, then goes on.
	_, err = r.Receive(ctx)
	require.ErrorIs(t, err, framed.ErrRedialed)
	assert.NotErrorIs(t, err, io.EOF, "a loop that stops at EOF goes on")
	require.NoError(t, r.Send(ctx, frame(2)))
	got, err = r.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, frame(2), got)

	_, err = r.Request(ctx, frame(3))
	assert.ErrorIs(t, err, framed.ErrReceiveWithRequest)
}

func TestRedialerStateLog(t *testing.T) {
	srv := newRestartServer(t)
	var states []framed.RedialState
	r := newRedialer(t, &framed.Redialer{Addrs: []string{srv.addr}, MinBackoff: time.Millisecond})
	ctx := t.Context()
	st, _ := r.State()
	states = append(states, st)
	for st != framed.RedialReady {
		require.True(t, r.WaitForStateChange(ctx, st))
		st, _ = r.State()
		states = append(states, st)
	}
	assert.Equal(t, []framed.RedialState{framed.RedialConnecting, framed.RedialReady}, states)
	// A Redialer used for Requests reads replies all the time, so it finds
	// a server that hangs up without being asked anything.
	_, err := r.Request(ctx, make([]byte, 8))
	require.NoError(t, err)
	srv.stop(false)
	require.True(t, r.WaitForStateChange(ctx, framed.RedialReady))
	st, err = r.State()
	assert.NotEqual(t, framed.RedialReady, st)
	assert.Error(t, err, "why the connection ended")
	assert.Equal(t, "backing off", framed.RedialBackingOff.String())
}

// TestClientOutcomeUnknown: a peer that reads a request and hangs up
// leaves its outcome unknown; a Request after that was never sent.
func TestClientOutcomeUnknown(t *testing.T) {
	var got atomic.Int64
	addr := startTestPeer(t, func(nc net.Conn) {
		c := framed.NewConn(nc, framed.ConnConfig{})
		c.ReadFrame()
		got.Add(1)
		c.Close()
	})
	c := dialTestClient(t, nil, addr)
	_, err := c.Request(t.Context(), []byte("hello"))
	assert.ErrorIs(t, err, framed.ErrOutcomeUnknown)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the cause")
	assert.NotErrorIs(t, err, framed.ErrNotSent)
	_, err = c.Request(t.Context(), []byte("again"))
	assert.ErrorIs(t, err, framed.ErrNotSent)
	assert.NotErrorIs(t, err, framed.ErrOutcomeUnknown)
	assert.Equal(t, int64(1), got.Load())
}

func TestRedialerRequestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over loopback")
	}
	addr := startTestPeer(t, echoFrames(framed.Format{}, 0, nil))
	r := newRedialer(t, &framed.Redialer{Addrs: []string{addr}})
	msg := make([]byte, 64)
	ctx := context.Background()
	_, err := r.Request(ctx, msg)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := r.Request(ctx, msg); err != nil {
			t.Fatal(err)
		}
	})
	// The reply's copy, as for a Client: nothing more.
	assert.LessOrEqual(t, allocs, 1.0, "allocations per Request")
}

func BenchmarkRedialerRequest(b *testing.B) {
	addr := startTestPeer(b, echoFrames(framed.Format{}, 0, nil))
	c, err := framed.Dial(b.Context(), addr)
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	r := &framed.Redialer{Addrs: []string{addr}}
	b.Cleanup(func() { r.Close() })
	msg := make([]byte, 64)
	for _, bb := range []struct {
		name    string
		request func(context.Context, []byte) ([]byte, error)
	}{
		{"Client", c.Request},
		{"Redialer", r.Request},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bb.request(b.Context(), msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestRedialerLogsStates(t *testing.T) {
	srv := newRestartServer(t)
	var mu sync.Mutex
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	r := &framed.Redialer{Addrs: []string{closedAddr(t), srv.addr}, Shuffle: true, Logger: logger}
	_, err := r.Request(t.Context(), make([]byte, 8))
	require.NoError(t, err)
	require.NoError(t, r.Close())
	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	assert.Contains(t, out, "level=INFO")
	assert.Contains(t, out, "state=connecting")
	assert.Contains(t, out, "state=ready addr="+srv.addr)
	assert.Contains(t, out, "state=closed")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestClientOutcomeQueuedBehind: when a connection dies with one request
// partly written and another queued behind it, the first's outcome is
// unknown and the second was not sent. net.Pipe has no buffer, so what
// the peer reads is exactly what was written.
func TestClientOutcomeQueuedBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		near, far := net.Pipe()
		c := framed.NewClient(framed.NewConn(near, framed.ConnConfig{}))
		defer c.Close()
		request := func(msg string) <-chan error {
			errs := make(chan error, 1)
			go func() {
				_, err := c.Request(context.Background(), []byte(msg))
				errs <- err
			}()
			return errs
		}
		firstErr := request("first")
		head := make([]byte, 2)
		_, err := io.ReadFull(far, head) // half of the first's header: it is on the wire
		require.NoError(t, err)
		secondErr := request("second")
		synctest.Wait() // the second is queued behind the first's write
		far.Close()
		first, second := <-firstErr, <-secondErr
		assert.ErrorIs(t, first, framed.ErrOutcomeUnknown, "partly written")
		assert.ErrorIs(t, second, framed.ErrNotSent, "queued behind")
		assert.NotErrorIs(t, second, framed.ErrOutcomeUnknown)
	})
}
