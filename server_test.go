package framed_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// closedHook returns a ConnState hook and a channel that receives every
// connection the hook reports closed.
func closedHook(n int) (func(*framed.Conn, framed.ConnState), <-chan *framed.Conn) {
	ch := make(chan *framed.Conn, n)
	return func(c *framed.Conn, st framed.ConnState) {
		if st == framed.StateClosed {
			ch <- c
		}
	}, ch
}

// syncBuffer is a bytes.Buffer that a slog handler and a test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func ExampleServer() {
	s := &framed.Server{
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			return c.WriteFrame(bytes.ToUpper(frame))
		}),
		IdleTimeout: time.Minute,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	c := framed.NewConn(nc, framed.ConnConfig{})
	if err := c.WriteFrame([]byte("hello")); err != nil {
		log.Fatal(err)
	}
	reply, err := c.ReadFrame()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", reply)
	c.Close()

	if err := s.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-served)
	// Output:
	// HELLO
	// framed: Server closed
}

func TestServerEcho(t *testing.T) {
	sizes := []int{0, 1, 100, 16 << 10, 100 << 10}
	tests := []struct {
		name    string
		clients int
	}{
		{"one client", 1},
		{"200 clients", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := serve(t, &framed.Server{})
			conns := make([]*framed.Conn, tt.clients)
			for i := range conns {
				conns[i] = dial(t, r.addr)
			}
			var wg sync.WaitGroup
			for i, c := range conns {
				wg.Go(func() {
					// Pipeline every size, then read the replies in order.
					var sent [][]byte
					for _, n := range sizes {
						msg := bytes.Repeat([]byte{byte(i)}, n)
						if !assert.NoError(t, c.WriteFrame(msg), "client %d: write %d bytes", i, n) {
							return
						}
						sent = append(sent, msg)
					}
					for _, msg := range sent {
						got, err := c.ReadFrame()
						if !assert.NoError(t, err, "client %d: read reply to %d bytes", i, len(msg)) {
							return
						}
						assert.True(t, bytes.Equal(msg, got), "client %d: reply to %d bytes differs", i, len(msg))
					}
				})
			}
			wg.Wait()
			st := r.s.Stats()
			want := int64(tt.clients * len(sizes))
			assert.Equal(t, int64(tt.clients), st.Accepted, "Accepted")
			assert.Equal(t, want, st.FramesOut, "FramesOut")
			assert.Equal(t, st.BytesIn, st.BytesOut, "an echo sends what it receives")
		})
	}
}

func TestServerShutdownUnderLoad(t *testing.T) {
	const (
		clients      = 50
		window       = 32   // requests a client has in flight
		maxFrames    = 5000 // per client, should Shutdown come late
		shutdownFrom = 2000 // frames served before Shutdown
	)
	var served atomic.Int64
	mid := make(chan struct{})
	s := &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if served.Add(1) == shutdownFrom {
			close(mid)
		}
		return c.WriteFrame(p)
	})}
	r := serve(t, s)

	type result struct {
		sent, received int
		err            error
	}
	results := make([]result, clients)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		c := dial(t, r.addr)
		res := &results[i]
		tokens := make(chan struct{}, window)
		readerDone := make(chan struct{})
		wg.Go(func() { // writer: pipelines up to window requests
			<-start
			msg := make([]byte, 12)
			binary.LittleEndian.PutUint32(msg, uint32(i))
			for seq := range maxFrames {
				select {
				case tokens <- struct{}{}:
				case <-readerDone:
					return
				}
				binary.LittleEndian.PutUint64(msg[4:], uint64(seq))
				if c.WriteFrame(msg) != nil {
					return
				}
				res.sent++
			}
		})
		wg.Go(func() { // reader: every reply in order, until the server closes
			defer close(readerDone)
			defer c.Close()
			for {
				p, err := c.ReadFrame()
				if err != nil {
					res.err = err
					return
				}
				if len(p) != 12 || binary.LittleEndian.Uint32(p) != uint32(i) ||
					binary.LittleEndian.Uint64(p[4:]) != uint64(res.received) {
					assert.Fail(t, "wrong reply", "client %d, reply %d: %x", i, res.received, p)
					return
				}
				res.received++
				<-tokens
			}
		})
	}
	// A connection still in the listen backlog when Shutdown closes the
	// listener is reset by the kernel: let the server take them all first.
	waitFor(t, testTimeout, "every connection to be accepted", func() bool { return s.Stats().Active == clients })
	close(start)

	wait(t, mid, "frames to be served")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	began := time.Now()
	require.NoError(t, s.Shutdown(ctx), "Shutdown")
	t.Logf("Shutdown took %v", time.Since(began))
	assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
	wg.Wait()

	var sent, received int
	errs := map[string]int{}
	for _, res := range results {
		sent += res.sent
		received += res.received
		errs[fmt.Sprint(res.err)]++
	}
	st := s.Stats()
	t.Logf("sent %d frames, server read %d, clients received %d; accepted %d; client read errors: %v", sent, st.FramesIn, received, st.Accepted, errs)
	assert.Equal(t, int64(0), st.Active, "Active")
	assert.Equal(t, st.FramesIn, int64(received), "every frame the server read is answered")
	assert.Equal(t, st.FramesIn, st.FramesOut, "FramesOut")
	assert.GreaterOrEqual(t, st.FramesIn, int64(shutdownFrom))
	// Shutdown drains what had arrived, so received may equal sent; but
	// the clients stopped long before their last frame.
	assert.Less(t, sent, clients*maxFrames, "Shutdown came mid-stream")
	assert.Equal(t, map[string]int{"EOF": clients}, errs, "every client reads the end of the stream after its last reply")
}

func TestServerShutdownBlockedHandler(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	started := make(chan struct{}, 1)
	handlerErr := make(chan error, 1)
	s := &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		started <- struct{}{}
		select {
		case <-ctx.Done():
			handlerErr <- ctx.Err()
		case <-release:
			handlerErr <- nil
		}
		return ctx.Err()
	})}
	r := serve(t, s)
	c := dial(t, r.addr)
	require.NoError(t, c.WriteFrame([]byte("block")))
	wait(t, started, "the handler to start")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, s.Shutdown(ctx), context.DeadlineExceeded, "Shutdown")
	assert.Equal(t, int64(1), s.Stats().Active, "the connection outlives Shutdown")
	assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed, "Serve returns once Shutdown starts")

	assert.NoError(t, s.Close(), "Close")
	assert.ErrorIs(t, wait(t, handlerErr, "the handler to return"), context.Canceled, "handler ctx")
	// Close does not wait for a running handler (it may be what called
	// Close); Shutdown after it waits for the connection to end.
	ctx, cancel = context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	assert.NoError(t, s.Shutdown(ctx), "Shutdown after Close")
	assert.Equal(t, int64(0), s.Stats().Active, "Active after Close and Shutdown")
}

func TestServerShutdownAndClose(t *testing.T) {
	t.Run("before Serve", func(t *testing.T) {
		for _, stop := range []string{"Shutdown", "Close"} {
			s := &framed.Server{}
			if stop == "Shutdown" {
				require.NoError(t, s.Shutdown(context.Background()), stop)
			} else {
				require.NoError(t, s.Close(), stop)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			assert.ErrorIs(t, s.Serve(ln), framed.ErrServerClosed, "Serve after %s", stop)
			_, err = ln.Accept()
			assert.ErrorIs(t, err, net.ErrClosed, "Serve closes its listener after %s", stop)
			assert.ErrorIs(t, s.ListenAndServe(), framed.ErrServerClosed, "ListenAndServe after %s", stop)
		}
	})

	t.Run("twice and concurrently", func(t *testing.T) {
		s := &framed.Server{}
		r := serve(t, s)
		roundTrip(t, dial(t, r.addr), []byte("hello"))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if i%2 == 0 {
					assert.NoError(t, s.Shutdown(context.Background()), "Shutdown %d", i)
				} else {
					assert.NoError(t, s.Close(), "Close %d", i)
				}
			})
		}
		wg.Wait()
		assert.NoError(t, s.Shutdown(context.Background()), "Shutdown again")
		assert.NoError(t, s.Close(), "Close again")
		assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
		assert.Equal(t, int64(0), s.Stats().Active)
	})

	t.Run("accept racing Shutdown", func(t *testing.T) {
		for i := range 50 {
			s := &framed.Server{}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			serveErr := make(chan error, 1)
			go func() { serveErr <- s.Serve(ln) }()
			// A client connects while the Server shuts down, and closes
			// when it reads the end of the stream.
			var client sync.WaitGroup
			if nc, err := net.DialTimeout("tcp", ln.Addr().String(), testTimeout); err == nil {
				client.Go(func() {
					defer nc.Close()
					nc.SetDeadline(time.Now().Add(testTimeout))
					nc.Write(rawHeader(0))
					io.Copy(io.Discard, nc)
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			assert.NoError(t, s.Shutdown(ctx), "round %d: Shutdown", i)
			cancel()
			assert.ErrorIs(t, wait(t, serveErr, "Serve to return"), framed.ErrServerClosed, "round %d", i)
			assert.Equal(t, int64(0), s.Stats().Active, "round %d: Active", i)
			client.Wait()
		}
	})
}

func TestServerIndependent(t *testing.T) {
	a, b := &framed.Server{}, &framed.Server{}
	ra, rb := serve(t, a), serve(t, b)
	ca, cb := dial(t, ra.addr), dial(t, rb.addr)
	roundTrip(t, ca, []byte("a"))
	roundTrip(t, cb, []byte("b"))
	require.NoError(t, a.Close())
	assert.ErrorIs(t, ra.serveErr(), framed.ErrServerClosed)
	roundTrip(t, cb, []byte("b still serves"))
	assert.Equal(t, int64(1), b.Stats().Active)
}

func TestServerInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		give *framed.Server
	}{
		{"negative MaxConns", &framed.Server{MaxConns: -1}},
		{"negative FrameTimeout", &framed.Server{FrameTimeout: -time.Second}},
		{"negative IdleTimeout", &framed.Server{IdleTimeout: -time.Second}},
		{"negative WriteTimeout", &framed.Server{WriteTimeout: -time.Second}},
		{"negative MaxPendingBytes", &framed.Server{MaxPendingBytes: -1}},
		{"invalid Format", &framed.Server{Format: framed.Format{HeaderSize: 5}}},
		{"TLS without a certificate", &framed.Server{TLSConfig: &tls.Config{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			err = tt.give.Serve(ln)
			require.Error(t, err)
			assert.NotErrorIs(t, err, framed.ErrServerClosed)
			_, err = ln.Accept()
			assert.ErrorIs(t, err, net.ErrClosed, "Serve closes its listener")
		})
	}
}

func TestServerListenAndServe(t *testing.T) {
	s := &framed.Server{Addr: "127.0.0.1:0"}
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe() }()
	// The port is not known, so wait until Serve has started by shutting
	// down: ListenAndServe returns ErrServerClosed whether it had started
	// or not.
	require.NoError(t, s.Shutdown(context.Background()))
	assert.ErrorIs(t, wait(t, errc, "ListenAndServe to return"), framed.ErrServerClosed)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	s = &framed.Server{Addr: busy.Addr().String()}
	err = s.ListenAndServe()
	assert.Error(t, err, "address in use")
	assert.NotErrorIs(t, err, framed.ErrServerClosed)
}

// tempListener returns a temporary error from its first n Accept calls.
type tempListener struct {
	net.Listener
	n atomic.Int32
}

func (l *tempListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// failListener fails every Accept with an error that is not temporary.
type failListener struct{ net.Listener }

var errBroken = errors.New("listener broken")

func (l failListener) Accept() (net.Conn, error) { return nil, errBroken }

func TestServerAcceptErrors(t *testing.T) {
	t.Run("temporary", func(t *testing.T) {
		const fails = 4 // waits 5+10+20+40 ms
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		tl := &tempListener{Listener: ln}
		tl.n.Store(fails)
		var logs syncBuffer
		s := &framed.Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		r := serveOn(t, s, tl)
		roundTrip(t, dial(t, r.addr), []byte("served after accept errors"))
		assert.Equal(t, int64(fails), s.Stats().AcceptErrors, "AcceptErrors")
		assert.Contains(t, logs.String(), "too many open files", "logged")
		assert.Contains(t, logs.String(), "delay=40ms", "the delay doubles")
	})
	t.Run("permanent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		s := &framed.Server{}
		assert.ErrorIs(t, s.Serve(failListener{ln}), errBroken)
		assert.Equal(t, int64(1), s.Stats().AcceptErrors, "AcceptErrors")
		require.NoError(t, s.Close())
	})
}

func TestServerHostilePeers(t *testing.T) {
	// Each case sets short only the timeout it is about, so that the
	// well-behaved client, starved of CPU on a busy machine, is not closed
	// by another.
	const (
		short = 200 * time.Millisecond
		long  = 10 * time.Second
		limit = 1 << 20
	)
	tests := []struct {
		name    string
		act     func(nc *net.TCPConn) // sends the hostile input
		counter func(framed.ServerStats) int64
		min     time.Duration // the server must not close sooner

		frameTimeout, idleTimeout, writeTimeout time.Duration // long when zero
	}{
		{
			name:    "negative length",
			act:     func(nc *net.TCPConn) { nc.Write(rawHeader(-1)) },
			counter: func(st framed.ServerStats) int64 { return st.InvalidLength },
		},
		{
			name:    "length above the limit",
			act:     func(nc *net.TCPConn) { nc.Write(rawHeader(limit + 1)) },
			counter: func(st framed.ServerStats) int64 { return st.FramesTooLarge },
		},
		{
			name:    "half a header, stalled",
			act:     func(nc *net.TCPConn) { nc.Write(rawHeader(10)[:2]) },
			counter: func(st framed.ServerStats) int64 { return st.FrameTimeouts },
			min:     short,

			frameTimeout: short,
		},
		{
			name:    "half a payload, stalled",
			act:     func(nc *net.TCPConn) { nc.Write(append(rawHeader(100), make([]byte, 50)...)) },
			counter: func(st framed.ServerStats) int64 { return st.FrameTimeouts },
			min:     short,

			frameTimeout: short,
		},
		{
			name: "reset mid-frame",
			act: func(nc *net.TCPConn) {
				nc.Write(append(rawHeader(100), make([]byte, 50)...))
				nc.SetLinger(0)
				nc.Close()
			},
			counter: func(st framed.ServerStats) int64 { return st.ConnErrors },
		},
		{
			name:    "connect and idle",
			act:     func(nc *net.TCPConn) {},
			counter: func(st framed.ServerStats) int64 { return st.IdleTimeouts },
			min:     short,

			idleTimeout: short,
		},
		{
			name: "requests but never reads the replies",
			act: func(nc *net.TCPConn) {
				// With a small receive buffer a few echoes fill the
				// socket buffers. The writes stop when the server closes
				// the connection.
				nc.SetReadBuffer(4 << 10)
				go func() {
					frame := append(rawHeader(64<<10), make([]byte, 64<<10)...)
					for range 1024 {
						if _, err := nc.Write(frame); err != nil {
							return
						}
					}
				}()
			},
			counter: func(st framed.ServerStats) int64 { return st.WriteTimeouts },
			min:     short,

			writeTimeout: short,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hook, closed := closedHook(2)
			var logs syncBuffer
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("server log:\n%s", logs.String())
				}
			})
			s := &framed.Server{
				Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Format:       framed.Format{MaxFrameSize: limit},
				FrameTimeout: cmp.Or(tt.frameTimeout, long),
				IdleTimeout:  cmp.Or(tt.idleTimeout, long),
				WriteTimeout: cmp.Or(tt.writeTimeout, long),
				ConnState:    hook,
			}
			r := serve(t, s)

			// A well-behaved client echoes throughout.
			good := dial(t, r.addr)
			roundTrip(t, good, []byte("before"))
			stop := make(chan struct{})
			var echoes atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 0; i < 10000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := good.WriteFrame([]byte("during")); !assert.NoError(t, err) {
						return
					}
					if _, err := good.ReadFrame(); !assert.NoError(t, err) {
						return
					}
					echoes.Add(1)
					time.Sleep(time.Millisecond) // pace the echoes
				}
			})

			start := time.Now() // before the dial: the server may accept before Dial returns
			nc := dialRaw(t, r.addr)
			tt.act(nc)
			c := wait(t, closed, "the hostile connection to close")
			took := time.Since(start)
			require.Equal(t, nc.LocalAddr().String(), c.RemoteAddr().String(), "the hostile connection closed, not the good one")
			close(stop)
			wg.Wait()

			t.Logf("closed after %v; %d echoes meanwhile", took.Round(time.Millisecond), echoes.Load())
			assert.GreaterOrEqual(t, took, tt.min, "closed too soon")
			assert.Less(t, took, tt.min+time.Second, "closed too late")
			// ConnState(StateClosed) runs before the connection leaves the
			// server's count, so Active may lag the hook a moment.
			waitFor(t, testTimeout, "the closed connection to leave Active", func() bool { return s.Stats().Active == 1 })
			st := s.Stats()
			assert.Equal(t, int64(1), tt.counter(st), "the case's counter")
			assert.Equal(t, int64(1), st.Active, "the good client is still connected")
			roundTrip(t, good, []byte("after"))
			if tt.name != "reset mid-frame" {
				_, err := io.Copy(io.Discard, nc)
				if err == nil {
					err = io.EOF
				}
				assert.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the hostile side sees its connection closed")
			}
		})
	}
}

func TestServerMemoryStalledConns(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	const (
		conns   = 1000
		payload = 16 // bytes sent of each claimed frame
	)
	raiseFileLimit(t, 2*conns+200)
	s := &framed.Server{}
	r := serve(t, s)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	clients := make([]net.Conn, conns)
	for i := range clients {
		clients[i] = dialRaw(t, r.addr)
		_, err := clients[i].Write(rawHeader(framed.DefaultMaxFrameSize))
		require.NoError(t, err)
	}
	waitFor(t, testTimeout, "every header to be read", func() bool {
		st := s.Stats()
		return st.Accepted == conns && st.BytesIn == conns*4
	})
	// The payload bytes are read into the frame buffers made for them, so
	// once they are counted every buffer has been made.
	for _, nc := range clients {
		_, err := nc.Write(make([]byte, payload))
		require.NoError(t, err)
	}
	waitFor(t, testTimeout, "the payload bytes to be read", func() bool {
		return s.Stats().BytesIn == conns*(4+payload)
	})

	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	inuse := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d connections each claiming a %d MiB frame and sending %d bytes of it: heap alloc +%.1f MiB (%.1f KiB per connection), heap in use +%.1f MiB",
		conns, framed.DefaultMaxFrameSize>>20, payload, float64(heap)/(1<<20), float64(heap)/conns/1024, float64(inuse)/(1<<20))
	assert.Less(t, heap, int64(64<<20), "heap alloc")
	assert.Less(t, inuse, int64(64<<20), "heap in use")
	assert.Equal(t, int64(conns), s.Stats().Active)
}

// TestServerMemoryIdleConns pins the memory of connections idle between
// frames: they hold no read buffer, only their goroutine and a few small
// structures.
func TestServerMemoryIdleConns(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	const conns = 1000
	raiseFileLimit(t, 2*conns+200)
	s := &framed.Server{IdleTimeout: time.Minute, FrameTimeout: time.Minute}
	r := serve(t, s)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clients := make([]*framed.Conn, conns)
	msg := make([]byte, 64)
	for i := range clients {
		clients[i] = framed.NewConn(dialRaw(t, r.addr), framed.ConnConfig{ReadBufferSize: 128})
		roundTrip(t, clients[i], msg)
	}
	waitFor(t, testTimeout, "every reply to be counted", func() bool { return s.Stats().FramesOut == conns })
	runtime.GC()
	runtime.ReadMemStats(&after)
	total := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	perConn := float64(total) / conns / 1024
	t.Logf("%d idle connections, server and client ends together: +%.1f MiB heap and stacks, %.1f KiB per connection",
		conns, float64(total)/(1<<20), perConn)
	assert.Less(t, perConn, 16.0, "KiB per idle connection, both ends")
}

func TestServerMaxConns(t *testing.T) {
	s := &framed.Server{MaxConns: 2}
	r := serve(t, s)
	c1, c2 := dial(t, r.addr), dial(t, r.addr)
	roundTrip(t, c1, []byte("one"))
	roundTrip(t, c2, []byte("two"))

	c3 := dial(t, r.addr) // the kernel completes the handshake; Serve does not accept
	require.NoError(t, c3.WriteFrame([]byte("three")))
	waitFor(t, testTimeout, "Serve to wait for a slot", func() bool { return s.Stats().MaxConnsWaits >= 1 })
	assert.Equal(t, int64(2), s.Stats().Accepted, "Accepted at the limit")
	require.NoError(t, c3.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err := c3.ReadFrame()
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the third connection is not served at the limit")

	require.NoError(t, c1.Close())
	require.NoError(t, c3.SetReadDeadline(time.Now().Add(testTimeout)))
	got, err := c3.ReadFrame()
	require.NoError(t, err, "served once a slot frees")
	assert.Equal(t, "three", string(got))
	st := s.Stats()
	assert.Equal(t, int64(3), st.Accepted, "Accepted")
	assert.Equal(t, int64(2), st.Active, "Active")
}

func TestServerConnStateHooks(t *testing.T) {
	var mu sync.Mutex
	states := map[*framed.Conn][]framed.ConnState{}
	closed := make(chan *framed.Conn, 10)
	s := &framed.Server{
		ConnState: func(c *framed.Conn, st framed.ConnState) {
			mu.Lock()
			states[c] = append(states[c], st)
			mu.Unlock()
			if st == framed.StateClosed {
				closed <- c
			}
		},
	}
	r := serve(t, s)

	// Closed by the peer and by hostile input.
	eof := dialRaw(t, r.addr)
	eof.Close()
	dialRaw(t, r.addr).Write(rawHeader(-1))
	dialRaw(t, r.addr).Write(rawHeader(framed.DefaultMaxFrameSize + 1))
	for range 3 {
		wait(t, closed, "a connection to close")
	}

	// At Shutdown: one idle connection, one in the middle of a frame.
	idle := dial(t, r.addr)
	roundTrip(t, idle, []byte("idle"))
	midFrame := dialRaw(t, r.addr)
	msg := []byte("finished during Shutdown")
	frame := append(rawHeader(int32(len(msg))), msg...)
	bytesIn := s.Stats().BytesIn
	_, err := midFrame.Write(frame[:6])
	require.NoError(t, err)
	// BytesIn counts what the server has read: it has seen the frame start.
	waitFor(t, testTimeout, "the frame's first bytes to be read", func() bool { return s.Stats().BytesIn == bytesIn+6 })

	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()
	_, err = idle.ReadFrame()
	require.ErrorIs(t, err, io.EOF, "Shutdown closes the idle connection at once")
	idle.Close()
	_, err = midFrame.Write(frame[6:])
	require.NoError(t, err)
	rd := framed.NewReader(midFrame, framed.Format{})
	got, err := rd.ReadFrame()
	require.NoError(t, err, "the frame begun before Shutdown is served")
	assert.Equal(t, msg, got)
	_, err = rd.ReadFrame()
	assert.ErrorIs(t, err, io.EOF, "then the connection closes")
	midFrame.Close()
	require.NoError(t, wait(t, shutdown, "Shutdown to return"))

	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, states, 5, "connections seen by the hook")
	assert.Equal(t, int64(5), s.Stats().Accepted, "Accepted")
	for c, got := range states {
		assert.Equal(t, []framed.ConnState{framed.StateNew, framed.StateClosed}, got, "states of %v", c.RemoteAddr())
	}
}

func TestServerHandlerPanic(t *testing.T) {
	var logs syncBuffer
	hook, closed := closedHook(2)
	s := &framed.Server{
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		ConnState: hook,
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
			if string(p) == "panic" {
				panic("handler bug")
			}
			return c.WriteFrame(p)
		}),
	}
	r := serve(t, s)
	bad, good := dial(t, r.addr), dial(t, r.addr)
	roundTrip(t, good, []byte("before"))
	require.NoError(t, bad.WriteFrame([]byte("panic")))
	_, err := bad.ReadFrame()
	assert.Error(t, err, "the panicking handler's connection is closed")
	wait(t, closed, "the connection to close")
	roundTrip(t, good, []byte("after"))

	waitFor(t, testTimeout, "the closed connection to leave Active", func() bool { return s.Stats().Active == 1 })
	st := s.Stats()
	assert.Equal(t, int64(1), st.PanicsRecovered, "PanicsRecovered")
	assert.Equal(t, int64(1), st.Active, "Active")
	out := logs.String()
	assert.Contains(t, out, "handler bug", "the panic value is logged")
	assert.Contains(t, out, "server_test.go", "the stack is logged")
}

func TestServerHandlerError(t *testing.T) {
	hook, closed := closedHook(1)
	s := &framed.Server{
		ConnState: hook,
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
			if err := c.WriteFrame([]byte("bye")); err != nil {
				return err
			}
			return errors.New("protocol error")
		}),
	}
	r := serve(t, s)
	c := dial(t, r.addr)
	// Frames after the one that fails are never read: the reply to the
	// first still arrives, and then the end of the stream.
	for range 3 {
		require.NoError(t, c.WriteFrame([]byte("hello")))
	}
	got, err := c.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "bye", string(got))
	_, err = c.ReadFrame()
	assert.ErrorIs(t, err, io.EOF)
	c.Close()
	wait(t, closed, "the connection to close")
	assert.Equal(t, int64(1), s.Stats().HandlerErrors, "HandlerErrors")
}

// listenerConn counts the writes made to it in its listener's total.
type listenerConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c listenerConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return listenerConn{c, &l.writes}, nil
}

func TestServerBatchesReplies(t *testing.T) {
	const frames = 100
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countingListener{Listener: ln}
	r := serveOn(t, &framed.Server{}, cl)
	nc := dialRaw(t, r.addr)

	// A lone request is answered at once.
	c := framed.NewConn(nc, framed.ConnConfig{})
	roundTrip(t, c, []byte("lone"))
	require.Equal(t, int64(1), cl.writes.Load())

	// Pipelined requests that arrive together share a write.
	var batch []byte
	for i := range frames {
		batch, err = framed.AppendFrame(batch, []byte{byte(i)})
		require.NoError(t, err)
	}
	_, err = nc.Write(batch)
	require.NoError(t, err)
	for i := range frames {
		got, err := c.ReadFrame()
		require.NoError(t, err)
		require.Equal(t, []byte{byte(i)}, got)
	}
	writes := cl.writes.Load() - 1
	t.Logf("%d pipelined replies took %d writes", frames, writes)
	assert.LessOrEqual(t, writes, int64(3), "writes for %d pipelined replies", frames)
}

func TestServerAsyncReplies(t *testing.T) {
	// Replies written by goroutines the handler starts, after it returns,
	// are sent whether or not the connection is holding replies back.
	const frames = 200
	var handlers sync.WaitGroup
	t.Cleanup(handlers.Wait)
	s := &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		msg := bytes.Clone(p)
		handlers.Go(func() { c.WriteFrame(msg) })
		return nil
	})}
	r := serve(t, s)
	nc := dialRaw(t, r.addr)
	var batch []byte
	for i := range frames {
		batch, _ = framed.AppendFrame(batch, binary.LittleEndian.AppendUint16(nil, uint16(i)))
	}
	_, err := nc.Write(batch)
	require.NoError(t, err)
	rd := framed.NewReader(nc, framed.Format{})
	seen := make(map[uint16]bool)
	for range frames {
		p, err := rd.ReadFrame()
		require.NoError(t, err)
		seen[binary.LittleEndian.Uint16(p)] = true
	}
	assert.Len(t, seen, frames)
}

func TestServerTLS(t *testing.T) {
	serverTLS, clientTLS := testTLSConfigs(t)
	s := &framed.Server{TLSConfig: serverTLS}
	r := serve(t, s)
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", r.addr, clientTLS)
	require.NoError(t, err)
	t.Cleanup(func() { tc.Close() })
	require.NoError(t, tc.SetDeadline(time.Now().Add(testTimeout)))
	c := framed.NewConn(tc, framed.ConnConfig{})
	roundTrip(t, c, []byte("over TLS"))
	roundTrip(t, c, bytes.Repeat([]byte("x"), 100<<10))
	assert.Equal(t, int64(2), s.Stats().FramesOut)
}

// chanListener is a listener of connections handed to it, for tests in a
// synctest bubble, where the network cannot be used.
type chanListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// dial hands the listener one end of a pipe and returns the other.
func (l *chanListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

func TestServerTimeoutsExact(t *testing.T) {
	// In a bubble time moves only when every goroutine is blocked, so the
	// moment the server closes a connection can be checked exactly.
	const (
		frameTimeout = time.Second
		idleTimeout  = 3 * time.Second
	)
	synctest.Test(t, func(t *testing.T) {
		ln := newChanListener()
		s := &framed.Server{FrameTimeout: frameTimeout, IdleTimeout: idleTimeout}
		serveErr := make(chan error, 1)
		go func() { serveErr <- s.Serve(ln) }()
		defer func() {
			require.NoError(t, s.Close())
			assert.ErrorIs(t, <-serveErr, framed.ErrServerClosed)
		}()

		// A frame that trickles in, a byte every 300 ms, is closed a
		// FrameTimeout after its first byte, however often bytes come.
		nc := ln.dial()
		start := time.Now()
		frame := append(rawHeader(8), make([]byte, 8)...)
		var err error
		for _, b := range frame {
			if _, err = nc.Write([]byte{b}); err != nil {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		require.ErrorIs(t, err, io.ErrClosedPipe, "the trickling frame is cut")
		assert.Equal(t, 4*300*time.Millisecond, time.Since(start), "the write after the deadline fails")
		synctest.Wait()
		assert.Equal(t, int64(1), s.Stats().FrameTimeouts)

		// Between frames, the wait is IdleTimeout, from the last reply.
		nc = ln.dial()
		c := framed.NewConn(nc, framed.ConnConfig{})
		roundTrip(t, c, []byte("one"))
		start = time.Now()
		_, err = c.ReadFrame()
		assert.ErrorIs(t, err, io.EOF)
		assert.Equal(t, idleTimeout, time.Since(start), "closed after IdleTimeout")
		synctest.Wait()
		assert.Equal(t, int64(1), s.Stats().IdleTimeouts)
	})
}

// pipeliner sends batches of 64-byte frames on one connection and reads
// their replies.
type pipeliner struct {
	nc     net.Conn
	rd     *framed.Reader
	frames []byte // 64 frames of 64 bytes, encoded
}

const (
	pipelineDepth = 64
	benchFrame    = 64
)

// newPipeliner dials addr and encodes pipelineDepth frames of benchFrame
// bytes to send.
func newPipeliner(t testing.TB, addr string) *pipeliner {
	t.Helper()
	nc := dialRaw(t, addr)
	require.NoError(t, nc.SetDeadline(time.Time{}))
	p := &pipeliner{nc: nc, rd: framed.NewReader(nc, framed.Format{})}
	for range pipelineDepth {
		var err error
		p.frames, err = framed.AppendFrame(p.frames, make([]byte, benchFrame))
		require.NoError(t, err)
	}
	return p
}

// exchange sends n frames in one write and reads their n replies.
func (p *pipeliner) exchange(n int) error {
	if _, err := p.nc.Write(p.frames[:n*(4+benchFrame)]); err != nil {
		return err
	}
	for range n {
		if _, err := p.rd.ReadFrame(); err != nil {
			return err
		}
	}
	return nil
}

func BenchmarkServerEcho(b *testing.B) {
	for _, depth := range []int{1, pipelineDepth} {
		b.Run(fmt.Sprintf("pipelined=%d", depth), func(b *testing.B) {
			r := serve(b, &framed.Server{})
			p := newPipeliner(b, r.addr)
			b.SetBytes(benchFrame)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if n++; n == depth {
					if err := p.exchange(n); err != nil {
						b.Fatal(err)
					}
					n = 0
				}
			}
			if n > 0 {
				if err := p.exchange(n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestServerEchoAllocs(t *testing.T) {
	tests := []struct {
		name string
		give *framed.Server
	}{
		{"no timeouts", &framed.Server{}},
		{"timeouts", &framed.Server{FrameTimeout: time.Minute, IdleTimeout: time.Minute, WriteTimeout: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := serve(t, tt.give)
			p := newPipeliner(t, r.addr)
			for range 10 { // warm up: buffers reach their steady size
				require.NoError(t, p.exchange(pipelineDepth))
			}
			var err error
			perFrame := testing.AllocsPerRun(100, func() {
				if e := p.exchange(pipelineDepth); e != nil {
					err = e
				}
			}) / pipelineDepth
			require.NoError(t, err)
			t.Logf("allocations per frame echoed, server and client together: %v", perFrame)
			if raceEnabled {
				// Idle connections give their read buffer back to a
				// sync.Pool, which drops items at random under -race:
				// one allocation per batch of frames at most.
				assert.LessOrEqual(t, perFrame, 1.0/pipelineDepth, "allocations per frame")
				return
			}
			assert.Zero(t, perFrame, "allocations per frame")
		})
	}
}

func TestServerShutdownSendsHeldRepliesWithoutCloseWrite(t *testing.T) {
	// A connection with no CloseWrite (net.Pipe, or any net.Conn wrapper that
	// hides it) stopped by Shutdown while its replies are held back, because
	// more frames arrived together, still sends the reply to the frame it
	// was serving, and serves the frame that had arrived with it.
	started, release := make(chan struct{}), make(chan struct{})
	s := &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if string(p) == "first" {
			close(started)
			<-release
		}
		return c.WriteFrame(p)
	})}
	ln := newChanListener()
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })

	nc := ln.dial()
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
	batch, err := framed.AppendFrame(nil, []byte("first"))
	require.NoError(t, err)
	batch, err = framed.AppendFrame(batch, []byte("second"))
	require.NoError(t, err)
	_, err = nc.Write(batch)
	require.NoError(t, err)
	wait(t, started, "the first frame to be served")

	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(context.Background()) }()
	assert.ErrorIs(t, wait(t, serveErr, "Serve to return"), framed.ErrServerClosed)
	close(release)

	c := framed.NewConn(nc, framed.ConnConfig{})
	got, err := c.ReadFrame()
	require.NoError(t, err, "the reply to the frame being served when Shutdown began")
	assert.Equal(t, "first", string(got))
	got, err = c.ReadFrame()
	require.NoError(t, err, "the reply to the frame that had arrived with it")
	assert.Equal(t, "second", string(got))
	_, err = c.ReadFrame()
	assert.ErrorIs(t, err, io.EOF, "then the connection closes")
	require.NoError(t, wait(t, shutdown, "Shutdown to return"))
	assert.Zero(t, s.Stats().LingerTimeouts, "a connection that cannot half-close does not linger")
}

func TestServerBaseContext(t *testing.T) {
	type key struct{}
	var calls atomic.Int64
	got := make(chan any, 1)
	s := &framed.Server{
		BaseContext: func(net.Listener) context.Context {
			calls.Add(1)
			return context.WithValue(context.Background(), key{}, "base")
		},
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
			got <- ctx.Value(key{})
			return c.WriteFrame(p)
		}),
	}
	r := serve(t, s)
	for range 2 {
		roundTrip(t, dial(t, r.addr), []byte("x"))
		assert.Equal(t, "base", wait(t, got, "the handler"), "handler ctx descends from BaseContext")
	}
	assert.Equal(t, int64(1), calls.Load(), "BaseContext calls for one Serve")
}
