package framed_test

import (
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// TestConnCloseNeverCutsAFrame races 64 writers of frames from 100 bytes
// to 200 KiB against Close, over TCP and TLS. Whatever Close interrupts,
// the peer reads only whole frames, each intact, and then a clean end
// between frames (io.EOF) or a reset: never a clean end inside a frame
// (io.ErrUnexpectedEOF).
func TestConnCloseNeverCutsAFrame(t *testing.T) {
	const (
		writers = 64
		rounds  = 24
	)
	serverTLS, clientTLS := testTLSConfigs(t)
	clientTLS = clientTLS.Clone()
	clientTLS.ServerName = "127.0.0.1"
	pairs := []struct {
		name string
		wrap func(a, b net.Conn) (net.Conn, net.Conn)
	}{
		{"tcp", func(a, b net.Conn) (net.Conn, net.Conn) { return a, b }},
		{"tls", func(a, b net.Conn) (net.Conn, net.Conn) {
			return tls.Client(a, clientTLS), tls.Server(b, serverTLS)
		}},
	}
	for _, tt := range pairs {
		t.Run(tt.name, func(t *testing.T) {
			ends := map[string]int{}
			for round := range rounds {
				na, nb := tt.wrap(tcpPair(t))
				a := framed.NewConn(na, framed.ConnConfig{})
				b := framed.NewConn(nb, framed.ConnConfig{})
				require.NoError(t, b.SetReadDeadline(time.Now().Add(testTimeout)))
				require.NoError(t, a.SetWriteDeadline(time.Now().Add(testTimeout)))

				read := make(chan error, 1)
				closeAfter := 1 + round%8 // frames the peer reads before Close
				reading := make(chan struct{})
				var whole int
				go func() {
					for {
						p, err := b.ReadFrame()
						if err != nil {
							read <- err
							return
						}
						if len(p) < 4 || !assert.Equal(t, frameOf(int(seqOf(p)), len(p)), p, "frame %d corrupt", whole) {
							read <- errors.New("corrupt frame")
							return
						}
						whole++
						if whole == closeAfter {
							close(reading)
						}
					}
				}()

				var wg sync.WaitGroup
				start := make(chan struct{})
				for w := range writers {
					wg.Go(func() {
						<-start
						rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
						for i := 0; ; i++ {
							n := 100 + rng.IntN(200<<10)
							if a.WriteFrame(frameOf(w<<16|i, n)) != nil {
								return
							}
						}
					})
				}
				close(start)
				// Close while frames go out: once the peer has read a few.
				select {
				case <-reading:
				case err := <-read:
					t.Fatalf("round %d: the peer's read failed before Close: %v", round, err)
				}
				a.Close()
				wg.Wait()

				err := wait(t, read, "the peer's end")
				switch {
				case err == io.EOF:
					ends["EOF"]++
				case errors.Is(err, syscall.ECONNRESET):
					ends["reset"]++
				default:
					t.Fatalf("round %d: after %d whole frames the peer read %v, not EOF or a reset", round, whole, err)
				}
				b.Close()
			}
			t.Logf("peer's ends over %d rounds: %v", rounds, ends)
		})
	}
}

// seqOf returns the sequence number frameOf put in p.
func seqOf(p []byte) uint32 {
	return uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
}

// TestStalledErrorWaited: a network write that times out reports how long
// it ran, whether WriteTimeout or the caller's own deadline bounded it.
func TestStalledErrorWaited(t *testing.T) {
	tests := []struct {
		name     string
		cfg      framed.ConnConfig
		deadline time.Duration // the caller's write deadline, from the start
		atLeast  time.Duration // the write ran at least this long
	}{
		{"WriteTimeout", framed.ConnConfig{WriteTimeout: 100 * time.Millisecond}, 0, 100 * time.Millisecond},
		{"deadline", framed.ConnConfig{}, 100 * time.Millisecond, time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			na, _ := tcpPair(t) // the peer never reads
			a := framed.NewConn(na, tt.cfg)
			t.Cleanup(func() { a.Close() })
			start := time.Now()
			if tt.deadline > 0 {
				require.NoError(t, a.SetWriteDeadline(start.Add(tt.deadline)))
			}
			big := make([]byte, 1<<20) // written from the caller's slice: WriteFrame waits for its write
			var err error
			for range 64 {
				if err = a.WriteFrame(big); err != nil {
					break
				}
			}
			elapsed := time.Since(start)
			var se *framed.StalledError
			require.ErrorAs(t, err, &se, "a write to a peer that does not read")
			assert.True(t, se.Timeout(), "Timeout()")
			assert.GreaterOrEqual(t, se.Waited, tt.atLeast, "Waited")
			assert.LessOrEqual(t, se.Waited, elapsed, "Waited, against the whole time taken")
		})
	}
}
