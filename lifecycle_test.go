package framed_test

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// stopBound is how long a Close, or a Shutdown whose ctx allows more, may
// take when called from a handler, a hook or a goroutine of theirs. Every
// call in these tests has nothing to wait for but the library itself, so
// the bound is far above what they need even on a busy machine; a
// deadlock passes it by forever.
const stopBound = time.Second

// stopped is what a call of Close or Shutdown returned and how long it took.
type stopped struct {
	name string
	err  error
	took time.Duration
}

// timed calls stop, named name, and says what it returned and how long it
// took.
func timed(name string, stop func() error) stopped {
	start := time.Now()
	err := stop()
	return stopped{name: name, err: err, took: time.Since(start)}
}

// shutdownWithin calls stop with a context derived from parent that ends
// after stopBound.
func shutdownWithin(parent context.Context, stop func(context.Context) error) stopped {
	ctx, cancel := context.WithTimeout(parent, stopBound)
	defer cancel()
	return timed("Shutdown", func() error { return stop(ctx) })
}

// assertPrompt checks that a call returned nil within stopBound.
func assertPrompt(t *testing.T, r stopped) {
	t.Helper()
	assert.NoError(t, r.err, "%s", r.name)
	assert.Less(t, r.took, stopBound, "%s took", r.name)
}

// dialPeer connects to addr, sends msg, and then reads until the server
// ends the connection, and closes it, as a peer that has nothing more to
// say does; so a connection that the server drains needs not linger.
// Cleanup waits for the reader.
func dialPeer(t *testing.T, addr, msg string) {
	t.Helper()
	c := dial(t, addr)
	require.NoError(t, c.WriteFrame([]byte(msg)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		for {
			if _, err := c.ReadFrame(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
}

// TestServerStopFromHandlersAtOnce: handlers that call Close or Shutdown
// at the same moment do not wait for one another, and all return.
// Shutdown is given a ctx that Close does not cancel
// (context.WithoutCancel keeps the handler ctx's values, which name the
// caller's connection), so it has to return because every connection it
// waits for has ended.
func TestServerStopFromHandlersAtOnce(t *testing.T) {
	tests := []struct {
		name  string
		stops []string // what each connection's handler calls
	}{
		{"two Close", []string{"Close", "Close"}},
		{"32 Close", slices.Repeat([]string{"Close"}, 32)},
		{"Close and Shutdown", []string{"Close", "Shutdown"}},
		{"two Shutdown", []string{"Shutdown", "Shutdown"}},
		{"two of each", []string{"Close", "Shutdown", "Close", "Shutdown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(tt.stops)
			arrived := make(chan struct{}, n)
			release := make(chan struct{})
			results := make(chan stopped, n)
			var s *framed.Server
			s = &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
				arrived <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
				if string(p) == "Close" {
					results <- timed("Close", s.Close)
				} else {
					results <- shutdownWithin(context.WithoutCancel(ctx), s.Shutdown)
				}
				return nil
			})}
			r := serve(t, s)
			for _, stop := range tt.stops {
				dialPeer(t, r.addr, stop)
			}
			for range n {
				wait(t, arrived, "every handler to start")
			}
			close(release)
			for range n {
				assertPrompt(t, wait(t, results, "Close or Shutdown to return"))
			}
			assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
		})
	}
}

// TestServerStopFromHandlersGoroutine: a handler that calls Close or
// Shutdown on a goroutine of its own and waits for it is not waited for.
// Shutdown knows the caller's connection from the handler's ctx; that
// connection drains once the handler returns: its reply, then EOF.
func TestServerStopFromHandlersGoroutine(t *testing.T) {
	for _, name := range []string{"Close", "Shutdown"} {
		t.Run(name, func(t *testing.T) {
			results := make(chan stopped, 1)
			var s *framed.Server
			s = &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
				if string(p) != "stop" {
					return c.WriteFrame(p)
				}
				if err := c.WriteFrame(p); err != nil {
					return err
				}
				done := make(chan stopped, 1)
				go func() {
					if name == "Close" {
						done <- timed("Close", s.Close)
					} else {
						done <- shutdownWithin(ctx, s.Shutdown)
					}
				}()
				results <- <-done
				return nil
			})}
			r := serve(t, s)
			other := dial(t, r.addr)
			roundTrip(t, other, []byte("hello"))
			c := dial(t, r.addr)
			require.NoError(t, c.WriteFrame([]byte("stop")))
			assertPrompt(t, wait(t, results, name+" to return"))
			assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
			_, err := other.ReadFrame()
			assert.Error(t, err, "the other connection is stopped")
			if name == "Shutdown" {
				got, err := c.ReadFrame()
				require.NoError(t, err, "the caller's connection drains")
				assert.Equal(t, "stop", string(got))
				_, err = c.ReadFrame()
				assert.Equal(t, io.EOF, err, "then ends")
			}
		})
	}
}

// TestServerShutdownFromGoroutineOfRunningHandler: a goroutine that a
// handler starts calls Shutdown with the handler's ctx while the handler
// goes on running, here until its ctx ends. Shutdown stops everything
// else and returns; the handler's connection is left to the handler.
func TestServerShutdownFromGoroutineOfRunningHandler(t *testing.T) {
	results := make(chan stopped, 1)
	handlerDone := make(chan error, 1)
	var s *framed.Server
	s = &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if string(p) != "subscribe" {
			return c.WriteFrame(p)
		}
		go func() { results <- shutdownWithin(ctx, s.Shutdown) }()
		<-ctx.Done()
		handlerDone <- ctx.Err()
		return nil
	})}
	r := serve(t, s)
	idle := dial(t, r.addr)
	roundTrip(t, idle, []byte("hello"))
	c := dial(t, r.addr)
	require.NoError(t, c.WriteFrame([]byte("subscribe")))
	assertPrompt(t, wait(t, results, "Shutdown to return"))
	_, err := idle.ReadFrame()
	assert.Equal(t, io.EOF, err, "the idle connection was stopped")
	assert.Equal(t, int64(1), s.Stats().Active, "the handler's connection is still open")

	require.NoError(t, s.Close())
	assert.ErrorIs(t, wait(t, handlerDone, "the handler to return"), context.Canceled, "Close cancels the handler's ctx")
}

// TestServerCloseDoesNotWaitForHandlers: Close returns while a handler that
// ignores its ctx runs on; Shutdown, called after it, waits for that
// handler.
func TestServerCloseDoesNotWaitForHandlers(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	t.Cleanup(free)
	hook, closed := closedHook(1)
	s := &framed.Server{
		ConnState: hook,
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
			close(started)
			<-release
			return nil
		}),
	}
	r := serve(t, s)
	c := dial(t, r.addr)
	require.NoError(t, c.WriteFrame([]byte("block")))
	wait(t, started, "the handler to start")

	assertPrompt(t, timed("Close", s.Close))
	_, err := c.ReadFrame()
	assert.Error(t, err, "Close closed the connection")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, s.Shutdown(ctx), context.DeadlineExceeded, "Shutdown waits for the handler")
	assert.Equal(t, int64(1), s.Stats().Active, "the handler's connection is counted until it returns")

	free()
	require.NoError(t, s.Shutdown(t.Context()), "Shutdown after the handler returned")
	wait(t, closed, "StateClosed, which Shutdown waited for")
	assert.Equal(t, int64(0), s.Stats().Active)
}

// TestServerCloseFromConnStateHook: ConnState hooks may call Close, two at
// once or from a goroutine they wait for, with StateNew and StateClosed.
func TestServerCloseFromConnStateHook(t *testing.T) {
	for _, state := range []framed.ConnState{framed.StateNew, framed.StateClosed} {
		for _, how := range []string{"two at once", "on the hook's goroutine"} {
			t.Run(state.String()+"/"+how, func(t *testing.T) {
				n := 1
				if how == "two at once" {
					n = 2
				}
				arrived := make(chan struct{}, n)
				release := make(chan struct{})
				free := sync.OnceFunc(func() { close(release) })
				t.Cleanup(free)
				results := make(chan stopped, n)
				var s *framed.Server
				s = &framed.Server{ConnState: func(c *framed.Conn, st framed.ConnState) {
					if st != state {
						return
					}
					arrived <- struct{}{}
					<-release
					if n == 2 {
						results <- timed("Close", s.Close)
						return
					}
					done := make(chan stopped, 1)
					go func() { done <- timed("Close", s.Close) }()
					results <- <-done
				}}
				r := serve(t, s)
				for range n {
					c := dialRaw(t, r.addr)
					if state == framed.StateClosed {
						c.Close()
					}
				}
				for range n {
					wait(t, arrived, "the hooks to be called")
				}
				free()
				for range n {
					assertPrompt(t, wait(t, results, "Close to return"))
				}
				assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
			})
		}
	}
}

// TestUDPServerStopFromHandlers: UDP handlers may call Close and Shutdown
// at once, and from a goroutine they wait for.
func TestUDPServerStopFromHandlers(t *testing.T) {
	tests := []struct {
		name  string
		stops []string // what the handler of each socket calls
		own   bool     // on a goroutine the handler waits for
	}{
		{name: "two Close at once", stops: []string{"Close", "Close"}},
		{name: "Close and Shutdown at once", stops: []string{"Close", "Shutdown"}},
		{name: "Close on the handler's goroutine", stops: []string{"Close"}, own: true},
		{name: "Shutdown on the handler's goroutine", stops: []string{"Shutdown"}, own: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(tt.stops)
			arrived := make(chan struct{}, n)
			release := make(chan struct{})
			results := make(chan stopped, n)
			srv := &framed.UDPServer{}
			stop := func(ctx context.Context, req []byte) stopped {
				if string(req) == "Close" {
					return timed("Close", srv.Close)
				}
				// WithoutCancel: Close, if it comes first, must not be
				// what makes Shutdown return.
				return shutdownWithin(context.WithoutCancel(ctx), srv.Shutdown)
			}
			srv.Handler = framed.UDPHandlerFunc(func(ctx context.Context, req []byte, _ net.Addr) ([]byte, error) {
				arrived <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				if !tt.own {
					results <- stop(ctx, req)
					return nil, nil
				}
				done := make(chan stopped, 1)
				go func() { done <- stop(ctx, req) }()
				results <- <-done
				return nil, nil
			})
			served := make(chan error, n+1)
			var addrs []string
			for range n + 1 { // one socket more, whose loop is idle
				conn := listenUDP(t, "udp", "127.0.0.1:0")
				addrs = append(addrs, conn.LocalAddr().String())
				go func() { served <- srv.Serve(conn) }()
			}
			t.Cleanup(func() {
				assert.NoError(t, srv.Close())
				for range n + 1 {
					assert.ErrorIs(t, wait(t, served, "Serve to return"), framed.ErrUDPServerClosed)
				}
			})
			client := listenUDP(t, "udp", "127.0.0.1:0")
			for i, stop := range tt.stops {
				send(t, client, addrs[i], stop)
			}
			for range n {
				wait(t, arrived, "every handler to start")
			}
			close(release)
			for range n {
				assertPrompt(t, wait(t, results, "Close or Shutdown to return"))
			}
		})
	}
}
