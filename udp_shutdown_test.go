package framed_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUDPServerShutdownIdle(t *testing.T) {
	conn := listenUDP(t, "udp", "127.0.0.1:0")
	var srv framed.UDPServer
	served := make(chan error, 1)
	go func() { served <- srv.Serve(conn) }()
	exchange(t, conn.LocalAddr().String(), []byte("up?"))

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	assert.ErrorIs(t, <-served, framed.ErrUDPServerClosed)
	_, _, err := conn.ReadFrom(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed, "Serve must close its socket")

	// Everything after the end is harmless and says the server is closed.
	assert.NoError(t, srv.Shutdown(ctx))
	assert.NoError(t, srv.Close())
	assert.ErrorIs(t, srv.Serve(listenUDP(t, "udp", "127.0.0.1:0")), framed.ErrUDPServerClosed)
	assert.ErrorIs(t, srv.ListenAndServe(), framed.ErrUDPServerClosed)
}

func TestUDPServerShutdownWaitsForHandler(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	srv := &framed.UDPServer{
		Handler: framed.UDPHandlerFunc(func(_ context.Context, req []byte, _ net.Addr) ([]byte, error) {
			close(entered)
			<-release
			return req, nil
		}),
	}
	conn := listenUDP(t, "udp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(conn) }()

	replied := make(chan []byte, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		reply, err := framed.ExchangeUDP(ctx, conn.LocalAddr().String(), []byte("slow"))
		assert.NoError(t, err)
		replied <- reply
	}()
	<-entered

	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(t.Context()) }()
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a handler was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	assert.NoError(t, <-shutdown)
	assert.ErrorIs(t, <-served, framed.ErrUDPServerClosed)
	assert.Equal(t, "slow", string(<-replied), "the in-flight reply must still be sent")
}

func TestUDPServerShutdownDeadline(t *testing.T) {
	entered := make(chan struct{})
	srv := &framed.UDPServer{
		Handler: framed.UDPHandlerFunc(func(ctx context.Context, _ []byte, _ net.Addr) ([]byte, error) {
			close(entered)
			<-ctx.Done()
			return nil, ctx.Err()
		}),
	}
	conn := listenUDP(t, "udp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(conn) }()
	send(t, listenUDP(t, "udp", "127.0.0.1:0"), conn.LocalAddr().String(), "stuck")
	<-entered

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded)
	assert.ErrorIs(t, <-served, framed.ErrUDPServerClosed)
	assert.EqualValues(t, 1, srv.Stats().HandlerErrors, "the handler saw its context cancelled")
}

func TestUDPServerStopBeforeServe(t *testing.T) {
	tests := []struct {
		name string
		stop func(*framed.UDPServer) error
	}{
		{name: "Close", stop: (*framed.UDPServer).Close},
		{name: "Shutdown", stop: func(s *framed.UDPServer) error { return s.Shutdown(context.Background()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv framed.UDPServer
			require.NoError(t, tt.stop(&srv))
			conn := listenUDP(t, "udp", "127.0.0.1:0")
			assert.ErrorIs(t, srv.Serve(conn), framed.ErrUDPServerClosed)
			_, _, err := conn.ReadFrom(make([]byte, 1))
			assert.ErrorIs(t, err, net.ErrClosed, "Serve must close the socket it was given")
			assert.ErrorIs(t, srv.ListenAndServe(), framed.ErrUDPServerClosed)
			assert.Nil(t, srv.LocalAddr())
		})
	}
}

func TestUDPServerConcurrentStops(t *testing.T) {
	var srv framed.UDPServer
	conns := []net.PacketConn{listenUDP(t, "udp", "127.0.0.1:0"), listenUDP(t, "udp", "127.0.0.1:0")}
	served := make(chan error, len(conns))
	for _, c := range conns {
		go func() { served <- srv.Serve(c) }()
		exchange(t, c.LocalAddr().String(), []byte("up?"))
	}

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { assert.NoError(t, srv.Close()) })
		wg.Go(func() { assert.NoError(t, srv.Shutdown(t.Context())) })
	}
	wg.Wait()
	for range conns {
		assert.ErrorIs(t, <-served, framed.ErrUDPServerClosed)
	}
}

func TestUDPServerListenAndServe(t *testing.T) {
	var srv framed.UDPServer
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	require.Eventually(t, func() bool { return srv.LocalAddr() != nil }, 5*time.Second, time.Millisecond,
		"ListenAndServe never bound a socket")
	addr := srv.LocalAddr().(*net.UDPAddr)
	assert.True(t, addr.IP.IsLoopback(), "empty Addr must bind loopback, got %v", addr)
	assert.NotZero(t, addr.Port)
	assert.Equal(t, "hi", string(exchange(t, addr.String(), []byte("hi"))))

	require.NoError(t, srv.Shutdown(t.Context()))
	assert.ErrorIs(t, <-served, framed.ErrUDPServerClosed)
}

func TestUDPServerListenAndServeBusyPort(t *testing.T) {
	busy := listenUDP(t, "udp", "127.0.0.1:0")
	srv := framed.UDPServer{Addr: busy.LocalAddr().String()}
	err := srv.ListenAndServe()
	require.Error(t, err)
	assert.NotErrorIs(t, err, framed.ErrUDPServerClosed)
	assert.NoError(t, srv.Close())
}

// TestUDPServerStopFromHandler: a handler that calls Close or Shutdown
// makes it stop every other Serve call and return, and its own Serve call
// returns once it does.
func TestUDPServerStopFromHandler(t *testing.T) {
	for _, name := range []string{"Close", "Shutdown"} {
		t.Run(name, func(t *testing.T) {
			stopped := make(chan error, 1)
			srv := &framed.UDPServer{}
			srv.Handler = framed.UDPHandlerFunc(func(ctx context.Context, req []byte, _ net.Addr) ([]byte, error) {
				if name == "Close" {
					stopped <- srv.Close()
				} else {
					stopped <- srv.Shutdown(ctx)
				}
				return nil, nil
			})
			conn := listenUDP(t, "udp", "127.0.0.1:0")
			other := listenUDP(t, "udp", "127.0.0.1:0")
			served := make(chan error, 2)
			go func() { served <- srv.Serve(conn) }()
			go func() { served <- srv.Serve(other) }()
			client := listenUDP(t, "udp", "127.0.0.1:0")
			send(t, client, conn.LocalAddr().String(), "stop")
			assert.NoError(t, wait(t, stopped, name+" called from a handler"))
			for range 2 {
				assert.ErrorIs(t, wait(t, served, "Serve to return"), framed.ErrUDPServerClosed)
			}
		})
	}
}
