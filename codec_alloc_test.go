package framed_test

import (
	"bufio"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// stallReader hands out data, then stalls the way a silent peer does:
// with a timeout error on every read, or, when release is set, by blocking
// until the test closes release (and then returning io.EOF). stalled is
// closed when it first stalls.
type stallReader struct {
	data    []byte
	release chan struct{}
	stalled chan struct{}
}

func (s *stallReader) Read(p []byte) (int, error) {
	if len(s.data) > 0 {
		n := copy(p, s.data)
		s.data = s.data[n:]
		return n, nil
	}
	select {
	case <-s.stalled:
	default:
		close(s.stalled)
	}
	if s.release == nil {
		return 0, timeoutError
	}
	<-s.release
	return 0, io.EOF
}

// TestMemoryFollowsBytesReceived checks that a header claiming the largest
// frame costs what actually arrives, not what was claimed: a peer that
// announces 4 MiB and goes quiet must not cost 4 MiB.
func TestMemoryFollowsBytesReceived(t *testing.T) {
	const claim = framed.DefaultMaxFrameSize
	hdr := header(framed.Format{}, claim)
	tests := []struct {
		name     string
		received int // payload bytes that arrive before the stall
		block    bool
		want     uint64 // most bytes the read may allocate
	}{
		{name: "10 bytes then timeout", received: 10, want: 256 << 10},
		{name: "10 bytes then blocked", received: 10, block: true, want: 256 << 10},
		{name: "300 KiB then timeout", received: 300 << 10, want: 4*300<<10 + 256<<10},
		{name: "300 KiB then blocked", received: 300 << 10, block: true, want: 4*300<<10 + 256<<10},
	}
	readers := []struct {
		name string
		read func(io.Reader) error
	}{
		{"Reader", func(src io.Reader) error {
			_, err := framed.NewReader(src, framed.Format{}).ReadFrame()
			return err
		}},
		{"Decode", func(src io.Reader) error {
			_, err := framed.Decode(bufio.NewReader(src))
			return err
		}},
	}
	for _, rd := range readers {
		for _, tt := range tests {
			t.Run(rd.name+"/"+tt.name, func(t *testing.T) {
				src := &stallReader{data: concat(hdr, payload(1, tt.received)), stalled: make(chan struct{})}
				var err error
				var allocated uint64
				if tt.block {
					src.release = make(chan struct{})
					done := make(chan struct{})
					allocated = measureAlloc(func() {
						go func() {
							defer close(done)
							err = rd.read(src)
						}()
						<-src.stalled
					})
					close(src.release)
					<-done
					checkErr(t, wantUnexpectedEOF, err, "%s when the stalled peer hangs up", rd.name)
				} else {
					allocated = measureAlloc(func() { err = rd.read(src) })
					assert.ErrorIs(t, err, timeoutError, "%s of a stalled frame", rd.name)
				}
				t.Logf("%s: %d bytes allocated", tt.name, allocated)
				assert.Less(t, allocated, tt.want, "%s: bytes allocated for a %d-byte claim after %d bytes (%s)",
					rd.name, claim, tt.received, tt.name)
			})
		}
	}
}

// cycleReader returns its stream over and over, forever, without
// allocating: a peer that never stops sending the same frames.
type cycleReader struct {
	stream []byte
	off    int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := copy(p, c.stream[c.off:])
	c.off = (c.off + n) % len(c.stream)
	return n, nil
}

// repeatedFrames returns a stream of count frames of size bytes each.
func repeatedFrames(t testing.TB, f framed.Format, size, count int) []byte {
	t.Helper()
	var stream []byte
	for i := range count {
		var err error
		stream, err = f.AppendFrame(stream, payload(i, size))
		require.NoError(t, err, "AppendFrame of %d bytes", size)
	}
	return stream
}

// TestAllocs pins the steady-state allocation budgets: encoding into a
// buffer with room, reading and writing frames cost no allocation at all.
func TestAllocs(t *testing.T) {
	msg := payload(1, 64)
	for _, nf := range testFormats {
		dst := make([]byte, 0, 1024)
		allocs := testing.AllocsPerRun(100, func() {
			dst, _ = nf.f.AppendFrame(dst[:0], msg)
		})
		assert.Zero(t, allocs, "AppendFrame %s of 64 bytes into a roomy buffer", nf.name)
	}

	for _, size := range []int{0, 64, 4 << 10, 20 << 10, 1 << 20} {
		src := &cycleReader{stream: repeatedFrames(t, framed.Format{}, size, 7)}
		r := framed.NewReader(src, framed.Format{})
		for range 20 { // warm up: the big-frame buffer reaches its size
			_, err := r.ReadFrame()
			require.NoError(t, err, "ReadFrame of %d bytes", size)
		}
		allocs := testing.AllocsPerRun(200, func() {
			p, err := r.ReadFrame()
			if err != nil || len(p) != size {
				t.Fatalf("ReadFrame of %d bytes: got %d bytes, %v", size, len(p), err)
			}
		})
		assert.Zero(t, allocs, "ReadFrame of %d-byte frames in steady state", size)
	}

	w := framed.NewWriter(io.Discard, framed.Format{})
	allocs := testing.AllocsPerRun(1000, func() {
		if err := w.WriteFrame(msg); err != nil {
			t.Fatalf("WriteFrame: %v", err)
		}
	})
	assert.Zero(t, allocs, "WriteFrame of 64 bytes")

	br := bufio.NewReader(&cycleReader{stream: repeatedFrames(t, framed.Format{}, 64, 7)})
	allocs = testing.AllocsPerRun(200, func() {
		if _, err := framed.Decode(br); err != nil {
			t.Fatalf("Decode: %v", err)
		}
	})
	assert.Equal(t, 1.0, allocs, "Decode of a 64-byte frame allocates only the frame")
}
