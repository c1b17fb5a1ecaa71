package framed

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpConns returns both ends of a loopback TCP connection; cleanup
// closes them.
func tcpConns(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	b = <-accepted
	require.NotNil(t, b)
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// echo echoes c's frames until it fails; cleanup closes c and waits.
func echo(t *testing.T, c *Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := c.ReadFrame()
			if err != nil || c.WriteFrame(p) != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
}

// TestWriteTimeoutLeavesNoDeadline: WriteTimeout bounds each blocking
// write and is then taken off the socket, so that a frame written inline
// after an idle gap longer than WriteTimeout goes out, on a Conn and
// through a Client.
func TestWriteTimeoutLeavesNoDeadline(t *testing.T) {
	const timeout = 30 * time.Millisecond
	t.Run("Conn", func(t *testing.T) {
		a, b := tcpConns(t)
		c := NewConn(a, ConnConfig{WriteTimeout: timeout})
		defer c.Close()
		echo(t, NewConn(b, ConnConfig{}))
		for range 3 { // the second and third go to the writer goroutine
			require.NoError(t, c.WriteFrame([]byte("x")))
		}
		require.NoError(t, c.Flush())
		for range 3 {
			_, err := c.ReadFrame()
			require.NoError(t, err)
		}
		time.Sleep(3 * timeout) // idle for longer than WriteTimeout
		require.NoError(t, c.WriteFrame([]byte("after idle")), "a lone frame, written inline")
		require.NoError(t, c.Flush())
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		p, err := c.ReadFrame()
		require.NoError(t, err)
		assert.Equal(t, "after idle", string(p))
	})
	t.Run("Client", func(t *testing.T) {
		a, b := tcpConns(t)
		cl := NewClient(NewConn(a, ConnConfig{WriteTimeout: timeout}))
		defer cl.Close()
		echo(t, NewConn(b, ConnConfig{}))
		errs := make(chan error, 8)
		for range 8 { // pipelined: the writer goroutine writes them
			go func() {
				_, err := cl.Request(context.Background(), []byte("hi"))
				errs <- err
			}()
		}
		for range 8 {
			require.NoError(t, <-errs)
		}
		time.Sleep(3 * timeout)
		reply, err := cl.Request(context.Background(), []byte("after idle"))
		require.NoError(t, err, "a lone Request, written inline")
		assert.Equal(t, "after idle", string(reply))
	})
}

// TestPartialInlineWriteKeepsOrder: when the socket takes only part of an
// inline write, the rest goes back in front of the queue, and a large
// frame queued meanwhile keeps its place after it.
func TestPartialInlineWriteKeepsOrder(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(a, ConnConfig{})
	defer c.Close()
	inTry, goOn := make(chan struct{}), make(chan struct{})
	c.q.try = func(p []byte) (int, error) { // takes half
		close(inTry)
		<-goOn
		return a.Write(p[:len(p)/2])
	}
	got := make(chan []byte, 2)
	go func() {
		br := bufio.NewReader(b)
		for {
			p, err := Decode(br)
			if err != nil {
				close(got)
				return
			}
			got <- p
		}
	}()
	small := bytes.Repeat([]byte("s"), 100)
	large := bytes.Repeat([]byte("L"), directWriteSize)
	errc := make(chan error, 2)
	go func() { errc <- c.WriteFrame(small) }() // lone: written inline
	<-inTry
	go func() { errc <- c.WriteFrame(large) }()
	deadline := time.Now().Add(10 * time.Second)
	for { // until the large frame is queued behind the write in flight
		c.q.mu.Lock()
		n := len(c.q.large)
		c.q.mu.Unlock()
		if n == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the large frame was never queued")
		time.Sleep(time.Millisecond)
	}
	close(goOn)
	for _, want := range [][]byte{small, large} {
		select {
		case p := <-got:
			require.Equal(t, want, p, "frames in the order written")
		case <-time.After(5 * time.Second):
			t.Fatalf("the %d-byte frame did not arrive whole", len(want))
		}
	}
	require.NoError(t, <-errc)
	require.NoError(t, <-errc)
}

// TestFlushAfterCloseWrite: once CloseWrite has sent every frame and the
// FIN, Flush has nothing to wait for and succeeds.
func TestFlushAfterCloseWrite(t *testing.T) {
	a, b := tcpConns(t)
	c := NewConn(a, ConnConfig{})
	defer c.Close()
	go bufio.NewReader(b).WriteTo(new(bytes.Buffer))
	require.NoError(t, c.WriteFrame([]byte("last")))
	require.NoError(t, c.CloseWrite())
	assert.NoError(t, c.Flush())
	assert.ErrorIs(t, c.WriteFrame([]byte("more")), net.ErrClosed, "a write after CloseWrite")
}

// TestClientReaderStaleDeadline: a read deadline left on the Conn before
// NewClient does not make the reply reader fail or spin: with nothing
// owed, it reads with no deadline.
func TestClientReaderStaleDeadline(t *testing.T) {
	a, b := tcpConns(t)
	c := NewConn(a, ConnConfig{})
	require.NoError(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	cl := NewClient(c)
	defer cl.Close()
	echo(t, NewConn(b, ConnConfig{}))
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		reply, err := cl.Request(ctx, []byte{byte(i)})
		cancel()
		require.NoError(t, err, "Request %d", i)
		assert.Equal(t, []byte{byte(i)}, reply)
	}
}

// TestCloseTwiceDuringLastWrite: a second Close while the first is in
// its last inline write returns an error matching net.ErrClosed.
func TestCloseTwiceDuringLastWrite(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(a, ConnConfig{})
	inTry, goOn := make(chan struct{}), make(chan struct{})
	c.q.try = func(p []byte) (int, error) {
		close(inTry)
		<-goOn
		return 0, nil
	}
	c.q.mu.Lock()
	c.q.buf = append(c.q.buf, 1, 0, 0, 0, 'x')
	c.q.pending = len(c.q.buf)
	c.q.queued = int64(c.q.pending)
	c.q.mu.Unlock()
	first := make(chan error, 1)
	go func() { first <- c.Close() }()
	<-inTry
	assert.ErrorIs(t, c.Close(), net.ErrClosed, "second Close")
	close(goOn)
	assert.NoError(t, <-first, "first Close")
}

// TestAnswersWaitForTheLastFrameRead: while ReadFrame returns frames that
// arrived together, a frame written is not lone (it waits, as a server's
// replies do); once the last of them is read, one is.
func TestAnswersWaitForTheLastFrameRead(t *testing.T) {
	a, b := tcpConns(t)
	c := NewConn(a, ConnConfig{})
	t.Cleanup(func() { c.Close() })
	var batch []byte
	for _, msg := range []string{"one", "two", "three"} {
		var err error
		batch, err = AppendFrame(batch, []byte(msg))
		require.NoError(t, err)
	}
	_, err := b.Write(batch) // one write: the three arrive together
	require.NoError(t, err)
	lone := func() bool {
		c.q.mu.Lock()
		defer c.q.mu.Unlock()
		return c.q.loneLocked()
	}
	for _, want := range []string{"one", "two"} {
		p, err := c.ReadFrame()
		require.NoError(t, err)
		require.Equal(t, want, string(p))
		assert.False(t, lone(), "after %q, with more buffered: a frame written now is not lone", want)
	}
	p, err := c.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, "three", string(p))
	assert.True(t, lone(), "after the last frame buffered: a frame written now is lone")
}
