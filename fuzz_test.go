package framed_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/big"
	"slices"
	"testing"

	"github.com/framed-go/framed"
)

// fuzzFormats are the Formats FuzzDecode runs on every input, besides a
// random layout: each header width, both byte orders, varint, limits that
// bite, and the layouts of real protocols.
var fuzzFormats = []framed.Format{
	{},
	{HeaderSize: 1, MaxFrameSize: 100},
	{HeaderSize: 2, BigEndian: true},
	{HeaderSize: 8, BigEndian: true},
	{Varint: true},
	{MaxFrameSize: 1000},
	{Varint: true, MaxFrameSize: 300},
	{HeaderSize: 3, BigEndian: true, LengthAdjust: 6, MaxFrameSize: 16384 + 6}, // HTTP/2
	{LengthOffset: 4, BigEndian: true},                                         // zinx
	{LengthAdjust: 4},                                                          // easytcp
	{HeaderSize: 3, LengthAdjust: 1},                                           // MySQL
	{LengthOffset: 3, HeaderSize: 2, BigEndian: true},                          // TLS
	{BigEndian: true, LengthAdjust: -4, MaxFrameSize: 1000},                    // length counts itself
	{HeaderSize: 1, LengthOffset: 2, LengthAdjust: -3},                         // both, negative
}

// fuzzLayout turns a number into a valid Format of any layout: each length
// width, both byte orders, varint, 0 to 8 bytes before the length field,
// an adjustment from -16 to +16, and limits that bite. Zero is the default
// Format; 3 is the default with HeaderSize set.
func fuzzLayout(spec uint32) framed.Format {
	var f framed.Format
	if w := spec % 6; w == 5 {
		f.Varint = true
	} else {
		f.HeaderSize = [...]int{0, 1, 2, 4, 8}[w]
		if w == 0 && spec%12 >= 6 {
			f.HeaderSize = 3
		}
	}
	spec /= 12
	f.BigEndian = spec%2 == 1
	spec /= 2
	f.LengthOffset = int(spec % 9)
	spec /= 9
	if a := int(spec % 33); a <= 16 {
		f.LengthAdjust = a
	} else {
		f.LengthAdjust = 16 - a
	}
	spec /= 33
	f.MaxFrameSize = [...]int{0, 100, 1000, 70000}[spec%4]
	return f
}

// minFrame returns the shortest frame f can write.
func minFrame(f framed.Format) int { return f.LengthOffset + max(f.LengthAdjust, 0) }

// fuzzBufferSizes are the Reader buffer sizes the fuzzers try: the default,
// and small ones that send most frames down the big-frame path.
var fuzzBufferSizes = []int{framed.DefaultReadBufferSize, 64, 100}

// hostileSeeds are headers a decoder must refuse or wait on, in the default
// Format and others.
var hostileSeeds = [][]byte{
	{},
	{0xff, 0xff, 0xff, 0xff},                    // -1
	{0x00, 0x00, 0x00, 0x80},                    // most negative int32
	{0xff, 0xff, 0xff, 0x7f},                    // largest int32
	{0x01, 0x00, 0x40, 0x00},                    // 4 MiB + 1: the default limit + 1
	{0x00, 0x00, 0x40, 0x00},                    // 4 MiB, with no payload
	{0x05, 0x00, 0x00, 0x00, 'a', 'b'},          // truncated payload
	{0x05, 0x00},                                // truncated header
	bytes.Repeat([]byte{0xff}, 11),              // malformed varint
	append(bytes.Repeat([]byte{0xff}, 9), 0x7f), // varint overflow
	append(bytes.Repeat([]byte{0x80}, 9), 0x00), // non-minimal varint zero
	{0x80, 0x80, 0x80, 0x02},                    // varint 4 MiB
	{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80},
	{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
}

// validSeeds are well-formed streams of the default Format.
func validSeeds() [][]byte {
	var seeds [][]byte
	for _, sizes := range [][]int{{0}, {1}, {5, 0, 3}, {300, 1}, {20000, 5}, {70000}} {
		var stream []byte
		for i, n := range sizes {
			stream, _ = framed.AppendFrame(stream, payload(i, n))
		}
		seeds = append(seeds, stream)
	}
	return seeds
}

// refFrames decodes data by the wire format's rules, written out plainly
// and independently of the package: the frames, and the error the stream
// ends with.
func refFrames(f framed.Format, data []byte) ([][]byte, error) {
	limit := uint64(f.Limit())
	off := f.LengthOffset
	var frames [][]byte
	for {
		if len(data) == 0 {
			return frames, io.EOF
		}
		if len(data) < off {
			return frames, io.ErrUnexpectedEOF
		}
		prefix, field := data[:off], data[off:]
		var n uint64
		var hlen int
		if f.Varint {
			n, hlen = binary.Uvarint(field)
			switch {
			case hlen < 0, hlen == 0 && len(field) >= binary.MaxVarintLen64:
				// More than 10 bytes, or a 10th byte that is not the last
				// or holds more than the 64th bit: no byte that follows can
				// make it a length.
				return frames, framed.ErrInvalidLength
			case hlen == 0:
				return frames, io.ErrUnexpectedEOF
			}
		} else {
			hlen = headerWidth(f)
			if len(field) < hlen {
				return frames, io.ErrUnexpectedEOF
			}
			// The field's bytes, most significant first.
			be := bytes.Clone(field[:hlen])
			if !f.BigEndian {
				slices.Reverse(be)
			}
			for _, b := range be {
				n = n<<8 | uint64(b)
			}
			if (hlen == 4 && n > math.MaxInt32) || (hlen == 8 && n > math.MaxInt64) {
				return frames, framed.ErrInvalidLength
			}
		}
		// The frame: off bytes, then value+adj bytes after the field.
		after := new(big.Int).Add(new(big.Int).SetUint64(n), big.NewInt(int64(f.LengthAdjust)))
		if after.Sign() < 0 {
			return frames, framed.ErrInvalidLength
		}
		size := new(big.Int).Add(after, big.NewInt(int64(off)))
		if size.Cmp(new(big.Int).SetUint64(limit)) > 0 {
			claimed := uint64(math.MaxUint64)
			if size.IsUint64() {
				claimed = size.Uint64()
			}
			return frames, &framed.FrameTooLargeError{Size: claimed, Limit: int(limit)}
		}
		rest := int(after.Int64())
		if len(field)-hlen < rest {
			return frames, io.ErrUnexpectedEOF
		}
		frames = append(frames, append(bytes.Clone(prefix), field[hlen:hlen+rest]...))
		data = field[hlen+rest:]
	}
}

// sameErr reports whether got is the error want: the same value, or an
// equal *FrameTooLargeError.
func sameErr(want, got error) bool {
	var w, g *framed.FrameTooLargeError
	if errors.As(want, &w) && errors.As(got, &g) {
		return *w == *g
	}
	var ws, gs *framed.FrameTooShortError
	if errors.As(want, &ws) && errors.As(got, &gs) {
		return *ws == *gs
	}
	return want == got
}

// checkFrames fails t unless got and err are what refFrames gives, and
// every frame respects the limit in length and in capacity.
func checkFrames(t *testing.T, what string, f framed.Format, want [][]byte, wantErr error, got [][]byte, caps []int, err error) {
	t.Helper()
	if !sameErr(wantErr, err) {
		t.Fatalf("%s %+v: error %v, want %v (after %d frames)", what, f, err, wantErr, len(got))
	}
	if len(got) != len(want) {
		t.Fatalf("%s %+v: %d frames, want %d", what, f, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			t.Fatalf("%s %+v: frame %d is %x, want %x", what, f, i, got[i], want[i])
		}
		if limit := f.Limit(); len(got[i]) > limit || caps[i] > limit+framed.GrowChunk {
			t.Fatalf("%s %+v: frame %d of %d bytes with capacity %d, limit %d", what, f, i, len(got[i]), caps[i], limit)
		}
	}
}

// readAllFrames reads r to its first error, keeping copies of the frames
// and their capacities.
func readAllFrames(read func() ([]byte, error)) (frames [][]byte, caps []int, err error) {
	for {
		p, err := read()
		if err != nil {
			return frames, caps, err
		}
		frames = append(frames, bytes.Clone(p))
		caps = append(caps, cap(p))
	}
}

// FuzzDecode feeds arbitrary bytes to Reader and Decode: they never panic,
// agree with a plain reading of the wire format, return frames that
// re-encode to the bytes they came from, and never allocate for bytes that
// did not arrive.
func FuzzDecode(f *testing.F) {
	for _, seed := range append(hostileSeeds, validSeeds()...) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		formats := fuzzFormats
		if len(data) >= 4 {
			formats = append(formats[:len(formats):len(formats)], fuzzLayout(binary.LittleEndian.Uint32(data)))
		}
		allocated := measureAlloc(func() {
			for _, ff := range formats {
				want, wantErr := refFrames(ff, data)
				checkReencode(t, ff, data, want)
				for _, size := range fuzzBufferSizes[:2] {
					r := framed.NewReaderSize(bytes.NewReader(data), ff, size)
					got, caps, err := readAllFrames(r.ReadFrame)
					checkFrames(t, "ReadFrame", ff, want, wantErr, got, caps, err)
					if _, again := r.ReadFrame(); !sameErr(err, again) {
						t.Fatalf("ReadFrame %+v: error %v, then %v: not sticky", ff, err, again)
					}
				}
				br := bufio.NewReader(bytes.NewReader(data))
				got, caps, err := readAllFrames(func() ([]byte, error) { return ff.Decode(br) })
				checkFrames(t, "Decode", ff, want, wantErr, got, caps, err)
			}
		})
		// Three readers' buffers per Format, each at most one growth chunk
		// ahead of the bytes received, and copies of the frames: not the
		// 4 MiB a header can claim.
		if budget := uint64(300<<10*len(formats) + 64*len(formats)*len(data)); allocated > budget {
			t.Fatalf("decoding %d bytes allocated %d bytes, budget %d", len(data), allocated, budget)
		}
	})
}

// checkReencode checks that frames, read from the start of data, encode
// back to the bytes they were read from.
func checkReencode(t *testing.T, f framed.Format, data []byte, frames [][]byte) {
	t.Helper()
	off := 0
	for i, p := range frames {
		enc, err := f.Encode(p)
		if err != nil {
			t.Fatalf("Encode %+v of frame %d (%d bytes): %v", f, i, len(p), err)
		}
		if f.Varint {
			// A varint may be written with more bytes than it needs; the
			// decoder accepts that, as protobuf does, so compare values.
			lo := f.LengthOffset
			n, k := binary.Uvarint(data[off+lo:])
			want := uint64(len(p) - lo - f.LengthAdjust)
			if !bytes.Equal(data[off:off+lo], p[:lo]) || n != want ||
				!bytes.Equal(data[off+lo+k:off+k+len(p)], p[lo:]) {
				t.Fatalf("frame %d at %d does not re-encode: header %d bytes for %d, want %d", i, off, k, n, want)
			}
			off += k + len(p)
			continue
		}
		if !bytes.Equal(enc, data[off:off+len(enc)]) {
			t.Fatalf("Encode %+v of frame %d is %x, read from %x", f, i, enc, data[off:off+len(enc)])
		}
		off += len(enc)
	}
}

// fuzzMessages turns fuzz input into messages: one per byte of sizes (at
// most 64), most small, some large enough for the big-frame path, their
// bytes taken from data.
func fuzzMessages(data, sizes []byte) [][]byte {
	sizes = sizes[:min(len(sizes), 64)]
	msgs := make([][]byte, 0, len(sizes))
	off := 0
	for _, b := range sizes {
		n := int(b)
		if b >= 0xf0 {
			n = int(b-0xef) * 5000
		}
		msg := make([]byte, n)
		for j := range msg {
			if len(data) > 0 {
				msg[j] = data[(off+j)%len(data)]
			}
		}
		off += n
		msgs = append(msgs, msg)
	}
	return msgs
}

// FuzzRoundTrip encodes messages with AppendFrame, Encode and a Writer, and
// reads them back with Reader and Decode.
func FuzzRoundTrip(f *testing.F) {
	for i, spec := range layoutSeeds {
		f.Add([]byte("hello"), []byte{5, 0, 3}, spec)
		f.Add([]byte("abc"), []byte{1, 100, 101, 0xff, byte(i)}, spec)
	}
	f.Add([]byte("xyz"), []byte{0xf3, 3, 0xff, 0xf0, 7}, uint32(2))
	f.Add([]byte{0xff, 0x00}, []byte{0xfe, 200, 0xf1}, uint32(5))
	f.Add([]byte("v"), []byte{127, 128, 255, 0xf0}, uint32(5+6*2*2*9*33))
	f.Fuzz(func(t *testing.T, data, sizes []byte, spec uint32) {
		ff := fuzzLayout(spec)
		limit := ff.Limit()
		msgs := fuzzMessages(data, sizes)

		var stream []byte
		var kept [][]byte
		var out bytes.Buffer
		w := framed.NewWriter(&out, ff)
		for i, msg := range msgs {
			before := len(stream)
			var err error
			stream, err = ff.AppendFrame(stream, msg)
			enc, encErr := ff.Encode(msg)
			werr := w.WriteFrame(msg)
			var want error
			if len(msg) > limit {
				want = &framed.FrameTooLargeError{Size: uint64(len(msg)), Limit: limit}
			} else if m := minFrame(ff); len(msg) < m {
				want = &framed.FrameTooShortError{Size: len(msg), Min: m}
			}
			if want != nil {
				if !sameErr(want, err) || !sameErr(want, encErr) || !sameErr(want, werr) {
					t.Fatalf("%+v: message %d of %d bytes, limit %d: AppendFrame %v, Encode %v, WriteFrame %v", ff, i, len(msg), limit, err, encErr, werr)
				}
				if len(stream) != before || enc != nil {
					t.Fatalf("message %d of %d bytes, limit %d: refused but encoded", i, len(msg), limit)
				}
				continue
			}
			if err != nil || encErr != nil || werr != nil {
				t.Fatalf("message %d of %d bytes: AppendFrame %v, Encode %v, WriteFrame %v", i, len(msg), err, encErr, werr)
			}
			if !bytes.Equal(enc, stream[before:]) {
				t.Fatalf("message %d: Encode and AppendFrame differ", i)
			}
			kept = append(kept, msg)
		}
		if err := w.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		if !bytes.Equal(stream, out.Bytes()) {
			t.Fatalf("Writer and AppendFrame differ: %d and %d bytes", out.Len(), len(stream))
		}

		want, wantErr := refFrames(ff, stream)
		checkFrames(t, "wire format", ff, kept, io.EOF, want, make([]int, len(want)), wantErr)
		r := framed.NewReader(bytes.NewReader(stream), ff)
		got, caps, err := readAllFrames(r.ReadFrame)
		checkFrames(t, "ReadFrame", ff, kept, io.EOF, got, caps, err)
		br := bufio.NewReader(bytes.NewReader(stream))
		got, caps, err = readAllFrames(func() ([]byte, error) { return ff.Decode(br) })
		checkFrames(t, "Decode", ff, kept, io.EOF, got, caps, err)
	})
}

// layoutSeeds are fuzzLayout specs of layouts with offsets, 3-byte fields
// and adjustments either way.
var layoutSeeds = []uint32{
	6 + 12*(1+2*(4+9*0)),      // 3-byte BE, offset 4
	6 + 12*(1+2*(0+9*6)),      // 3-byte BE, adjust +6
	3 + 12*(1+2*(4+9*0)),      // 4-byte BE, offset 4 (zinx)
	3 + 12*(0+2*(0+9*4)),      // 4-byte LE, adjust +4 (easytcp)
	3 + 12*(1+2*(0+9*20)),     // 4-byte BE, adjust -4
	1 + 12*(0+2*(2+9*19)),     // 1-byte, offset 2, adjust -3
	5 + 12*(0+2*(3+9*18)),     // varint, offset 3, adjust -2
	2 + 12*(1+2*(3+9*(1+33))), // 2-byte BE, offset 3, adjust +1, limit 100
}

// cutReader returns a stream in the read sizes cuts gives, in turn: a cut
// of 0 is a timeout (when timeouts is set) or a 1-byte read, and a cut of
// 0xf0 or more is a large read. When the cuts run out the rest comes in
// one read.
type cutReader struct {
	rest     []byte
	cuts     []byte
	timeouts bool
}

func (c *cutReader) Read(p []byte) (int, error) {
	if len(c.rest) == 0 {
		return 0, io.EOF
	}
	n := len(c.rest)
	if len(c.cuts) > 0 {
		b := c.cuts[0]
		c.cuts = c.cuts[1:]
		switch {
		case b == 0 && c.timeouts:
			return 0, timeoutError
		case b == 0:
			n = 1
		case b >= 0xf0:
			n = int(b-0xef) * 4096
		default:
			n = int(b)
		}
	}
	n = copy(p, c.rest[:min(n, len(c.rest))])
	c.rest = c.rest[n:]
	return n, nil
}

// FuzzChunking checks that any split of a valid stream into reads, with
// timeouts anywhere, yields the same frames.
func FuzzChunking(f *testing.F) {
	f.Add([]byte{5, 0, 7}, []byte{1, 1, 1}, uint8(0), uint32(0))
	f.Add([]byte{100, 200, 0xff}, []byte{3, 0, 50, 0, 0xf2}, uint8(0), uint32(1))
	f.Add([]byte{0xff, 0xf5, 9}, []byte{0, 0xf0, 0, 1, 0xff, 0}, uint8(1), uint32(4))
	f.Add([]byte{1, 2, 3, 0, 0}, []byte{2}, uint8(2), uint32(5))
	f.Add([]byte{0xf1, 0xf1, 0xf1}, []byte{7, 0, 7, 0, 7}, uint8(2), uint32(0))
	for i, spec := range layoutSeeds {
		f.Add([]byte{9, 30, 0xf1, 12}, []byte{1, 0, 2, 0, 3, 1, 1}, uint8(i), spec)
	}
	f.Fuzz(func(t *testing.T, sizes, cuts []byte, choice uint8, spec uint32) {
		ff := fuzzLayout(spec)
		bufSize := fuzzBufferSizes[int(choice)%len(fuzzBufferSizes)]
		var stream []byte
		var want [][]byte
		for i, msg := range fuzzMessages(nil, sizes) {
			copy(msg, payload(i, len(msg)))
			if next, err := ff.AppendFrame(stream, msg); err == nil {
				stream, want = next, append(want, msg)
			}
		}

		r := framed.NewReaderSize(&cutReader{rest: stream, cuts: cuts, timeouts: true}, ff, bufSize)
		var got [][]byte
		var caps []int
		var err error
		for range len(cuts) + len(want) + 1 {
			var p []byte
			if p, err = r.ReadFrame(); err == nil {
				got, caps = append(got, bytes.Clone(p)), append(caps, cap(p))
			} else if !isTimeout(err) {
				break
			}
		}
		checkFrames(t, "ReadFrame", ff, want, io.EOF, got, caps, err)

		br := bufio.NewReader(&cutReader{rest: stream, cuts: cuts})
		got, caps, err = readAllFrames(func() ([]byte, error) { return ff.Decode(br) })
		checkFrames(t, "Decode", ff, want, io.EOF, got, caps, err)
	})
}

// TestFuzzLayout checks that every spec gives a valid Format, so the
// fuzzers never test a Format the package refuses, and that the specs
// reach every width, offset and adjustment.
func TestFuzzLayout(t *testing.T) {
	seen := map[[3]int]bool{}
	for spec := range uint32(12 * 2 * 9 * 33 * 4) {
		f := fuzzLayout(spec)
		if _, err := f.Encode(make([]byte, minFrame(f))); err != nil {
			t.Fatalf("fuzzLayout(%d) = %+v: Encode of a shortest frame: %v", spec, f, err)
		}
		width := headerWidth(f)
		seen[[3]int{width, f.LengthOffset, f.LengthAdjust}] = true
	}
	// 6 widths (varint is 0), 9 offsets, 33 adjustments.
	if len(seen) != 6*9*33 {
		t.Fatalf("fuzzLayout reaches %d layouts, want %d", len(seen), 6*9*33)
	}
}
