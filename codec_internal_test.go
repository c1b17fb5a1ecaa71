package framed

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unexported parts of the codec that the tests in package framed_test use.

// NewReaderSize returns a Reader with a buffer of size bytes (at least 64),
// as NewConn makes for a ConnConfig with a ReadBufferSize.
var NewReaderSize = newReaderSize

// GrowChunk is how far a frame buffer may grow ahead of the bytes received.
const GrowChunk = growChunk

// TestReaderReleasesBigBuffer checks that a Reader does not hold on to the
// buffer of a large frame once large frames stop, so a connection that
// once received 4 MiB does not keep 4 MiB while idle.
func TestReaderReleasesBigBuffer(t *testing.T) {
	var stream []byte
	for _, n := range []int{1 << 20, 10, 20 << 10, 1 << 20, 20 << 10} {
		var err error
		stream, err = AppendFrame(stream, make([]byte, n))
		require.NoError(t, err, "AppendFrame of %d bytes", n)
	}
	r := NewReader(bytes.NewReader(stream), Format{})
	read := func(n int) {
		t.Helper()
		p, err := r.ReadFrame()
		require.NoError(t, err, "ReadFrame of %d bytes", n)
		require.Len(t, p, n, "ReadFrame of %d bytes", n)
	}

	read(1 << 20)
	read(10)
	assert.LessOrEqual(t, cap(r.big), growChunk, "big-frame buffer after a 1 MiB frame, then a small one")
	read(20 << 10)
	read(1 << 20)
	read(20 << 10)
	assert.LessOrEqual(t, cap(r.big), 2*(20<<10)+growChunk, "big-frame buffer after a 1 MiB frame, then a 20 KiB one")
}

// TestReaderGrowsWhenBusy checks that a Reader whose reads fill its buffer
// moves to the busy size, and that one made with another size keeps it.
func TestReaderGrowsWhenBusy(t *testing.T) {
	var stream []byte
	for range 2000 {
		var err error
		stream, err = AppendFrame(stream, make([]byte, 60))
		require.NoError(t, err)
	}
	tests := []struct {
		name string
		give int
		want int
	}{
		{"default size", DefaultReadBufferSize, busyReadBufferSize},
		{"custom size", 4096, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReaderSize(bytes.NewReader(stream), Format{}, tt.give)
			for i := range 2000 {
				p, err := r.ReadFrame()
				require.NoError(t, err, "frame %d", i)
				require.Len(t, p, 60, "frame %d", i)
			}
			assert.Len(t, r.buf, tt.want, "buffer after a busy stream")
		})
	}
}

// TestBigPoolClasses checks that a pooled large-frame buffer always fits
// the frame it is taken for, and that a buffer given back after a frame
// is reused for a frame of the same size, whatever that size.
func TestBigPoolClasses(t *testing.T) {
	for k := range bigPools {
		for bigPools[k].Get() != nil { // start from empty pools
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		putBig(make([]byte, growChunk+rng.IntN(2*DefaultMaxFrameSize)))
		n := 1 + rng.IntN(DefaultMaxFrameSize)
		if b := getBig(n); b != nil {
			require.GreaterOrEqual(t, cap(b), n, "getBig(%d)", n)
			require.Zero(t, len(b), "getBig(%d)", n)
		}
	}
	for k := range bigPools {
		for bigPools[k].Get() != nil {
		}
	}
	for _, n := range []int{growChunk, growChunk + 1, 1_000_000, 1 << 20, 1<<20 + 1, 3 << 20, DefaultMaxFrameSize} {
		hits := 0
		for range 20 { // sync.Pool may drop a buffer now and then, above all under -race
			putBig(make([]byte, n))
			if b := getBig(n); b != nil {
				require.GreaterOrEqual(t, cap(b), n)
				hits++
			}
		}
		assert.Greater(t, hits, 5, "buffers of %d bytes reused", n)
	}
}
