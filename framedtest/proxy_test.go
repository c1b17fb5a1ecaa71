package framedtest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProxyFramedUnderFaults runs pipelined requests from several clients
// through a proxy that slices, delays and throttles both ways, and checks
// every reply.
func TestProxyFramedUnderFaults(t *testing.T) {
	srv := framedtest.NewServer(nil)
	defer srv.Close()
	p := framedtest.NewProxy(srv.Addr)
	defer p.Close()
	p.Up.SliceRandom(5)
	p.Down.SliceRandom(3)
	p.Down.Latency(time.Millisecond, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client, err := p.Dial(ctx)
			if !assert.NoError(t, err) {
				return
			}
			defer client.Close()
			for j := range 20 {
				msg := bytes.Repeat([]byte{byte(i), byte(j)}, j*10)
				got, err := client.Request(ctx, msg)
				if !assert.NoError(t, err) || !assert.Equal(t, msg, got, "client %d request %d", i, j) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestProxyHalfClose(t *testing.T) {
	client, server, _ := proxied(t)
	_, err := client.Write([]byte("req"))
	require.NoError(t, err)
	require.NoError(t, client.(*net.TCPConn).CloseWrite())
	require.NoError(t, server.SetReadDeadline(time.Now().Add(10*time.Second)))
	got, err := io.ReadAll(server)
	require.NoError(t, err, "the target reads EOF after the data")
	assert.Equal(t, "req", string(got))

	_, err = server.Write([]byte("reply"))
	require.NoError(t, err, "the target may still answer")
	require.NoError(t, server.(*net.TCPConn).CloseWrite())
	require.NoError(t, client.SetReadDeadline(time.Now().Add(10*time.Second)))
	got, err = io.ReadAll(client)
	require.NoError(t, err)
	assert.Equal(t, "reply", string(got))
}

// TestProxyResetPropagates checks a reset from one side resets the other.
func TestProxyResetPropagates(t *testing.T) {
	client, server, _ := proxied(t)
	require.NoError(t, server.(*net.TCPConn).SetLinger(0))
	require.NoError(t, server.Close())
	require.NoError(t, client.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := client.Read(make([]byte, 1))
	assert.ErrorIs(t, err, syscall.ECONNRESET)
}

func TestProxyClose(t *testing.T) {
	client, server, p := proxied(t)
	p.Up.Stall() // Close must not wait for a stall
	_, err := client.Write([]byte("held"))
	require.NoError(t, err)
	p.Close()
	p.Close() // a second Close does nothing
	for name, c := range map[string]net.Conn{"client": client, "target": server} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := c.Read(make([]byte, 1))
		assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "%s: %v", name, err)
	}
	_, err = net.DialTimeout("tcp", p.Addr, time.Second)
	assert.Error(t, err, "nothing listens after Close")
}

func TestProxyTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	p := framedtest.NewProxy(addr)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil { // the reset may come before the dial returns
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		return
	}
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, syscall.ECONNRESET, "a client of a proxy whose target is down is reset")
}
