package framed_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
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

// TestConnLoneWriterBatches: frames that one goroutine writes back to back
// while a write is in flight go out together in the next write, as a
// bufio loop's would, instead of one write each.
func TestConnLoneWriterBatches(t *testing.T) {
	const frames = 1000
	forEachTransport(t, func(t *testing.T, tr transport) {
		g, a, got, errc := gatedPair(t, tr, framed.ConnConfig{})

		require.NoError(t, a.WriteFrame(frameOf(0, 64)))
		wait(t, g.entered, "the first write")
		for seq := 1; seq < frames; seq++ {
			require.NoError(t, a.WriteFrame(frameOf(seq, 64)), "frame %d", seq)
		}
		g.release()
		require.NoError(t, a.Flush())
		assert.EqualValues(t, 2, g.writes.Load(), "writes for %d frames from one goroutine", frames)
		for seq := range frames {
			select {
			case p := <-got:
				require.Equal(t, frameOf(seq, 64), p, "frame %d", seq)
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(testTimeout):
				t.Fatalf("timed out reading frame %d", seq)
			}
		}
	})
}

// TestConnLoneFrameGoesOutAtOnce: a frame written on an idle Conn reaches
// the peer with no Flush and no further writes.
func TestConnLoneFrameGoesOutAtOnce(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		a, b := connPair(t, tr, framed.ConnConfig{})
		for i := range 3 {
			msg := []byte{byte(i)}
			require.NoError(t, a.WriteFrame(msg))
			require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
			p, err := b.ReadFrame()
			require.NoError(t, err, "frame %d", i)
			assert.Equal(t, msg, p)
		}
	})
}

// TestConnLargeWriterNotStarved: a 1 MiB frame gets out while 8 goroutines
// write 64-byte frames without pause, and its place in the stream is
// where it was queued.
func TestConnLargeWriterNotStarved(t *testing.T) {
	const (
		writers = 8
		large   = 1 << 20
		rounds  = 5
	)
	a, b := connPair(t, transports[1], framed.ConnConfig{})
	frames, errc := readConnFrames(t, b)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id := range writers {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := a.WriteFrame(stressFrame(nil, id, seq, make([]byte, 52))); err != nil {
					return
				}
			}
		})
	}
	// Drain the small frames and check each large one, concurrently.
	bigs := make(chan []byte, rounds)
	var drained sync.WaitGroup
	drained.Go(func() {
		for {
			select {
			case p := <-frames:
				if len(p) == large {
					bigs <- p
				}
			case <-errc:
				return
			case <-stop:
				return
			}
		}
	})
	for r := range rounds {
		big := bytes.Repeat([]byte{byte(r + 1)}, large)
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- a.WriteFrame(big) }()
		select {
		case err := <-done:
			require.NoError(t, err, "large frame %d", r)
		case <-time.After(5 * time.Second):
			t.Fatalf("large frame %d not written within 5s of steady small traffic", r)
		}
		t.Logf("large frame %d written in %v", r, time.Since(start))
		p := wait(t, bigs, "the large frame at the peer")
		require.Equal(t, big, p, "large frame %d", r)
	}
	close(stop)
	a.Close() // writers blocked on a full queue return
	wg.Wait()
	drained.Wait()
}

// TestConnWriteAfterFailure: once a network write fails, the Conn is
// closed and later writes and Flush return the write's error.
func TestConnWriteAfterFailure(t *testing.T) {
	a, b := connPair(t, transports[1], framed.ConnConfig{WriteTimeout: 50 * time.Millisecond, MaxPendingBytes: 1 << 10})
	_ = b // never reads
	msg := make([]byte, 1000)
	var err error
	for range 100000 {
		if err = a.WriteFrame(msg); err != nil {
			break
		}
	}
	require.Error(t, err, "writes to a peer that never reads")
	assert.ErrorIs(t, err, framed.ErrPeerStalled)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var se *framed.StalledError
	require.ErrorAs(t, err, &se)
	assert.Positive(t, se.Pending, "bytes not taken")
	assert.Contains(t, err.Error(), "peer is not reading")
	assert.ErrorIs(t, a.WriteFrame(msg), framed.ErrPeerStalled, "later write")
	assert.ErrorIs(t, a.Flush(), framed.ErrPeerStalled, "Flush")
}

// startEcho starts a framed echo Server and returns its address.
func startEcho(t *testing.T) string {
	t.Helper()
	return serve(t, &framed.Server{}).addr
}

// TestClientSendAllThenReceiveFails reproduces the deadlock of sending
// everything before receiving anything from an echo peer: Send must fail
// within its ctx with an error that names the stall, not hang.
func TestClientSendAllThenReceiveFails(t *testing.T) {
	addr := startEcho(t)
	c := dialTestClient(t, nil, addr)
	msg := make([]byte, 1<<10)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	var err error
	sent := 0
	// 10,000 stall where the kernel's loopback buffers are small; here
	// they can take several MiB each way, so go on until the stall.
	for ; sent < 100000; sent++ {
		if err = c.Send(ctx, msg); err != nil {
			break
		}
	}
	took := time.Since(start)
	t.Logf("sent %d in %v: %v", sent, took, err)
	require.Error(t, err, "1 KiB frames sent to an echo peer whose replies nobody reads")
	assert.ErrorIs(t, err, framed.ErrPeerStalled)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var se *framed.StalledError
	require.ErrorAs(t, err, &se)
	assert.Positive(t, se.Pending)
	assert.Less(t, took, 10*time.Second, "bounded by the ctx")

	// The Client stays usable: reading the replies lets sending go on.
	got, err := c.Receive(t.Context())
	require.NoError(t, err)
	assert.Equal(t, msg, got)
}

// TestClientSendWithReaderCompletes: the safe pattern, a reader goroutine
// while one goroutine sends, moves 10,000 × 1 KiB both ways.
func TestClientSendWithReaderCompletes(t *testing.T) {
	const n = 10000
	addr := startEcho(t)
	c := dialTestClient(t, nil, addr)
	received := make(chan error, 1)
	go func() {
		for i := range n {
			p, err := c.Receive(t.Context())
			if err != nil {
				received <- err
				return
			}
			if len(p) != 1<<10 || binary.LittleEndian.Uint32(p) != uint32(i) {
				received <- errors.New("reply out of order")
				return
			}
		}
		received <- nil
	}()
	msg := make([]byte, 1<<10)
	for i := range n {
		binary.LittleEndian.PutUint32(msg, uint32(i))
		require.NoError(t, c.Send(t.Context(), msg), "Send %d", i)
	}
	require.NoError(t, wait(t, received, "every reply"))
}

// TestClientReceiveContext: a Receive whose ctx ends returns ctx's error;
// the frame partly received is kept and the next Receive returns it whole.
func TestClientReceiveContext(t *testing.T) {
	half := make(chan struct{})
	rest := make(chan struct{})
	addr := startTestPeer(t, func(nc net.Conn) {
		defer nc.Close()
		frame := encoded(t, []byte("hello, world"))
		nc.Write(frame[:6])
		close(half)
		<-rest
		nc.Write(frame[6:])
		io.Copy(io.Discard, nc)
	})
	c := dialTestClient(t, nil, addr)
	<-half

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Receive(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "deadline")

	ctx2, cancel2 := context.WithCancel(t.Context())
	timer := time.AfterFunc(20*time.Millisecond, cancel2)
	defer timer.Stop()
	_, err = c.Receive(ctx2)
	assert.ErrorIs(t, err, context.Canceled, "cancel")

	close(rest)
	got, err := c.Receive(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "hello, world", string(got))
}

// skipFirst returns an echo handler that answers nothing to the first n
// frames of each connection and echoes the rest.
func skipFirst(n int) framed.Handler {
	var seen atomic.Int64
	return framed.HandlerFunc(func(_ context.Context, c *framed.Conn, p []byte) error {
		if seen.Add(1) <= int64(n) {
			return nil
		}
		return c.WriteFrame(p)
	})
}

// TestClientOutOfStep: a server skips two requests and answers the rest.
// The Client must end in ErrOutOfStep within LateReplyTimeout, and every
// later Request must return it at once, instead of timing out forever.
func TestClientOutOfStep(t *testing.T) {
	const late = 300 * time.Millisecond
	addr := serve(t, &framed.Server{Handler: skipFirst(2)}).addr
	c := dialTestClient(t, &framed.Dialer{LateReplyTimeout: late}, addr)

	start := time.Now()
	var err error
	var timeouts int
	for i := range 50 {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, err = c.Request(ctx, []byte{byte(i)})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			break
		}
		timeouts++
	}
	took := time.Since(start)
	t.Logf("%d Requests timed out, then after %v: %v", timeouts, took, err)
	require.ErrorIs(t, err, framed.ErrOutOfStep)
	assert.Less(t, took, late+time.Second, "within the bound")
	assert.Contains(t, err.Error(), "replies owed")

	start = time.Now()
	_, err = c.Request(t.Context(), []byte("later"))
	assert.ErrorIs(t, err, framed.ErrOutOfStep, "a later Request")
	assert.Less(t, time.Since(start), time.Second, "a later Request returns at once")
}

// TestClientCloseOnGiveUp: with a negative LateReplyTimeout a Request that
// gives up on its reply fails the Client at once, as net/http does.
func TestClientCloseOnGiveUp(t *testing.T) {
	addr := serve(t, &framed.Server{Handler: skipFirst(1)}).addr
	c := dialTestClient(t, &framed.Dialer{LateReplyTimeout: -1}, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Request(ctx, []byte("a"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = c.Request(t.Context(), []byte("b"))
	assert.ErrorIs(t, err, framed.ErrOutOfStep)
}

// TestClientLateReplyPaysDebt: a reply that comes after its Request gave
// up is dropped, and the next Request gets its own reply.
func TestClientLateReplyPaysDebt(t *testing.T) {
	release := make(chan struct{})
	var first atomic.Bool
	addr := serve(t, &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if first.CompareAndSwap(false, true) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return c.WriteFrame(p)
	})}).addr
	c := dialTestClient(t, &framed.Dialer{LateReplyTimeout: 5 * time.Second}, addr)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err := c.Request(ctx, []byte("first"))
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)
	for _, msg := range []string{"second", "third"} {
		got, err := c.Request(t.Context(), []byte(msg))
		require.NoError(t, err)
		assert.Equal(t, msg, string(got))
	}
}

// TestWriteAllocs: writing frames with Conn.WriteFrame and Client.Send
// allocates nothing, whoever writes them to the network.
func TestWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	na, nb := tcpPair(t)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, nb)
	}()
	t.Cleanup(func() {
		na.Close()
		<-drained
	})
	c := framed.NewConn(na, framed.ConnConfig{})
	msg := make([]byte, 64)
	for range 1000 { // warm up: the queue's buffers reach their size
		require.NoError(t, c.WriteFrame(msg))
	}
	require.NoError(t, c.Flush())
	allocs := testing.AllocsPerRun(1000, func() {
		if err := c.WriteFrame(msg); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per Conn.WriteFrame")

	cl := framed.NewClient(c)
	ctx := context.Background()
	allocs = testing.AllocsPerRun(1000, func() {
		if err := cl.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per Client.Send")
	require.NoError(t, c.Flush())
}

// TestConnStreamTailGoesOut: frames written back to back with no Flush,
// no read and no Close (the first lone, the rest a stream that is never
// 64 KiB) all reach the peer: the writer goroutine sends the stream once
// it pauses.
func TestConnStreamTailGoesOut(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		a, b := connPair(t, tr, framed.ConnConfig{})
		require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
		const frames = 10
		written := make(chan error, 1)
		go func() {
			for i := range frames {
				if err := a.WriteFrame(frameOf(i, 16)); err != nil {
					written <- err
					return
				}
			}
			written <- nil
		}()
		for i := range frames {
			p, err := b.ReadFrame()
			require.NoError(t, err, "frame %d of %d", i, frames)
			assert.Equal(t, frameOf(i, 16), p, "frame %d", i)
		}
		require.NoError(t, wait(t, written, "the writer"))
	})
}
