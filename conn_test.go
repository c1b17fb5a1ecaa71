package framed_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// steppedConn holds every Write until the test lets it go: each Write
// first sends on entered, then waits for a token on step. Cleanup lets all
// Writes through.
type steppedConn struct {
	net.Conn
	entered chan struct{}
	step    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newSteppedConn(tb testing.TB, c net.Conn) *steppedConn {
	tb.Helper()
	s := &steppedConn{Conn: c, entered: make(chan struct{}), step: make(chan struct{}), done: make(chan struct{})}
	tb.Cleanup(func() { s.once.Do(func() { close(s.done) }) })
	return s
}

// Close lets every Write through, as closing a net.Conn unblocks its
// Writes.
func (s *steppedConn) Close() error {
	err := s.Conn.Close() // first, so the held Writes then fail
	s.once.Do(func() { close(s.done) })
	return err
}

func (s *steppedConn) Write(p []byte) (int, error) {
	select {
	case s.entered <- struct{}{}:
	case <-s.done:
	}
	select {
	case <-s.step:
	case <-s.done:
	}
	return s.Conn.Write(p)
}

// readSignalConn closes reading when its first Read begins.
type readSignalConn struct {
	net.Conn
	reading chan struct{}
	once    sync.Once
}

func (c *readSignalConn) Read(p []byte) (int, error) {
	c.once.Do(func() { close(c.reading) })
	return c.Conn.Read(p)
}

// waitForWriteWaiters returns once n goroutines wait in c for the write
// queue to drain. Nothing signals that, so it polls, bounded in time.
func waitForWriteWaiters(tb testing.TB, c *framed.Conn, n int) {
	tb.Helper()
	deadline := time.Now().Add(testTimeout)
	for framed.WriteWaiters(c) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %d blocked writers; %d are", n, framed.WriteWaiters(c))
		}
		runtime.Gosched()
	}
}

// TestConnRoundTrip sends one frame of each size that matters to the
// reader's buffer and the writer's paths, up to the default limit.
func TestConnRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give int // payload size
	}{
		{"empty", 0},
		{"one byte", 1},
		{"small", 100},
		{"read buffer size", framed.DefaultReadBufferSize},
		{"past read buffer", framed.DefaultReadBufferSize + 1},
		{"below direct write", 64<<10 - 1},
		{"direct write", 64 << 10},
		{"large", 1 << 20},
		{"default limit", framed.DefaultMaxFrameSize},
	}
	forEachTransport(t, func(t *testing.T, tr transport) {
		a, b := connPair(t, tr, framed.ConnConfig{})
		frames, errc := readConnFrames(t, b)
		for i, tt := range tests {
			want := frameOf(i, tt.give)
			require.NoError(t, a.WriteFrame(want), "write %s", tt.name)
			select {
			case got := <-frames:
				assert.True(t, bytes.Equal(want, got), "frame %s: %d bytes differ from the %d sent", tt.name, len(got), len(want))
			case err := <-errc:
				t.Fatalf("read %s: %v", tt.name, err)
			case <-time.After(testTimeout):
				t.Fatalf("read %s: timed out", tt.name)
			}
		}
	})
}

// stressFrame builds a frame for the concurrent-writers test: writer id,
// sequence number and a CRC-32 of the rest, then body.
func stressFrame(dst []byte, id, seq int, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst[:0], uint16(id))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(seq))
	sum := crc32.Update(crc32.ChecksumIEEE(dst), crc32.IEEETable, body)
	dst = binary.LittleEndian.AppendUint32(dst, sum)
	return append(dst, body...)
}

// checkStressFrame returns the writer id and sequence number of p, or an
// error if p is not intact.
func checkStressFrame(p []byte) (id, seq int, err error) {
	if len(p) < 10 {
		return 0, 0, errors.New("frame shorter than its 10-byte header")
	}
	sum := crc32.Update(crc32.ChecksumIEEE(p[:6]), crc32.IEEETable, p[10:])
	if sum != binary.LittleEndian.Uint32(p[6:10]) {
		return 0, 0, errors.New("checksum mismatch")
	}
	return int(binary.LittleEndian.Uint16(p)), int(binary.LittleEndian.Uint32(p[2:])), nil
}

// TestConnConcurrentWriters has many goroutines write frames of random
// sizes at once, a few of them large enough to take the direct-write path,
// and checks on the other side that every frame arrived whole, each
// writer's frames in order, and not one more or less.
func TestConnConcurrentWriters(t *testing.T) {
	const (
		writers   = 64
		perWriter = 1000
		total     = writers * perWriter
	)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)

	// Bodies are slices of one random pool, so making them costs nothing.
	pool := make([]byte, 256<<10)
	poolRand := rand.New(rand.NewPCG(seed, 0))
	for i := range pool {
		pool[i] = byte(poolRand.Uint32())
	}
	// Sizes up to 4 KiB spread evenly over orders of magnitude (below 2^k
	// for k up to 12, so the mean is about 300 bytes and the test stays
	// quick under -race), and one frame in 1000 of 64 to 128 KiB to take
	// the direct-write path.
	bodySize := func(r *rand.Rand) int {
		if r.IntN(1000) == 0 {
			return 64<<10 + r.IntN(64<<10)
		}
		return r.IntN(1 << r.IntN(13))
	}

	forEachTransport(t, func(t *testing.T, tr transport) {
		// A small queue: writers also block on a full one, and then wake.
		a, b := connPair(t, tr, framed.ConnConfig{MaxPendingBytes: 32 << 10})
		require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))

		errs := make([]error, writers)
		var wg sync.WaitGroup
		t.Cleanup(func() {
			a.Close() // unblocks the writers if the reader gave up
			wg.Wait()
		})
		for id := range writers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(seed, uint64(id)+1))
				var buf []byte
				for seq := range perWriter {
					n := bodySize(r)
					off := r.IntN(len(pool) - n + 1)
					buf = stressFrame(buf, id, seq, pool[off:off+n])
					if err := a.WriteFrame(buf); err != nil {
						errs[id] = err
						return
					}
				}
			})
		}

		var next [writers]int
		for i := range total {
			// Plain ifs: testify's reflection, 64,000 times, is slow.
			p, err := b.ReadFrame()
			if err != nil {
				t.Fatalf("frame %d of %d: %v", i, total, err)
			}
			id, seq, err := checkStressFrame(p)
			if err != nil {
				t.Fatalf("frame %d of %d (%d bytes): %v", i, total, len(p), err)
			}
			if id >= writers || seq != next[id] {
				t.Fatalf("frame %d: writer %d's frame %d, want its frame %d", i, id, seq, next[min(id, writers-1)])
			}
			next[id]++
		}
		wg.Wait()
		for id, err := range errs {
			assert.NoError(t, err, "writer %d", id)
		}
		require.NoError(t, a.Flush())
		require.NoError(t, a.Close())
		_, err := b.ReadFrame()
		assert.Equal(t, io.EOF, err, "read after the writer closed")
	})
}

// TestConnCloseDuringWrites closes a Conn while many goroutines write to
// it, some of them blocked on a full queue, and while its own ReadFrame is
// blocked: nothing panics, every call returns nil or net.ErrClosed, and the
// peer's ReadFrame ends too.
func TestConnCloseDuringWrites(t *testing.T) {
	const (
		writers   = 16
		perWriter = 5000
	)
	forEachTransport(t, func(t *testing.T, tr transport) {
		na, nb := tr.pair(t)
		rs := &readSignalConn{Conn: na, reading: make(chan struct{})}
		a := framed.NewConn(rs, framed.ConnConfig{MaxPendingBytes: 4 << 10})
		b := framed.NewConn(nb, framed.ConnConfig{})
		t.Cleanup(func() {
			a.Close()
			b.Close()
		})

		// The peer reads until the connection ends, and says when it is
		// well into the stream.
		flowing := make(chan struct{})
		peerErr := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				if i == 100 {
					close(flowing)
				}
				if _, err := b.ReadFrame(); err != nil {
					peerErr <- err
					return
				}
			}
		}()

		// a's own reader blocks: b never writes.
		localErr := make(chan error, 1)
		go func() {
			_, err := a.ReadFrame()
			localErr <- err
		}()

		errs := make([]error, writers)
		var wg sync.WaitGroup
		for id := range writers {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(id), 0))
				big := make([]byte, 80<<10)
				small := make([]byte, 2<<10)
				for range perWriter {
					p := small[:r.IntN(len(small))]
					if r.IntN(50) == 0 {
						p = big
					}
					if err := a.WriteFrame(p); err != nil {
						errs[id] = err
						return
					}
				}
			})
		}

		wait(t, flowing, "frames to flow")
		wait(t, rs.reading, "the local ReadFrame to block")
		waitForWriteWaiters(t, a, 1) // a writer waits for room
		closeErr := a.Close()
		wg.Wait()

		assert.NoError(t, closeErr, "first Close")
		for id, err := range errs {
			if err != nil {
				assert.ErrorIs(t, err, net.ErrClosed, "writer %d", id)
			}
		}
		assert.ErrorIs(t, wait(t, localErr, "the local ReadFrame"), net.ErrClosed, "local ReadFrame")
		assert.Error(t, wait(t, peerErr, "the peer's ReadFrame"), "peer ReadFrame")

		_, err := a.ReadFrame()
		assert.ErrorIs(t, err, net.ErrClosed, "ReadFrame after Close")
		assert.ErrorIs(t, a.WriteFrame([]byte("late")), net.ErrClosed, "WriteFrame after Close")
		assert.ErrorIs(t, a.Flush(), net.ErrClosed, "Flush after Close")
		assert.ErrorIs(t, a.Close(), net.ErrClosed, "second Close")
	})
}

// TestConnCloseUnblocksReader closes a Conn while its ReadFrame waits, over
// both transports: net.Pipe says io.ErrClosedPipe underneath, TCP
// net.ErrClosed, and the Conn must say net.ErrClosed for both.
func TestConnCloseUnblocksReader(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		na, _ := tr.pair(t)
		rs := &readSignalConn{Conn: na, reading: make(chan struct{})}
		a := framed.NewConn(rs, framed.ConnConfig{})
		errc := make(chan error, 1)
		go func() {
			_, err := a.ReadFrame()
			errc <- err
		}()
		wait(t, rs.reading, "ReadFrame to block")
		require.NoError(t, a.Close())
		err := wait(t, errc, "ReadFrame")
		assert.ErrorIs(t, err, net.ErrClosed)
		assert.NotErrorIs(t, err, io.EOF)
	})
}

// TestConnCloseUnblocksQueuedWriter closes a Conn while one writer is in
// the middle of a network write and another waits for room in the queue.
func TestConnCloseUnblocksQueuedWriter(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		na, _ := tr.pair(t)
		g := newGatedConn(t, na)
		a := framed.NewConn(g, framed.ConnConfig{MaxPendingBytes: 100})
		first := make(chan error, 1)
		go func() { first <- a.WriteFrame(make([]byte, 10)) }()
		wait(t, g.entered, "the first write")
		require.NoError(t, a.WriteFrame(make([]byte, 90)), "fills the queue")
		blocked := make(chan error, 1)
		go func() { blocked <- a.WriteFrame(make([]byte, 10)) }()
		flushed := make(chan error, 1)
		go func() { flushed <- a.Flush() }()
		waitForWriteWaiters(t, a, 2)

		// The first frame was queued, and is the write the gate holds.
		require.NoError(t, wait(t, first, "the first writer"))

		require.NoError(t, a.Close())
		assert.ErrorIs(t, wait(t, blocked, "the blocked writer"), net.ErrClosed, "blocked writer")
		assert.ErrorIs(t, wait(t, flushed, "Flush"), net.ErrClosed, "Flush")
		// Close returned after the write in the gate: it failed on the
		// closed connection, and nothing reached the wire.
		assert.Zero(t, g.bytes.Load(), "bytes written")
		assert.ErrorIs(t, a.WriteFrame([]byte("late")), net.ErrClosed, "write after Close")
	})
}

// TestConnSlowReaderDeadline has writers fill the queue of a Conn whose
// peer never reads, until all but the one stuck in a network write are
// blocked; then the write deadline passes and ends every writer with a
// timeout. The frames accepted but never delivered must fit in the bound:
// the queue plus the write in flight, each at most MaxPendingBytes. Over
// net.Pipe, which buffers nothing, that is all that is accepted; TCP's
// kernel buffers take an unknown amount first.
func TestConnSlowReaderDeadline(t *testing.T) {
	const writers = 8
	tests := []struct {
		tr         transport
		maxPending int
		payload    int
		perWriter  int // enough to fill the kernel's buffers
	}{
		{transports[0], 1024, 100, 50},
		{transports[1], 16 << 10, 1000, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.tr.name, func(t *testing.T) {
			fit := tt.maxPending / (tt.payload + 4) // frames the queue holds
			na, nb := tt.tr.pair(t)
			a := framed.NewConn(na, framed.ConnConfig{MaxPendingBytes: tt.maxPending})
			b := framed.NewConn(nb, framed.ConnConfig{})
			t.Cleanup(func() {
				a.Close()
				b.Close()
			})
			require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))

			var accepted atomic.Int64
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for id := range writers {
				wg.Go(func() {
					for range tt.perWriter {
						if err := a.WriteFrame(make([]byte, tt.payload)); err != nil {
							errs[id] = err
							return
						}
						accepted.Add(1)
					}
				})
			}
			// One writer is stuck in the network write and the queue is
			// full; every other writer is blocked. Now the deadline passes.
			waitForWriteWaiters(t, a, writers-1)
			waitFor(t, testTimeout, "a network write the peer does not take", func() bool {
				return framed.NetworkWriteBlocked(a) && framed.WriteWaiters(a) >= writers-1
			})
			require.NoError(t, a.SetWriteDeadline(time.Now()))
			wg.Wait()

			for id, err := range errs {
				require.Error(t, err, "writer %d returned after %d frames with no reader", id, tt.perWriter)
				assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "writer %d", id)
				var ne net.Error
				if assert.ErrorAs(t, err, &ne, "writer %d", id) {
					assert.True(t, ne.Timeout(), "writer %d: Timeout()", id)
				}
			}
			assert.Error(t, a.WriteFrame([]byte("late")), "write after the write timed out")

			// The timed-out network write closed the Conn: the peer reads
			// what got through and then sees the end.
			delivered := 0
			var err error
			for ; delivered <= tt.perWriter*writers; delivered++ {
				if _, err = b.ReadFrame(); err != nil {
					break
				}
			}
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "peer timed out instead of seeing the end: %v", err)
			if tt.tr.name == "tcp" {
				// The write that timed out stopped inside a frame, so the
				// connection was reset: the peer reads whole frames and
				// then the reset (which drops what its kernel held), or,
				// if the write happened to end between frames, EOF.
				require.True(t, errors.Is(err, syscall.ECONNRESET) || err == io.EOF,
					"peer's end after %d frames: %v (a clean end inside a frame?)", delivered, err)
				if errors.Is(err, syscall.ECONNRESET) {
					t.Logf("%d frames accepted, %d delivered before the reset", accepted.Load(), delivered)
					return
				}
			}
			if tt.tr.name == "pipe" {
				// The queue is full, and the write the pipe holds is one
				// batch taken from it: between one and two queues' worth.
				assert.GreaterOrEqual(t, int(accepted.Load()), fit, "frames accepted with %d bytes of queue", tt.maxPending)
				assert.LessOrEqual(t, int(accepted.Load()), 2*fit, "frames accepted with %d bytes of queue", tt.maxPending)
				assert.Zero(t, delivered, "frames delivered")
				assert.Equal(t, io.EOF, err, "peer")
			}
			t.Logf("%d frames accepted, %d delivered, %d fit in the queue", accepted.Load(), delivered, fit)
			assert.LessOrEqual(t, int(accepted.Load())-delivered, 2*fit, "frames accepted but never delivered")
		})
	}
}

// TestConnQueueWaitTimeout times out a writer waiting for room while the
// network write ahead of it is merely slow: it has queued nothing, and the
// Conn goes on once the write completes.
func TestConnQueueWaitTimeout(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		g, a, frames, errc := gatedPair(t, tr, framed.ConnConfig{MaxPendingBytes: 100})

		first := make(chan error, 1)
		go func() { first <- a.WriteFrame([]byte("first")) }()
		wait(t, g.entered, "the first write")
		require.NoError(t, a.WriteFrame(bytes.Repeat([]byte("q"), 90)), "fills the queue")

		require.NoError(t, a.SetWriteDeadline(time.Now().Add(20*time.Millisecond)))
		err := a.WriteFrame([]byte("dropped"))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "writer waiting for room")
		assert.ErrorIs(t, a.Flush(), os.ErrDeadlineExceeded, "Flush")

		require.NoError(t, a.SetWriteDeadline(time.Time{}))
		g.release()
		require.NoError(t, wait(t, first, "the writer in the gate"))
		require.NoError(t, a.WriteFrame([]byte("after")))
		require.NoError(t, a.Flush())

		for _, want := range []string{"first", string(bytes.Repeat([]byte("q"), 90)), "after"} {
			select {
			case got := <-frames:
				assert.Equal(t, want, string(got))
			case err := <-errc:
				t.Fatalf("read %q: %v", want, err)
			case <-time.After(testTimeout):
				t.Fatalf("read %q: timed out", want)
			}
		}
	})
}

// TestConnWriteTimeout has a Conn write to a peer that never reads: the
// network write times out after WriteTimeout, the Conn closes itself, and
// the peer sees the connection end after the frames that did get through.
func TestConnWriteTimeout(t *testing.T) {
	const maxFrames = 1000 // 256 MiB: far more than loopback buffers hold
	forEachTransport(t, func(t *testing.T, tr transport) {
		a, b := connPair(t, tr, framed.ConnConfig{WriteTimeout: 50 * time.Millisecond})
		// Set while both ends are open: net.Pipe refuses deadlines after.
		require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
		type result struct {
			sent int
			err  error
		}
		done := make(chan result, 1)
		go func() { // if the timeout never comes, cleanup's Close ends this
			var r result
			for ; r.sent < maxFrames; r.sent++ {
				if r.err = a.WriteFrame(frameOf(r.sent, 256<<10)); r.err != nil {
					break
				}
			}
			done <- r
		}()
		r := wait(t, done, "the write to time out")
		sent, err := r.sent, r.err
		require.Error(t, err, "%d frames written to a peer that never reads", sent)
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
		var ne net.Error
		if assert.ErrorAs(t, err, &ne) {
			assert.True(t, ne.Timeout(), "Timeout()")
		}
		assert.ErrorIs(t, a.WriteFrame([]byte("late")), os.ErrDeadlineExceeded, "later WriteFrame")
		assert.ErrorIs(t, a.Close(), net.ErrClosed, "Close of a Conn that closed itself")

		for i := 0; ; i++ {
			require.LessOrEqual(t, i, sent, "frames read")
			p, err := b.ReadFrame()
			if err != nil {
				var ne net.Error
				assert.False(t, errors.As(err, &ne) && ne.Timeout(), "peer timed out instead of seeing the end: %v", err)
				break
			}
			require.True(t, bytes.Equal(frameOf(i, 256<<10), p), "frame %d: %d bytes differ from those sent", i, len(p))
		}
	})
}

// deadlineHookConn holds its first SetWriteDeadline call until release.
type deadlineHookConn struct {
	net.Conn
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func (h *deadlineHookConn) SetWriteDeadline(t time.Time) error {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.entered)
		<-h.gate
	}
	return h.Conn.SetWriteDeadline(t)
}

// TestConnWriteDeadlineDuringWriteTimeout sets a write deadline in the past
// to abort a write that WriteTimeout bounds, just as that write arms its
// own deadline: the earlier deadline must win, and the write must end now
// rather than when WriteTimeout runs out.
func TestConnWriteDeadlineDuringWriteTimeout(t *testing.T) {
	const size = 32 << 20 // more than loopback TCP buffers hold
	cfg := framed.ConnConfig{
		WriteTimeout: time.Hour,
		Format:       framed.Format{MaxFrameSize: size},
	}
	forEachTransport(t, func(t *testing.T, tr transport) {
		na, _ := tr.pair(t) // the peer never reads
		h := &deadlineHookConn{Conn: na, entered: make(chan struct{}), gate: make(chan struct{})}
		a := framed.NewConn(h, cfg)
		t.Cleanup(func() { a.Close() })
		written := make(chan error, 1)
		go func() { written <- a.WriteFrame(make([]byte, size)) }()
		wait(t, h.entered, "the write to arm its deadline")

		set := make(chan error, 1)
		go func() { set <- a.SetWriteDeadline(time.Now()) }()
		// Give SetWriteDeadline the chance to slip in before the write's
		// own deadline lands. Nothing can signal that it has, as a correct
		// Conn makes it wait.
		select {
		case err := <-set:
			set <- err
		case <-time.After(50 * time.Millisecond):
		}
		close(h.gate)
		require.NoError(t, wait(t, set, "SetWriteDeadline"))
		err := wait(t, written, "the aborted write")
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	})
}

// TestConnCloseWrite half-closes a TCP connection: the peer reads every
// frame and then exactly io.EOF, and can still reply.
func TestConnCloseWrite(t *testing.T) {
	const n = 100
	a, b := connPair(t, transports[1], framed.ConnConfig{})
	for i := range n {
		require.NoError(t, a.WriteFrame(frameOf(i, i*10)))
	}
	require.NoError(t, a.CloseWrite())
	assert.ErrorIs(t, a.WriteFrame([]byte("late")), net.ErrClosed, "WriteFrame after CloseWrite")
	assert.ErrorIs(t, a.CloseWrite(), net.ErrClosed, "second CloseWrite")

	require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
	for i := range n {
		p, err := b.ReadFrame()
		require.NoError(t, err, "frame %d", i)
		require.Equal(t, frameOf(i, i*10), p, "frame %d", i)
	}
	_, err := b.ReadFrame()
	require.Equal(t, io.EOF, err, "after the last frame")

	for i := range n {
		require.NoError(t, b.WriteFrame(frameOf(i, i)), "reply %d", i)
	}
	require.NoError(t, b.CloseWrite())
	require.NoError(t, a.SetReadDeadline(time.Now().Add(testTimeout)))
	for i := range n {
		p, err := a.ReadFrame()
		require.NoError(t, err, "reply %d", i)
		require.Equal(t, frameOf(i, i), p, "reply %d", i)
	}
	_, err = a.ReadFrame()
	require.Equal(t, io.EOF, err, "after the last reply")
}

// TestConnCloseWriteUnsupported: net.Pipe cannot half-close, and the Conn
// says so and stays usable.
func TestConnCloseWriteUnsupported(t *testing.T) {
	a, b := connPair(t, transports[0], framed.ConnConfig{})
	assert.ErrorIs(t, a.CloseWrite(), errors.ErrUnsupported)
	frames, errc := readConnFrames(t, b)
	require.NoError(t, a.WriteFrame([]byte("still open")))
	select {
	case p := <-frames:
		assert.Equal(t, "still open", string(p))
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(testTimeout):
		t.Fatal("timed out")
	}
}

// halfCloser is a gatedConn that can still half-close.
type halfCloser struct{ *gatedConn }

func (h halfCloser) CloseWrite() error {
	return h.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

// TestConnCloseWriteRefusesNewFrames calls CloseWrite while a write is in
// flight and a frame is queued behind it: CloseWrite waits for both, a
// frame written meanwhile is refused, and the peer reads the two frames
// and then io.EOF.
func TestConnCloseWriteRefusesNewFrames(t *testing.T) {
	na, nb := tcpPair(t)
	g := newGatedConn(t, na)
	a := framed.NewConn(halfCloser{g}, framed.ConnConfig{})
	b := framed.NewConn(nb, framed.ConnConfig{})
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})

	first := make(chan error, 1)
	go func() { first <- a.WriteFrame([]byte("first")) }()
	wait(t, g.entered, "the first write")
	require.NoError(t, a.WriteFrame([]byte("queued")))
	closed := make(chan error, 1)
	go func() { closed <- a.CloseWrite() }()
	waitForWriteWaiters(t, a, 1) // CloseWrite waits for the write in flight

	assert.ErrorIs(t, a.WriteFrame([]byte("late")), net.ErrClosed, "WriteFrame during CloseWrite")
	g.release()
	require.NoError(t, wait(t, first, "the first writer"))
	require.NoError(t, wait(t, closed, "CloseWrite"))

	require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
	for _, want := range []string{"first", "queued"} {
		p, err := b.ReadFrame()
		require.NoError(t, err, want)
		assert.Equal(t, want, string(p))
	}
	_, err := b.ReadFrame()
	assert.Equal(t, io.EOF, err, "after the last frame")
}

// TestConnCloseWriteConcurrent half-closes while other goroutines write:
// every frame whose WriteFrame returned nil reaches the peer before its
// io.EOF, every other write fails with net.ErrClosed, and the reading side
// stays open.
func TestConnCloseWriteConcurrent(t *testing.T) {
	const (
		rounds    = 10
		writers   = 8
		perWriter = 1000
	)
	for round := range rounds {
		a, b := connPair(t, transports[1], framed.ConnConfig{})
		require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
		type result struct {
			sent int
			err  error
		}
		results := make([]result, writers)
		started := make(chan struct{}, writers)
		var wg sync.WaitGroup
		for id := range writers {
			wg.Go(func() {
				for seq := range perWriter {
					if seq == 10 {
						started <- struct{}{}
					}
					err := a.WriteFrame(stressFrame(nil, id, seq, make([]byte, seq%200)))
					if err != nil {
						results[id] = result{seq, err}
						if seq < 10 {
							started <- struct{}{}
						}
						return
					}
				}
				results[id] = result{perWriter, nil}
			})
		}
		// The peer reads concurrently, so the kernel buffers never fill.
		type peerResult struct {
			next [writers]int
			err  error
		}
		peer := make(chan peerResult, 1)
		go func() {
			var r peerResult
			for {
				p, err := b.ReadFrame()
				if err != nil {
					r.err = err
					peer <- r
					return
				}
				id, seq, err := checkStressFrame(p)
				if err == nil && (id >= writers || seq != r.next[id]) {
					err = errors.New("frame out of order")
				}
				if err != nil {
					r.err = err
					peer <- r
					return
				}
				r.next[id]++
			}
		}()
		for range writers {
			wait(t, started, "writers to start")
		}
		cwErr := a.CloseWrite()
		wg.Wait()
		require.NoError(t, cwErr, "round %d: CloseWrite", round)
		got := wait(t, peer, "the peer")
		require.Equal(t, io.EOF, got.err, "round %d: the peer's last read", round)
		for id, r := range results {
			if r.err != nil {
				require.ErrorIs(t, r.err, net.ErrClosed, "round %d: writer %d", round, id)
			}
			require.Equal(t, r.sent, got.next[id], "round %d: frames of writer %d that reached the peer", round, id)
		}

		// a's reading side is still open.
		require.NoError(t, b.WriteFrame([]byte("reply")), "round %d", round)
		require.NoError(t, a.SetReadDeadline(time.Now().Add(testTimeout)))
		p, err := a.ReadFrame()
		require.NoError(t, err, "round %d: read the reply", round)
		require.Equal(t, "reply", string(p))
		a.Close()
		b.Close()
	}
}

// TestConnReadDeadline: a ReadFrame that times out says so with a net.Error,
// and after the deadline is moved the same frame is read whole, although
// half of it arrived before the timeout.
func TestConnReadDeadline(t *testing.T) {
	tests := []struct {
		name string
		give int // payload size
	}{
		{"small", 1000},
		{"larger than the read buffer", 3 * framed.DefaultReadBufferSize},
	}
	forEachTransport(t, func(t *testing.T, tr transport) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				raw, nb := tr.pair(t)
				b := framed.NewConn(nb, framed.ConnConfig{})
				t.Cleanup(func() { b.Close() })

				require.NoError(t, b.SetReadDeadline(time.Now().Add(-time.Second)))
				_, err := b.ReadFrame()
				requireTimeout(t, err, "deadline in the past")

				want := frameOf(1, tt.give)
				wire := encoded(t, want)
				half := len(wire) / 2

				// net.Pipe's Write returns only once the reader has taken
				// every byte, so write from a goroutine and keep reading
				// with short deadlines until it has, and once more after.
				sent := make(chan error, 1)
				go func() {
					_, err := raw.Write(wire[:half])
					sent <- err
				}()
				var sendErr error
				for i, done := 0, false; ; i++ {
					require.Less(t, i, 1000, "reads timed out before half a frame arrived")
					require.NoError(t, b.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
					p, err := b.ReadFrame()
					require.Nil(t, p, "ReadFrame returned half a frame")
					requireTimeout(t, err, "half a frame")
					if done {
						break
					}
					select {
					case sendErr = <-sent:
						done = true
					default:
					}
				}
				require.NoError(t, sendErr)

				go func() {
					_, err := raw.Write(wire[half:])
					sent <- err
				}()
				require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
				got, err := b.ReadFrame()
				require.NoError(t, err, "after the deadline moved")
				assert.Equal(t, want, got)
				require.NoError(t, wait(t, sent, "the second half"))
			})
		}
	})
}

// TestConnWriteDeadlinePassed: a write after the write deadline fails with
// a timeout.
func TestConnWriteDeadlinePassed(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		a, _ := connPair(t, tr, framed.ConnConfig{})
		require.NoError(t, a.SetWriteDeadline(time.Now().Add(-time.Second)))
		err := a.WriteFrame([]byte("late"))
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	})
}

// TestConnWriteFrameTooLarge: a frame above the limit is refused before
// anything is sent, and the Conn goes on.
func TestConnWriteFrameTooLarge(t *testing.T) {
	tests := []struct {
		name string
		give int // payload size
	}{
		{"just above", 101},
		{"direct-write size", 64 << 10},
	}
	cfg := framed.ConnConfig{Format: framed.Format{MaxFrameSize: 100}}
	forEachTransport(t, func(t *testing.T, tr transport) {
		na, nb := tr.pair(t)
		cc := &countingConn{Conn: na}
		a := framed.NewConn(cc, cfg)
		b := framed.NewConn(nb, cfg)
		t.Cleanup(func() {
			a.Close()
			b.Close()
		})
		frames, errc := readConnFrames(t, b)
		for _, tt := range tests {
			err := a.WriteFrame(make([]byte, tt.give))
			var tooLarge *framed.FrameTooLargeError
			require.ErrorAs(t, err, &tooLarge, tt.name)
			assert.Equal(t, framed.FrameTooLargeError{Size: uint64(tt.give), Limit: 100}, *tooLarge, tt.name)
			assert.ErrorIs(t, err, framed.ErrFrameTooLarge, tt.name)
			assert.Zero(t, cc.writes.Load(), "%s: writes", tt.name)
		}
		require.NoError(t, a.WriteFrame(frameOf(0, 100)), "the largest frame allowed")
		select {
		case p := <-frames:
			assert.Equal(t, frameOf(0, 100), p)
		case err := <-errc:
			t.Fatal(err)
		case <-time.After(testTimeout):
			t.Fatal("timed out")
		}
	})
}

// TestConnReadInvalidHeader: a negative length or one above the Conn's
// MaxFrameSize ends the stream, from the header alone.
func TestConnReadInvalidHeader(t *testing.T) {
	tests := []struct {
		name   string
		give   []byte
		wantIs error
	}{
		{"negative", []byte{0xff, 0xff, 0xff, 0xff}, framed.ErrInvalidLength},
		{"min int32", []byte{0, 0, 0, 0x80}, framed.ErrInvalidLength},
		{"above MaxFrameSize", []byte{101, 0, 0, 0}, framed.ErrFrameTooLarge},
		{"above the default limit", []byte{0xff, 0xff, 0xff, 0x7f}, framed.ErrFrameTooLarge},
	}
	forEachTransport(t, func(t *testing.T, tr transport) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				raw, nb := tr.pair(t)
				b := framed.NewConn(nb, framed.ConnConfig{Format: framed.Format{MaxFrameSize: 100}})
				t.Cleanup(func() { b.Close() })
				sent := make(chan error, 1)
				go func() {
					_, err := raw.Write(tt.give)
					sent <- err
				}()
				require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
				_, err := b.ReadFrame()
				require.ErrorIs(t, err, tt.wantIs)
				var tooLarge *framed.FrameTooLargeError
				if errors.As(err, &tooLarge) {
					assert.Equal(t, 100, tooLarge.Limit)
					assert.Equal(t, uint64(binary.LittleEndian.Uint32(tt.give)), tooLarge.Size)
				}
				require.NoError(t, wait(t, sent, "the header"))
				_, again := b.ReadFrame()
				assert.Equal(t, err, again, "the stream stays unusable")
			})
		}
	})
}

// TestConnReadEnd: the peer closing exactly between frames is io.EOF;
// closing inside a header or a payload is io.ErrUnexpectedEOF.
func TestConnReadEnd(t *testing.T) {
	frame := func(p string) []byte { return encoded(t, []byte(p)) }
	tests := []struct {
		name string
		give []byte // what the peer sends before it closes
		want []string
		err  error
	}{
		{"nothing", nil, nil, io.EOF},
		{"after a frame", frame("ab"), []string{"ab"}, io.EOF},
		{"after an empty frame", frame(""), []string{""}, io.EOF},
		{"inside a header", frame("ab")[:2], nil, io.ErrUnexpectedEOF},
		{"after a header", frame("ab")[:4], nil, io.ErrUnexpectedEOF},
		{"inside a payload", append(frame("ab"), frame("cd")[:5]...), []string{"ab"}, io.ErrUnexpectedEOF},
	}
	forEachTransport(t, func(t *testing.T, tr transport) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				raw, nb := tr.pair(t)
				b := framed.NewConn(nb, framed.ConnConfig{})
				t.Cleanup(func() { b.Close() })
				require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
				sent := make(chan error, 1)
				go func() {
					_, err := raw.Write(tt.give)
					raw.Close()
					sent <- err
				}()
				for _, want := range tt.want {
					p, err := b.ReadFrame()
					require.NoError(t, err)
					assert.Equal(t, want, string(p))
				}
				_, err := b.ReadFrame()
				assert.Equal(t, tt.err, err)
				require.NoError(t, wait(t, sent, "the peer"))
			})
		}
	})
}

// TestConnInvalidFormat: a Conn with a Format that cannot work says so on
// every read and write.
func TestConnInvalidFormat(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		a, _ := connPair(t, tr, framed.ConnConfig{Format: framed.Format{HeaderSize: 5}})
		assert.ErrorIs(t, a.WriteFrame(nil), framed.ErrInvalidFormat, "empty frame")
		assert.ErrorIs(t, a.WriteFrame([]byte("x")), framed.ErrInvalidFormat, "one byte")
		assert.ErrorIs(t, a.Flush(), framed.ErrInvalidFormat, "Flush")
		_, err := a.ReadFrame()
		assert.ErrorIs(t, err, framed.ErrInvalidFormat, "ReadFrame")
	})
}

// TestConnFlush: Flush waits for the write in flight and every frame queued
// behind it; once it returns nil all of them have gone to the network.
func TestConnFlush(t *testing.T) {
	const (
		writers   = 4
		perWriter = 50
	)
	forEachTransport(t, func(t *testing.T, tr transport) {
		g, a, frames, errc := gatedPair(t, tr, framed.ConnConfig{})

		first := make(chan error, 1)
		go func() { first <- a.WriteFrame(stressFrame(nil, writers, 0, nil)) }()
		wait(t, g.entered, "the first write")
		want := int64(4 + 10)

		var wg sync.WaitGroup
		var queued atomic.Int64
		for id := range writers {
			wg.Go(func() {
				for seq := range perWriter {
					p := stressFrame(nil, id, seq, make([]byte, seq))
					assert.NoError(t, a.WriteFrame(p))
					queued.Add(int64(4 + len(p)))
				}
			})
		}
		wg.Wait()
		want += queued.Load()

		flushed := make(chan error, 1)
		go func() { flushed <- a.Flush() }()
		select {
		case err := <-flushed:
			t.Fatalf("Flush returned %v while a write was held", err)
		case <-errc:
			t.Fatal("reader ended")
		case <-frames:
			t.Fatal("a frame arrived while the write was held")
		default:
		}
		g.release()
		require.NoError(t, wait(t, flushed, "Flush"))
		assert.Equal(t, want, g.bytes.Load(), "bytes written when Flush returned")
		require.NoError(t, wait(t, first, "the first writer"))

		next := make([]int, writers+1)
		for range writers*perWriter + 1 {
			select {
			case p := <-frames:
				id, seq, err := checkStressFrame(p)
				require.NoError(t, err)
				require.Equal(t, next[id], seq, "writer %d", id)
				next[id]++
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(testTimeout):
				t.Fatal("timed out")
			}
		}
	})
}

// TestConnFlushWhileWriting: Flush waits for the frames queued before it
// was called, not for those queued after, so it returns while other
// goroutines keep writing.
func TestConnFlushWhileWriting(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		na, nb := tr.pair(t)
		s := newSteppedConn(t, na)
		a := framed.NewConn(s, framed.ConnConfig{})
		b := framed.NewConn(nb, framed.ConnConfig{})
		t.Cleanup(func() {
			a.Close()
			b.Close()
		})
		frames, errc := readConnFrames(t, b)

		first := make(chan error, 1)
		go func() { first <- a.WriteFrame([]byte("A")) }()
		wait(t, s.entered, "write 1") // A
		require.NoError(t, a.WriteFrame([]byte("B")))
		flushed := make(chan error, 1)
		go func() { flushed <- a.Flush() }()
		waitForWriteWaiters(t, a, 1)

		s.step <- struct{}{}
		wait(t, s.entered, "write 2") // B
		require.NoError(t, a.WriteFrame([]byte("C")), "queued after Flush began")
		s.step <- struct{}{}
		wait(t, s.entered, "write 3") // C, held
		require.NoError(t, wait(t, flushed, "Flush"), "with A and B written and C in flight")

		s.step <- struct{}{}
		require.NoError(t, wait(t, first, "the writer that wrote A, B and C"))
		require.NoError(t, a.Flush())
		for _, want := range []string{"A", "B", "C"} {
			select {
			case p := <-frames:
				assert.Equal(t, want, string(p))
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(testTimeout):
				t.Fatalf("timed out reading %s", want)
			}
		}
	})
}

// TestConnCoalescing: frames that many writers queue while a write is in
// flight go out together, in one write.
func TestConnCoalescing(t *testing.T) {
	const (
		writers   = 8
		perWriter = 100
		total     = writers*perWriter + 1
	)
	forEachTransport(t, func(t *testing.T, tr transport) {
		g, a, frames, errc := gatedPair(t, tr, framed.ConnConfig{})

		first := make(chan error, 1)
		go func() { first <- a.WriteFrame(stressFrame(nil, writers, 0, make([]byte, 54))) }()
		wait(t, g.entered, "the first write")
		var wg sync.WaitGroup
		for id := range writers {
			wg.Go(func() {
				for seq := range perWriter {
					// 64 bytes with the stress header.
					assert.NoError(t, a.WriteFrame(stressFrame(nil, id, seq, make([]byte, 54))))
				}
			})
		}
		wg.Wait() // every WriteFrame returned: all were queued
		g.release()
		require.NoError(t, wait(t, first, "the first writer"))
		require.NoError(t, a.Flush())
		writes := g.writes.Load()
		t.Logf("%d frames in %d writes", total, writes)
		assert.EqualValues(t, 2, writes, "the held write, then everything queued behind it")

		next := make([]int, writers+1)
		for range total {
			select {
			case p := <-frames:
				id, seq, err := checkStressFrame(p)
				require.NoError(t, err)
				require.Equal(t, next[id], seq, "writer %d", id)
				next[id]++
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(testTimeout):
				t.Fatal("timed out")
			}
		}
	})
}
