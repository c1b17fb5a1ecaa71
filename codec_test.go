package framed_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

type namedFormat struct {
	name string
	f    framed.Format
}

// testFormats covers every header width, both byte orders, varint, and
// custom limits below what the header can hold.
var testFormats = []namedFormat{
	{"default", framed.Format{}},
	{"u8", framed.Format{HeaderSize: 1}},
	{"le16", framed.Format{HeaderSize: 2}},
	{"be16", framed.Format{HeaderSize: 2, BigEndian: true}},
	{"le32", framed.Format{HeaderSize: 4}},
	{"be32", framed.Format{HeaderSize: 4, BigEndian: true}},
	{"le64", framed.Format{HeaderSize: 8}},
	{"be64", framed.Format{HeaderSize: 8, BigEndian: true}},
	{"uvarint", framed.Format{Varint: true}},
	{"u8,max=100", framed.Format{HeaderSize: 1, MaxFrameSize: 100}},
	{"be16,max=1000", framed.Format{HeaderSize: 2, BigEndian: true, MaxFrameSize: 1000}},
	{"le32,max=1000", framed.Format{MaxFrameSize: 1000}},
	{"be64,max=70000", framed.Format{HeaderSize: 8, BigEndian: true, MaxFrameSize: 70000}},
	{"uvarint,max=300", framed.Format{Varint: true, MaxFrameSize: 300}},
}

// header encodes a length of n for f independently of the package, so the
// tests check the codec against the wire format rather than against itself.
// Lengths that do not fit are truncated: that is how tests build hostile
// headers.
func header(f framed.Format, n uint64) []byte {
	if f.Varint {
		return binary.AppendUvarint(nil, n)
	}
	var order binary.AppendByteOrder = binary.LittleEndian
	if f.BigEndian {
		order = binary.BigEndian
	}
	switch f.HeaderSize {
	case 1:
		return []byte{byte(n)}
	case 2:
		return order.AppendUint16(nil, uint16(n))
	case 8:
		return order.AppendUint64(nil, n)
	default:
		return order.AppendUint32(nil, uint32(n))
	}
}

// headerWidth returns the fixed header width of f, or 0 for varint.
func headerWidth(f framed.Format) int {
	switch {
	case f.Varint:
		return 0
	case f.HeaderSize == 0:
		return 4
	}
	return f.HeaderSize
}

// payload returns n bytes that differ from frame to frame, so a frame read
// from the wrong offset does not compare equal.
func payload(i, n int) []byte {
	p := make([]byte, n)
	m := min(n, 1<<16)
	for j := range m {
		p[j] = byte(i*131 + j*7 + j>>8)
	}
	for k := m; k < n; k *= 2 {
		copy(p[k:], p[:k])
	}
	return p
}

// frame returns header and payload of one frame of f.
func frame(f framed.Format, p []byte) []byte {
	return append(header(f, uint64(len(p))), p...)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// readFrames reads frames with ReadFrame until an error, copying each.
func readFrames(r *framed.Reader) ([][]byte, error) {
	var frames [][]byte
	for {
		p, err := r.ReadFrame()
		if err != nil {
			return frames, err
		}
		frames = append(frames, bytes.Clone(p))
	}
}

// decodeFrames reads frames with f.Decode until an error.
func decodeFrames(f framed.Format, r *bufio.Reader) ([][]byte, error) {
	var frames [][]byte
	for {
		p, err := f.Decode(r)
		if err != nil {
			return frames, err
		}
		frames = append(frames, p)
	}
}

// assertFrames compares frames one by one, naming the first that differs
// without printing megabytes of payload.
func assertFrames(t *testing.T, want, got [][]byte, format string, args ...any) bool {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if !assert.Equal(t, len(want), len(got), "%s: frame count", msg) {
		return false
	}
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			return assert.Fail(t, "frame differs", "%s: frame %d: want %d bytes %.16x…, got %d bytes %.16x…",
				msg, i, len(want[i]), want[i], len(got[i]), got[i])
		}
	}
	return true
}

// timeoutError is what a net.Conn returns when a deadline passes.
var timeoutError = os.ErrDeadlineExceeded

// step is one thing a scriptReader does: hand out data (over as many reads
// as the caller's buffer needs), then return err once if it is not nil.
type step struct {
	data []byte
	err  error
}

// scriptReader plays a list of steps, then returns io.EOF.
type scriptReader struct{ steps []step }

func (s *scriptReader) Read(p []byte) (int, error) {
	for len(s.steps) > 0 {
		st := &s.steps[0]
		if len(st.data) > 0 {
			n := copy(p, st.data)
			st.data = st.data[n:]
			return n, nil
		}
		err := st.err
		s.steps = s.steps[1:]
		if err != nil {
			return 0, err
		}
	}
	return 0, io.EOF
}

// chunkReader returns the stream in chunks of random sizes from 1 to max.
type chunkReader struct {
	rest []byte
	rng  *rand.Rand
	max  int
}

func newChunkReader(b []byte, seed uint64, maxChunk int) *chunkReader {
	return &chunkReader{rest: b, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), max: maxChunk}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.rest) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), 1+c.rng.IntN(c.max), len(c.rest))
	copy(p, c.rest[:n])
	c.rest = c.rest[n:]
	return n, nil
}

// readerKinds deliver the same bytes in different read patterns.
type readerKind struct {
	name string
	wrap func([]byte) io.Reader
}

var readerKinds = []readerKind{
	{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"one byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"data with EOF", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	{"random chunks", func(b []byte) io.Reader { return newChunkReader(b, uint64(len(b)), 37) }},
}

// wantErr describes the error a test expects.
type wantErr struct {
	is       error                      // errors.Is target; io.EOF and io.ErrUnexpectedEOF must be returned as is
	tooLarge *framed.FrameTooLargeError // when set, the exact Size and Limit
	tooShort *framed.FrameTooShortError // when set, the exact Size and Min
}

var (
	wantEOF           = wantErr{is: io.EOF}
	wantUnexpectedEOF = wantErr{is: io.ErrUnexpectedEOF}
	wantInvalidLength = wantErr{is: framed.ErrInvalidLength}
)

func wantTooLarge(size uint64, limit int) wantErr {
	return wantErr{is: framed.ErrFrameTooLarge, tooLarge: &framed.FrameTooLargeError{Size: size, Limit: limit}}
}

func wantTooShort(size, minimum int) wantErr {
	return wantErr{is: framed.ErrFrameTooShort, tooShort: &framed.FrameTooShortError{Size: size, Min: minimum}}
}

func (w wantErr) String() string {
	if w.tooLarge != nil {
		return w.tooLarge.Error()
	}
	if w.tooShort != nil {
		return w.tooShort.Error()
	}
	return fmt.Sprint(w.is)
}

// checkErr asserts that err is the one w describes.
func checkErr(t *testing.T, w wantErr, err error, format string, args ...any) bool {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	switch {
	case w.is == io.EOF || w.is == io.ErrUnexpectedEOF:
		// Callers compare these with ==, as with the standard library.
		return assert.True(t, err == w.is, "%s: want %v, got %v", msg, w.is, err)
	case w.tooLarge != nil:
		var got *framed.FrameTooLargeError
		if !assert.ErrorAs(t, err, &got, msg) {
			return false
		}
		ok := assert.Equal(t, *w.tooLarge, *got, msg)
		ok = assert.ErrorIs(t, err, framed.ErrFrameTooLarge, msg) && ok
		ok = assert.NotErrorIs(t, err, framed.ErrInvalidLength, msg) && ok
		ok = assert.Contains(t, err.Error(), strconv.FormatUint(w.tooLarge.Size, 10), "%s: message names the size", msg) && ok
		return assert.Contains(t, err.Error(), strconv.Itoa(w.tooLarge.Limit), "%s: message names the limit", msg) && ok
	case w.tooShort != nil:
		var got *framed.FrameTooShortError
		if !assert.ErrorAs(t, err, &got, msg) {
			return false
		}
		ok := assert.Equal(t, *w.tooShort, *got, msg)
		ok = assert.ErrorIs(t, err, framed.ErrFrameTooShort, msg) && ok
		ok = assert.Contains(t, err.Error(), strconv.Itoa(w.tooShort.Size), "%s: message names the size", msg) && ok
		return assert.Contains(t, err.Error(), strconv.Itoa(w.tooShort.Min), "%s: message names the minimum", msg) && ok
	default:
		return assert.ErrorIs(t, err, w.is, msg)
	}
}

type decodeCase struct {
	name string
	give []byte
	want [][]byte // frames before the error
	err  wantErr
}

// slowReaderLimit is the largest stream worth reading a byte at a time.
const slowReaderLimit = 1 << 17

// readerKindsFor returns the reader kinds worth running over a stream of n
// bytes: reading megabytes a byte at a time tests nothing new, slowly.
func readerKindsFor(n int) []readerKind {
	if n <= slowReaderLimit {
		return readerKinds
	}
	var kinds []readerKind
	for _, rk := range readerKinds {
		if rk.name != "one byte" && rk.name != "random chunks" {
			kinds = append(kinds, rk)
		}
	}
	return kinds
}

// decodeCases returns, for f, every way a stream can end: cleanly, inside
// a header, inside a payload, or at a header that cannot be a length.
func decodeCases(f framed.Format) []decodeCase {
	limit := f.Limit()
	one := []byte("x")
	five := []byte("hello")
	tests := []decodeCase{
		{name: "empty stream", give: nil, err: wantEOF},
		{name: "empty frame", give: header(f, 0), want: [][]byte{{}}, err: wantEOF},
		{name: "one byte", give: frame(f, one), want: [][]byte{one}, err: wantEOF},
		{name: "two frames", give: concat(frame(f, five), frame(f, one)), want: [][]byte{five, one}, err: wantEOF},
		{name: "empty frames around one", give: concat(header(f, 0), frame(f, five), header(f, 0)), want: [][]byte{{}, five, {}}, err: wantEOF},
		{name: "header only", give: header(f, 5), err: wantUnexpectedEOF},
		{name: "truncated payload", give: frame(f, five)[:len(header(f, 5))+3], err: wantUnexpectedEOF},
		{name: "truncated payload after a frame", give: concat(frame(f, one), frame(f, five)[:len(header(f, 5))+1]), want: [][]byte{one}, err: wantUnexpectedEOF},
	}
	// The limit itself is common code: read megabytes for one format only.
	if limit <= slowReaderLimit || f == (framed.Format{}) {
		atLimit := payload(1, limit)
		tests = append(tests,
			decodeCase{name: "frame at limit", give: frame(f, atLimit), want: [][]byte{atLimit}, err: wantEOF},
			decodeCase{name: "truncated frame at limit", give: frame(f, atLimit)[:len(header(f, uint64(limit)))+limit-1], err: wantUnexpectedEOF},
		)
	}
	if h := header(f, 300); len(h) > 1 {
		tests = append(tests,
			decodeCase{name: "truncated header", give: h[:1], err: wantUnexpectedEOF},
			decodeCase{name: "truncated header after a frame", give: concat(frame(f, five), h[:len(h)-1]), want: [][]byte{five}, err: wantUnexpectedEOF},
		)
	}

	// Lengths above the limit, where the header can hold them.
	var capacity uint64
	switch headerWidth(f) {
	case 1:
		capacity = math.MaxUint8
	case 2:
		capacity = math.MaxUint16
	case 4:
		capacity = math.MaxInt32
	default:
		capacity = math.MaxInt64
	}
	if f.Varint {
		capacity = math.MaxUint64
	}
	if uint64(limit) < capacity {
		tests = append(tests,
			decodeCase{name: "limit+1", give: concat(header(f, uint64(limit)+1), payload(2, 16)), err: wantTooLarge(uint64(limit)+1, limit)},
			decodeCase{name: "largest length", give: header(f, capacity), err: wantTooLarge(capacity, limit)},
			decodeCase{name: "limit+1 after a frame", give: concat(frame(f, five), header(f, uint64(limit)+1)), want: [][]byte{five}, err: wantTooLarge(uint64(limit)+1, limit)},
		)
	}

	switch headerWidth(f) {
	case 4:
		tests = append(tests,
			decodeCase{name: "negative -1", give: header(f, math.MaxUint32), err: wantInvalidLength},
			decodeCase{name: "most negative", give: header(f, 1<<31), err: wantInvalidLength},
			decodeCase{name: "negative with payload", give: concat(header(f, 1<<31|5), five), err: wantInvalidLength},
			decodeCase{name: "negative after a frame", give: concat(frame(f, five), header(f, math.MaxUint32)), want: [][]byte{five}, err: wantInvalidLength},
		)
	case 8:
		tests = append(tests,
			decodeCase{name: "negative -1", give: header(f, math.MaxUint64), err: wantInvalidLength},
			decodeCase{name: "most negative", give: header(f, 1<<63), err: wantInvalidLength},
			decodeCase{name: "negative after a frame", give: concat(frame(f, five), header(f, 1<<63|5)), want: [][]byte{five}, err: wantInvalidLength},
		)
	case 0:
		tests = append(tests,
			decodeCase{name: "11-byte varint", give: bytes.Repeat([]byte{0xff}, 11), err: wantInvalidLength},
			decodeCase{name: "10 bytes that cannot end a varint", give: bytes.Repeat([]byte{0xff}, 10), err: wantInvalidLength},
			decodeCase{name: "varint overflow", give: append(bytes.Repeat([]byte{0xff}, 9), 0x02), err: wantInvalidLength},
			decodeCase{name: "10 continuation bytes", give: append(bytes.Repeat([]byte{0x80}, 10), 0x00), err: wantInvalidLength},
			decodeCase{name: "malformed varint after a frame", give: concat(frame(f, five), bytes.Repeat([]byte{0xff}, 11)), want: [][]byte{five}, err: wantInvalidLength},
			decodeCase{name: "truncated 9-byte varint", give: bytes.Repeat([]byte{0xff}, 9), err: wantUnexpectedEOF},
		)
	}
	return tests
}

func TestDecodeErrors(t *testing.T) {
	for _, nf := range testFormats {
		for _, tt := range decodeCases(nf.f) {
			for _, rk := range readerKindsFor(len(tt.give)) {
				t.Run(nf.name+"/"+tt.name+"/"+rk.name, func(t *testing.T) {
					br := bufio.NewReaderSize(rk.wrap(tt.give), 16)
					got, err := decodeFrames(nf.f, br)
					msg := fmt.Sprintf("Decode %s of %.24x… (%d bytes)", nf.name, tt.give, len(tt.give))
					assertFrames(t, tt.want, got, "%s", msg)
					for i, p := range got {
						assert.NotNil(t, p, "%s: frame %d is a frame, even if empty", msg, i)
					}
					checkErr(t, tt.err, err, "%s", msg)

					if nf.f == (framed.Format{}) {
						got, err := framed.Decode(bufio.NewReader(rk.wrap(tt.give)))
						if len(tt.want) > 0 {
							assert.Equal(t, tt.want[0], got, "package Decode of %.24x…", tt.give)
						} else {
							assert.Nil(t, got, "package Decode of %.24x…", tt.give)
							checkErr(t, tt.err, err, "package Decode of %.24x…", tt.give)
						}
					}
				})
			}
		}
	}
}

func TestReaderErrors(t *testing.T) {
	for _, nf := range testFormats {
		for _, tt := range decodeCases(nf.f) {
			for _, rk := range readerKindsFor(len(tt.give)) {
				t.Run(nf.name+"/"+tt.name+"/"+rk.name, func(t *testing.T) {
					r := framed.NewReader(rk.wrap(tt.give), nf.f)
					got, err := readFrames(r)
					msg := fmt.Sprintf("ReadFrame %s of %.24x… (%d bytes)", nf.name, tt.give, len(tt.give))
					assertFrames(t, tt.want, got, "%s", msg)
					checkErr(t, tt.err, err, "%s", msg)

					// The stream cannot go on after any of these errors.
					for range 2 {
						p, again := r.ReadFrame()
						assert.Nil(t, p, "%s: frame after the error", msg)
						assert.Equal(t, err, again, "%s: the error is sticky", msg)
					}
				})
			}
		}
	}
}

func TestEncode(t *testing.T) {
	for _, nf := range testFormats {
		limit := nf.f.Limit()
		sizes := []int{0, 1, 5, min(300, limit)}
		if limit <= slowReaderLimit || nf.f == (framed.Format{}) {
			sizes = append(sizes, limit)
		}
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/%d", nf.name, n), func(t *testing.T) {
				p := payload(n, n)
				want := frame(nf.f, p)

				got, err := nf.f.Encode(p)
				require.NoError(t, err, "Encode %s of %d bytes", nf.name, n)
				assert.Equal(t, want, got, "Encode %s of %d bytes", nf.name, n)

				prefix := []byte("prefix")
				got, err = nf.f.AppendFrame(prefix, p)
				require.NoError(t, err, "AppendFrame %s of %d bytes", nf.name, n)
				assert.Equal(t, concat([]byte("prefix"), want), got, "AppendFrame %s of %d bytes", nf.name, n)

				roomy := make([]byte, 3, 3+len(want))
				got, err = nf.f.AppendFrame(roomy, p)
				require.NoError(t, err, "AppendFrame %s of %d bytes", nf.name, n)
				assert.Same(t, &roomy[0], &got[0], "AppendFrame %s of %d bytes uses dst's room", nf.name, n)

				if nf.f == (framed.Format{}) {
					got, err := framed.Encode(p)
					require.NoError(t, err, "package Encode of %d bytes", n)
					assert.Equal(t, want, got, "package Encode of %d bytes", n)
					got, err = framed.AppendFrame(nil, p)
					require.NoError(t, err, "package AppendFrame of %d bytes", n)
					assert.Equal(t, want, got, "package AppendFrame of %d bytes", n)
				}
			})
		}
	}
}

// TestEncodeRefusesTooLarge checks that the encoder refuses what the
// decoder would refuse, and never truncates a length to fit the header.
func TestEncodeRefusesTooLarge(t *testing.T) {
	formats := append(testFormats, namedFormat{"u8,max=1000", framed.Format{HeaderSize: 1, MaxFrameSize: 1000}},
		namedFormat{"le16,max=1M", framed.Format{HeaderSize: 2, MaxFrameSize: 1 << 20}})
	for _, nf := range formats {
		t.Run(nf.name, func(t *testing.T) {
			limit := nf.f.Limit()
			p := make([]byte, limit+1)
			want := wantTooLarge(uint64(limit+1), limit)

			got, err := nf.f.Encode(p)
			checkErr(t, want, err, "Encode %s of limit+1 bytes", nf.name)
			assert.Nil(t, got, "Encode %s of limit+1 bytes", nf.name)

			dst := make([]byte, 4, 8)
			copy(dst, "keep")
			got, err = nf.f.AppendFrame(dst, p)
			checkErr(t, want, err, "AppendFrame %s of limit+1 bytes", nf.name)
			assert.Equal(t, []byte("keep"), got, "AppendFrame %s of limit+1 bytes returns dst unchanged", nf.name)
			assert.Equal(t, []byte("keep\x00\x00\x00\x00"), dst[:8], "AppendFrame %s of limit+1 bytes writes nothing into dst's room", nf.name)

			var out bytes.Buffer
			w := framed.NewWriter(&out, nf.f)
			checkErr(t, want, w.WriteFrame(p), "WriteFrame %s of limit+1 bytes", nf.name)
			require.NoError(t, w.WriteFrame([]byte("ok")), "the Writer %s stays usable after refusing a frame", nf.name)
			require.NoError(t, w.Flush(), "Flush %s", nf.name)
			assert.Equal(t, frame(nf.f, []byte("ok")), out.Bytes(), "WriteFrame %s of limit+1 bytes writes nothing", nf.name)
		})
	}
	t.Run("package Encode", func(t *testing.T) {
		got, err := framed.Encode(make([]byte, 4<<20+1))
		checkErr(t, wantTooLarge(4<<20+1, 4<<20), err, "Encode of 4 MiB+1")
		assert.Nil(t, got, "Encode of 4 MiB+1")
	})
}

// TestEncodeRefusalCostsNothing checks that refusing a large message does
// not first allocate room for it.
func TestEncodeRefusalCostsNothing(t *testing.T) {
	msg := make([]byte, 64<<20)
	allocated := measureAlloc(func() {
		_, err := framed.Encode(msg)
		require.ErrorIs(t, err, framed.ErrFrameTooLarge, "Encode of 64 MiB")
	})
	assert.Less(t, allocated, uint64(64<<10), "bytes allocated refusing Encode of 64 MiB")
}

// measureAlloc returns the bytes allocated while fn runs. Tests that use it
// do not run in parallel, so nothing else allocates much meanwhile.
func measureAlloc(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
