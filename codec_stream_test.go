package framed_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// smallSizes are payload sizes that fit in a Reader's buffer many times.
var smallSizes = []int{0, 1, 2, 3, 7, 63, 64, 100, 255, 256, 1000, 0, 1, 20, 4095}

// bigSizes straddle the Reader's buffer size and the codec's growth chunk,
// for a header of width h.
func bigSizes(h int) []int {
	const buf = framed.DefaultReadBufferSize
	return []int{
		buf - h - 1, buf - h, // fit the buffer exactly, with the header
		buf - h + 1, buf, buf + 1, // just too large for it
		framed.GrowChunk - 1, framed.GrowChunk, framed.GrowChunk + 1,
		100 << 10, 1 << 20, 20000, 17000,
	}
}

// buildStream encodes frames of the given sizes (capped at the limit) with
// the package's own encoder and returns the stream and the payloads.
func buildStream(t *testing.T, f framed.Format, sizes []int, count int) ([]byte, [][]byte) {
	t.Helper()
	var stream []byte
	frames := make([][]byte, count)
	for i := range frames {
		frames[i] = payload(i, min(sizes[i%len(sizes)], f.Limit()))
		var err error
		stream, err = f.AppendFrame(stream, frames[i])
		require.NoError(t, err, "AppendFrame of frame %d (%d bytes)", i, len(frames[i]))
	}
	return stream, frames
}

// TestStickyPackets reads 1000 frames that arrive in one write, one byte at
// a time, and at random split points: the frames come back whole and in
// order however the stream was cut.
func TestStickyPackets(t *testing.T) {
	formats := []namedFormat{
		{"default", framed.Format{}},
		{"u8", framed.Format{HeaderSize: 1}},
		{"be16", framed.Format{HeaderSize: 2, BigEndian: true}},
		{"le64", framed.Format{HeaderSize: 8}},
		{"uvarint", framed.Format{Varint: true}},
	}
	for _, nf := range formats {
		stream, want := buildStream(t, nf.f, smallSizes, 1000)
		for _, rk := range readerKinds {
			t.Run(nf.name+"/"+rk.name, func(t *testing.T) {
				got, err := readFrames(framed.NewReader(rk.wrap(stream), nf.f))
				assertFrames(t, want, got, "ReadFrame %s of 1000 frames (%s)", nf.name, rk.name)
				checkErr(t, wantEOF, err, "ReadFrame %s after 1000 frames (%s)", nf.name, rk.name)

				// With a tiny buffer most frames take the big-frame path.
				got, err = readFrames(framed.NewReaderSize(rk.wrap(stream), nf.f, 64))
				assertFrames(t, want, got, "ReadFrame %s with a 64-byte buffer of 1000 frames (%s)", nf.name, rk.name)
				checkErr(t, wantEOF, err, "ReadFrame %s with a 64-byte buffer after 1000 frames (%s)", nf.name, rk.name)

				got, err = decodeFrames(nf.f, bufio.NewReader(rk.wrap(stream)))
				assertFrames(t, want, got, "Decode %s of 1000 frames (%s)", nf.name, rk.name)
				checkErr(t, wantEOF, err, "Decode %s after 1000 frames (%s)", nf.name, rk.name)
			})
		}
	}
}

// TestMixedSizes interleaves small frames with frames larger than the
// Reader's buffer, so both the big-frame path (and the reuse and release of
// its buffer) and the compaction of the small-frame buffer are exercised.
func TestMixedSizes(t *testing.T) {
	formats := []namedFormat{
		{"default", framed.Format{}},
		{"be16", framed.Format{HeaderSize: 2, BigEndian: true}},
		{"le64", framed.Format{HeaderSize: 8}},
		{"uvarint", framed.Format{Varint: true}},
		{"be64,max=70000", framed.Format{HeaderSize: 8, BigEndian: true, MaxFrameSize: 70000}},
	}
	for _, nf := range formats {
		h := headerWidth(nf.f)
		if h == 0 {
			h = 3 // uvarint of a length from 16 KiB to 2 MiB
		}
		var sizes []int
		for i, big := range bigSizes(h) {
			sizes = append(sizes, big, smallSizes[i%len(smallSizes)], 5000, 5000, 5000, big/2)
		}
		stream, want := buildStream(t, nf.f, sizes, len(sizes))
		kinds := []struct {
			name string
			src  func() io.Reader
		}{
			{"whole", func() io.Reader { return bytes.NewReader(stream) }},
			{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) }},
			{"small chunks", func() io.Reader { return newChunkReader(stream, 1, 700) }},
			{"large chunks", func() io.Reader { return newChunkReader(stream, 2, 40000) }},
		}
		for _, k := range kinds {
			t.Run(nf.name+"/"+k.name, func(t *testing.T) {
				got, err := readFrames(framed.NewReader(k.src(), nf.f))
				assertFrames(t, want, got, "ReadFrame %s of mixed sizes (%s)", nf.name, k.name)
				checkErr(t, wantEOF, err, "ReadFrame %s after mixed sizes (%s)", nf.name, k.name)

				got, err = decodeFrames(nf.f, bufio.NewReader(k.src()))
				assertFrames(t, want, got, "Decode %s of mixed sizes (%s)", nf.name, k.name)
				checkErr(t, wantEOF, err, "Decode %s after mixed sizes (%s)", nf.name, k.name)
			})
		}
	}
}

// TestReaderTimeout checks that a timeout anywhere in a frame leaves the
// Reader as it was: the next call goes on from the bytes that did arrive.
func TestReaderTimeout(t *testing.T) {
	small := payload(1, 100)
	next := payload(2, 10)
	big := payload(3, 100<<10) // larger than the Reader's buffer
	for _, nf := range []namedFormat{{"default", framed.Format{}}, {"uvarint", framed.Format{Varint: true}}, {"be64", framed.Format{HeaderSize: 8, BigEndian: true}}} {
		f := nf.f
		fs, fn, fb := frame(f, small), frame(f, next), frame(f, big)
		hs, hb := len(header(f, 100)), len(header(f, 100<<10))
		tests := []struct {
			name  string
			steps []step
			want  [][]byte
		}{
			{
				name:  "before a frame",
				steps: []step{{err: timeoutError}, {data: concat(fs, fn)}},
				want:  [][]byte{small, next},
			},
			{
				name:  "between frames",
				steps: []step{{data: fs, err: timeoutError}, {data: fn}},
				want:  [][]byte{small, next},
			},
			{
				name:  "inside a header",
				steps: []step{{data: fs[:1], err: timeoutError}, {data: concat(fs[1:], fn)}},
				want:  [][]byte{small, next},
			},
			{
				name:  "inside a payload",
				steps: []step{{data: fs[:hs+30], err: timeoutError}, {data: concat(fs[hs+30:], fn)}},
				want:  [][]byte{small, next},
			},
			{
				name: "twice inside a payload",
				steps: []step{
					{data: fs[:hs+30], err: timeoutError}, {err: timeoutError},
					{data: fs[hs+30 : hs+60], err: timeoutError}, {data: concat(fs[hs+60:], fn)},
				},
				want: [][]byte{small, next},
			},
			{
				name:  "big frame: after its header",
				steps: []step{{data: fb[:hb], err: timeoutError}, {data: concat(fb[hb:], fn)}},
				want:  [][]byte{big, next},
			},
			{
				name: "big frame: inside its payload",
				steps: []step{
					{data: concat(fs, fb[:hb+10<<10]), err: timeoutError},
					{data: fb[hb+10<<10 : hb+40<<10], err: timeoutError},
					{data: fb[hb+40<<10 : hb+90<<10], err: timeoutError},
					{data: concat(fb[hb+90<<10:], fn)},
				},
				want: [][]byte{small, big, next},
			},
			{
				name:  "big frame: one byte short",
				steps: []step{{data: fb[:len(fb)-1], err: timeoutError}, {data: concat(fb[len(fb)-1:], fn)}},
				want:  [][]byte{big, next},
			},
		}
		for _, tt := range tests {
			t.Run(nf.name+"/"+tt.name, func(t *testing.T) {
				r := framed.NewReader(&scriptReader{steps: tt.steps}, f)
				var got [][]byte
				timeouts := 0
				for range 100 {
					p, err := r.ReadFrame()
					if isTimeout(err) {
						assert.ErrorIs(t, err, timeoutError, "%s: the timeout is returned as is", tt.name)
						timeouts++
						continue
					}
					if err != nil {
						checkErr(t, wantEOF, err, "%s: after the frames", tt.name)
						break
					}
					got = append(got, bytes.Clone(p))
				}
				assertFrames(t, tt.want, got, "%s", tt.name)
				assert.Equal(t, countTimeouts(tt.steps), timeouts, "%s: every timeout is reported", tt.name)
			})
		}
	}
}

func countTimeouts(steps []step) int {
	n := 0
	for _, s := range steps {
		if s.err != nil {
			n++
		}
	}
	return n
}

// TestReaderErrorSticky checks that a read error other than a timeout ends
// the stream for good, even if the source would go on.
func TestReaderErrorSticky(t *testing.T) {
	boom := errors.New("connection reset")
	small, big := payload(1, 100), payload(2, 100<<10)
	fs, fb := frame(framed.Format{}, small), frame(framed.Format{}, big)
	tests := []struct {
		name  string
		steps []step
		want  [][]byte
	}{
		{name: "between frames", steps: []step{{data: fs, err: boom}, {data: fs}}, want: [][]byte{small}},
		{name: "inside a payload", steps: []step{{data: fs[:50], err: boom}, {data: fs[50:]}}},
		{name: "inside a big payload", steps: []step{{data: fb[:30<<10], err: boom}, {data: fb[30<<10:]}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := framed.NewReader(&scriptReader{steps: tt.steps}, framed.Format{})
			got, err := readFrames(r)
			assertFrames(t, tt.want, got, "%s", tt.name)
			assert.ErrorIs(t, err, boom, "%s", tt.name)
			for range 2 {
				p, again := r.ReadFrame()
				assert.Nil(t, p, "%s: frame after the error", tt.name)
				assert.Equal(t, err, again, "%s: the error is sticky", tt.name)
			}
		})
	}
}

// zeroReader hands out its data, then returns 0, nil: a broken io.Reader
// that never makes progress. It gives up with errGaveUp after many calls
// so that a test of a reader that would spin forever fails instead.
type zeroReader struct {
	data  []byte
	calls int
}

var errGaveUp = errors.New("zeroReader: too many empty reads")

func (z *zeroReader) Read(p []byte) (int, error) {
	if len(z.data) > 0 {
		n := copy(p, z.data)
		z.data = z.data[n:]
		return n, nil
	}
	if z.calls++; z.calls > 10000 {
		return 0, errGaveUp
	}
	return 0, nil
}

// TestReaderNoProgress checks that a source returning no bytes and no error
// makes ReadFrame fail with io.ErrNoProgress, as bufio does, on every path.
func TestReaderNoProgress(t *testing.T) {
	tests := []struct {
		name string
		give []byte
	}{
		{name: "between frames", give: frame(framed.Format{}, []byte("hi"))},
		{name: "inside a small frame", give: frame(framed.Format{}, payload(1, 100))[:50]},
		{name: "inside a big frame", give: frame(framed.Format{}, payload(1, 100<<10))[:50<<10]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readFrames(framed.NewReader(&zeroReader{data: tt.give}, framed.Format{}))
			assert.ErrorIs(t, err, io.ErrNoProgress, "ReadFrame %s", tt.name)
			_, err = decodeFrames(framed.Format{}, bufio.NewReader(&zeroReader{data: tt.give}))
			assert.ErrorIs(t, err, io.ErrNoProgress, "Decode %s", tt.name)
		})
	}
}

// recordingWriter records each Write it is given.
type recordingWriter struct {
	bytes.Buffer
	writes [][]byte
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, p)
	return w.Buffer.Write(p)
}

// TestWriterRoundTrip writes frames with a Writer and reads them back: the
// bytes are the ones AppendFrame gives, and payloads of half the buffer or
// more go out straight from the caller's slice.
func TestWriterRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 100, framed.DefaultWriteBufferSize/2 - 1, framed.DefaultWriteBufferSize / 2,
		framed.DefaultWriteBufferSize - 4, framed.DefaultWriteBufferSize, 100 << 10, 5, 3000, 3000, 3000, 3000, 3000, 12000, 12000, 0}
	for _, nf := range testFormats {
		t.Run(nf.name, func(t *testing.T) {
			want, frames := buildStream(t, nf.f, sizes, 3*len(sizes))
			var out recordingWriter
			w := framed.NewWriter(&out, nf.f)
			vectored := 0
			for i, p := range frames {
				require.NoError(t, w.WriteFrame(p), "WriteFrame %s of frame %d (%d bytes)", nf.name, i, len(p))
				last := out.writes[max(len(out.writes)-1, 0):]
				if len(p) > 0 && len(last) == 1 && len(last[0]) > 0 && &last[0][0] == &p[0] {
					vectored++
				}
			}
			require.NoError(t, w.Flush(), "Flush %s", nf.name)
			assert.Zero(t, w.Buffered(), "Buffered %s after Flush", nf.name)
			require.True(t, bytes.Equal(want, out.Bytes()), "Writer %s writes the bytes AppendFrame gives", nf.name)
			if nf.f.Limit() >= 100<<10 {
				assert.Positive(t, vectored, "Writer %s writes large payloads without copying them", nf.name)
			}

			got, err := readFrames(framed.NewReader(bytes.NewReader(out.Bytes()), nf.f))
			assertFrames(t, frames, got, "Writer %s to Reader", nf.name)
			checkErr(t, wantEOF, err, "Writer %s to Reader", nf.name)
		})
	}
}

// TestWriterCoalesces checks that many small frames go out in few writes.
func TestWriterCoalesces(t *testing.T) {
	const frames, size = 1000, 64
	var out recordingWriter
	w := framed.NewWriter(&out, framed.Format{})
	for i := range frames {
		require.NoError(t, w.WriteFrame(payload(i, size)), "WriteFrame %d", i)
	}
	require.NoError(t, w.Flush(), "Flush")
	total := frames * (4 + size)
	require.Equal(t, total, out.Len(), "bytes written")
	maxWrites := (total+framed.DefaultWriteBufferSize-1)/framed.DefaultWriteBufferSize + 1
	assert.LessOrEqual(t, len(out.writes), maxWrites, "writes for %d frames of %d bytes", frames, size)
	for i, wr := range out.writes[:len(out.writes)-1] {
		assert.Greater(t, len(wr), framed.DefaultWriteBufferSize-(4+size), "write %d fills the buffer", i)
	}
}

// failingWriter accepts ok bytes, then fails every write.
type failingWriter struct {
	ok  int
	err error
	n   int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n+len(p) <= w.ok {
		w.n += len(p)
		return len(p), nil
	}
	k := w.ok - w.n
	w.n = w.ok
	return k, w.err
}

// shortWriter breaks the io.Writer contract: it takes half of each write
// and reports no error.
type shortWriter struct{ bytes.Buffer }

func (w *shortWriter) Write(p []byte) (int, error) { return w.Buffer.Write(p[:len(p)/2]) }

func TestWriterErrors(t *testing.T) {
	boom := errors.New("broken pipe")
	small, big := payload(1, 100), payload(2, 100<<10)
	tests := []struct {
		name   string
		dst    io.Writer
		frames [][]byte
		want   error
	}{
		{name: "flush fails", dst: &failingWriter{err: boom}, frames: [][]byte{small}, want: boom},
		{name: "vectored write fails", dst: &failingWriter{ok: 50, err: boom}, frames: [][]byte{small, big}, want: boom},
		{name: "short flush", dst: &shortWriter{}, frames: [][]byte{small}, want: io.ErrShortWrite},
		{name: "short vectored write", dst: &shortWriter{}, frames: [][]byte{small, big}, want: io.ErrShortWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := framed.NewWriter(tt.dst, framed.Format{})
			var err error
			for _, p := range tt.frames {
				if err = w.WriteFrame(p); err != nil {
					break
				}
			}
			if err == nil {
				err = w.Flush()
			}
			require.ErrorIs(t, err, tt.want, "%s", tt.name)
			assert.ErrorIs(t, w.WriteFrame(small), tt.want, "%s: WriteFrame after the error", tt.name)
			assert.ErrorIs(t, w.Flush(), tt.want, "%s: Flush after the error", tt.name)
		})
	}
}

func TestWriterEmptyFlush(t *testing.T) {
	var out recordingWriter
	w := framed.NewWriter(&out, framed.Format{})
	require.NoError(t, w.Flush(), "Flush with nothing buffered")
	assert.Empty(t, out.writes, "Flush with nothing buffered writes nothing")
	require.NoError(t, w.WriteFrame(nil), "WriteFrame of an empty frame")
	assert.Equal(t, 4, w.Buffered(), "an empty frame is its header")
	require.NoError(t, w.Flush(), "Flush")
	assert.Equal(t, []byte{0, 0, 0, 0}, out.Bytes(), "an empty frame on the wire")
}
