package framed_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// checkedFrame fills a payload of n bytes (n >= 8) with bytes drawn from
// seed and ends it with their CRC, so that any byte changed, lost or
// shifted is found from the payload alone.
func checkedFrame(dst []byte, n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	p := dst[:n]
	for i := 0; i+8 <= n-4; i += 8 {
		binary.LittleEndian.PutUint64(p[i:], rng.Uint64())
	}
	for i := (n - 4) &^ 7; i < n-4; i++ {
		p[i] = byte(rng.Uint32())
	}
	binary.LittleEndian.PutUint32(p[n-4:], crc32.ChecksumIEEE(p[:n-4]))
	return p
}

func checkFrame(p []byte) error {
	if len(p) < 8 {
		return fmt.Errorf("frame of %d bytes", len(p))
	}
	want := binary.LittleEndian.Uint32(p[len(p)-4:])
	if got := crc32.ChecksumIEEE(p[:len(p)-4]); got != want {
		return fmt.Errorf("frame of %d bytes: checksum %08x, want %08x", len(p), got, want)
	}
	return nil
}

// checkingHandler checks each frame at the start of ServeFrame, yields so
// that other connections take and give back pooled buffers meanwhile,
// checks it again, and echoes it.
type checkingHandler struct {
	mu   sync.Mutex
	errs []error
}

func (h *checkingHandler) ServeFrame(_ context.Context, c *framed.Conn, p []byte) error {
	before := checkFrame(p)
	runtime.Gosched()
	if len(p)%3 == 0 {
		time.Sleep(50 * time.Microsecond)
	}
	after := checkFrame(p)
	if before == nil && after != nil {
		h.mu.Lock()
		h.errs = append(h.errs, fmt.Errorf("frame changed during ServeFrame: %w", after))
		h.mu.Unlock()
	}
	return c.WriteFrame(p)
}

// frameSize returns a random size that covers small frames, frames around
// the 16 KiB and 64 KiB read buffers, and large frames of every size class.
func frameSize(rng *rand.Rand) int {
	switch rng.IntN(6) {
	case 0:
		return 8 + rng.IntN(200)
	case 1:
		return 16<<10 - 64 + rng.IntN(128)
	case 2:
		return 16<<10 + rng.IntN(48<<10)
	case 3:
		return 64<<10 - 64 + rng.IntN(128)
	case 4:
		return 64<<10 + rng.IntN(512<<10)
	default:
		return 8 + rng.IntN(2<<20)
	}
}

// TestServerPooledBuffersStress runs many connections that send frames of
// random sizes, alone, pipelined and with idle gaps, through a handler
// that checks its frame while other connections churn the buffer pools.
// Every byte of every frame and reply is checked.
func TestServerPooledBuffersStress(t *testing.T) {
	conns, rounds := 16, 20
	if testing.Short() || raceEnabled {
		conns, rounds = 8, 10
	}
	h := &checkingHandler{}
	r := serve(t, &framed.Server{Handler: h, IdleTimeout: time.Minute, FrameTimeout: time.Minute})

	var wg sync.WaitGroup
	errc := make(chan error, conns)
	for id := range conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			nc, err := net.DialTimeout("tcp", r.addr, testTimeout)
			if err != nil {
				errc <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(4 * testTimeout))
			bw := framed.NewWriter(nc, framed.Format{})
			rd := framed.NewReader(nc, framed.Format{})
			buf := make([]byte, 2<<20+8)
			for round := range rounds {
				batch := 1 + rng.IntN(4)
				sizes := make([]int, batch)
				for i := range sizes {
					sizes[i] = frameSize(rng)
				}
				// Replies are read while frames are sent, so that a batch
				// of large frames cannot fill both directions' buffers.
				done := make(chan error, 1)
				go func() {
					for i := range sizes {
						p, err := rd.ReadFrame()
						if err != nil {
							done <- fmt.Errorf("conn %d round %d reply %d: %w", id, round, i, err)
							return
						}
						if len(p) != sizes[i] {
							done <- fmt.Errorf("conn %d round %d reply %d: %d bytes, want %d", id, round, i, len(p), sizes[i])
							return
						}
						if err := checkFrame(p); err != nil {
							done <- fmt.Errorf("conn %d round %d reply %d: %w", id, round, i, err)
							return
						}
					}
					done <- nil
				}()
				for i, n := range sizes {
					p := checkedFrame(buf, n, uint64(id)<<32|uint64(round)<<8|uint64(i))
					if err := bw.WriteFrame(p); err != nil {
						errc <- err
						return
					}
				}
				if err := bw.Flush(); err != nil {
					errc <- err
					return
				}
				if err := <-done; err != nil {
					errc <- err
					return
				}
				if rng.IntN(3) == 0 {
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond) // idle
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		assert.NoError(t, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	assert.NoError(t, errors.Join(h.errs...))
}

// sniffedConn is a TCP connection of which a listener has already read the
// first bytes, to look at them, as protocol multiplexers do: Read returns
// those bytes first. It embeds *net.TCPConn, and so has its SyscallConn.
type sniffedConn struct {
	*net.TCPConn
	br *bufio.Reader
}

func (c *sniffedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

type sniffingListener struct{ net.Listener }

func (l sniffingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	nc.SetReadDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(nc)
	if _, err := br.Peek(1); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetReadDeadline(time.Time{})
	return &sniffedConn{TCPConn: nc.(*net.TCPConn), br: br}, nil
}

// TestServerWrappedTCPConn checks that the server reads a connection
// through its Read method, also when the connection's type has the
// socket's SyscallConn: bytes a wrapper has buffered must not be skipped.
func TestServerWrappedTCPConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := serveOn(t, &framed.Server{}, sniffingListener{ln})
	c := dial(t, r.addr)
	for i := range 3 {
		roundTrip(t, c, []byte(fmt.Sprintf("frame %d", i)))
		time.Sleep(5 * time.Millisecond) // idle between frames
	}
}
