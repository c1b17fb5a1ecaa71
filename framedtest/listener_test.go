package framedtest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memPair returns both ends of a connection of a new Listener with the given
// buffer size, closed at cleanup.
func memPair(t *testing.T, size int) (client, server net.Conn) {
	t.Helper()
	ln := framedtest.NewListener(size)
	t.Cleanup(func() { ln.Close() })
	client, err := ln.Dial()
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestListenerCarriesEveryByte sends 1 MiB each way at once in writes of
// random sizes through a small buffer, and checks every byte arrives, in
// order.
func TestListenerCarriesEveryByte(t *testing.T) {
	client, server := memPair(t, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	up := make([]byte, 1<<20)
	down := make([]byte, 1<<20)
	for i := range up {
		up[i] = byte(rng.Uint32())
		down[i] = byte(rng.Uint32())
	}
	send := func(c net.Conn, data []byte, seed uint64) error {
		r := rand.New(rand.NewPCG(seed, seed))
		for len(data) > 0 {
			n := min(len(data), 1+r.IntN(10000))
			if _, err := c.Write(data[:n]); err != nil {
				return err
			}
			data = data[n:]
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- send(client, up, 3) }()
	go func() { defer wg.Done(); errs <- send(server, down, 4) }()
	// Reads of random sizes too, so reads that leave bytes behind are
	// exercised; a lost byte makes the reader wait, until its deadline.
	recv := func(c net.Conn, n int, seed uint64) ([]byte, error) {
		r := rand.New(rand.NewPCG(seed, seed))
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		got := make([]byte, 0, n)
		buf := make([]byte, 10000)
		for len(got) < n {
			k, err := c.Read(buf[:min(n-len(got), 1+r.IntN(len(buf)))])
			got = append(got, buf[:k]...)
			if err != nil {
				return got, err
			}
		}
		return got, nil
	}
	var gotUp, gotDown []byte
	var rerr [2]error
	wg.Add(2)
	go func() { defer wg.Done(); gotUp, rerr[0] = recv(server, len(up), 5) }()
	go func() { defer wg.Done(); gotDown, rerr[1] = recv(client, len(down), 6) }()
	wg.Wait()
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.NoError(t, rerr[0])
	require.NoError(t, rerr[1])
	assert.True(t, bytes.Equal(up, gotUp), "client to server")
	assert.True(t, bytes.Equal(down, gotDown), "server to client")
}

func TestListenerCloseWrite(t *testing.T) {
	client, server := memPair(t, 0)
	_, err := client.Write([]byte("abc"))
	require.NoError(t, err)
	require.NoError(t, client.(interface{ CloseWrite() error }).CloseWrite())

	require.NoError(t, server.SetReadDeadline(time.Now().Add(10*time.Second)))
	got, err := io.ReadAll(server)
	require.NoError(t, err, "the server reads the data, then EOF")
	assert.Equal(t, "abc", string(got))

	_, err = server.Write([]byte("reply"))
	require.NoError(t, err, "the server may still write")
	buf := make([]byte, 5)
	_, err = io.ReadFull(client, buf)
	require.NoError(t, err, "the client may still read")
	assert.Equal(t, "reply", string(buf))

	_, err = client.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EPIPE, "writing after CloseWrite")
}

func TestListenerClose(t *testing.T) {
	client, server := memPair(t, 0)
	_, err := client.Write([]byte("last words"))
	require.NoError(t, err)

	blocked := make(chan error, 1)
	go func() {
		_, err := client.Read(make([]byte, 1))
		blocked <- err
	}()
	require.NoError(t, client.Close())
	assert.ErrorIs(t, <-blocked, net.ErrClosed, "Close unblocks a Read")

	got, err := io.ReadAll(server)
	require.NoError(t, err, "the peer reads the data, then EOF")
	assert.Equal(t, "last words", string(got))
	_, err = server.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EPIPE, "writing to a closed peer")

	_, err = client.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = client.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, client.Close(), net.ErrClosed, "a second Close")
}

func TestListenerDeadlines(t *testing.T) {
	client, server := memPair(t, 8)

	require.NoError(t, server.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := server.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())

	// A read that timed out loses nothing: the next one, with no
	// deadline, gets the bytes written after it.
	require.NoError(t, server.SetReadDeadline(time.Time{}))
	_, err = client.Write([]byte("ok"))
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(server, buf)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(buf))

	// A write into a full buffer blocks until its deadline, having written
	// what fitted: the buffer holds 8 bytes.
	require.NoError(t, client.SetWriteDeadline(time.Now().Add(20*time.Millisecond)))
	n, err := client.Write(make([]byte, 20))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Equal(t, 8, n, "bytes written before the buffer filled")

	// A deadline in the past fails at once; one set while a Read waits
	// wakes it.
	require.NoError(t, client.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err = client.Read(buf)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, client.SetReadDeadline(time.Time{}))
	woke := make(chan error, 1)
	go func() { _, err := client.Read(buf); woke <- err }()
	require.NoError(t, client.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	assert.ErrorIs(t, <-woke, os.ErrDeadlineExceeded)
}

// TestListenerBackpressure checks a writer blocks while the peer's buffer is
// full and goes on as the peer reads.
func TestListenerBackpressure(t *testing.T) {
	client, server := memPair(t, 16)
	wrote := make(chan int, 1)
	go func() {
		n, _ := client.Write(make([]byte, 100))
		wrote <- n
	}()
	buf := make([]byte, 100)
	n, err := io.ReadFull(server, buf)
	require.NoError(t, err)
	assert.Equal(t, 100, n)
	assert.Equal(t, 100, <-wrote)
}

func TestListenerLifecycle(t *testing.T) {
	ln := framedtest.NewListener(0)
	assert.Equal(t, "memory", ln.Addr().Network())

	// Dial does not wait for Accept; Close closes what was not accepted.
	waiting, err := ln.Dial()
	require.NoError(t, err)
	defer waiting.Close()

	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		_, err = ln.Accept()
		accepted <- err
	}()
	// The first Accept takes the waiting connection: its peer sees EOF.
	_, err = waiting.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)

	require.NoError(t, ln.Close())
	assert.ErrorIs(t, <-accepted, net.ErrClosed, "Close unblocks Accept")
	_, err = ln.Dial()
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "dial after Close")
	require.NoError(t, ln.Close(), "a second Close")

	ln2 := framedtest.NewListener(0)
	queued, err := ln2.Dial()
	require.NoError(t, err)
	defer queued.Close()
	require.NoError(t, ln2.Close())
	_, err = queued.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "a connection never accepted is closed by Close")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = framedtest.NewListener(0).DialContext(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestListenerServesFramedServer runs framed.Server and framed.Client on a
// Listener, with concurrent requests on many connections.
func TestListenerServesFramedServer(t *testing.T) {
	ln := framedtest.NewListener(1024)
	srv := &framed.Server{}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		require.NoError(t, srv.Close())
		assert.ErrorIs(t, <-served, framed.ErrServerClosed)
	}()

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ln.Dial()
			if !assert.NoError(t, err) {
				return
			}
			client := framed.NewClient(framed.NewConn(c, framed.ConnConfig{}))
			defer client.Close()
			for j := range 50 {
				msg := bytes.Repeat([]byte{byte(i)}, j*100)
				got, err := client.Request(context.Background(), msg)
				if !assert.NoError(t, err) || !assert.Equal(t, msg, got, "conn %d request %d", i, j) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestListenerErrorsAreNetErrors(t *testing.T) {
	client, _ := memPair(t, 0)
	require.NoError(t, client.Close())
	_, err := client.Read(nil)
	var op *net.OpError
	require.True(t, errors.As(err, &op), "%T", err)
	assert.Equal(t, "memory", op.Net)
}
