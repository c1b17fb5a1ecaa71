package framed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// DefaultMaxFrameSize is the largest frame accepted when a [Format]'s
// MaxFrameSize is zero: 4 MiB, the same as gRPC's default receive limit. A
// frame is counted without its length field, as [Format] defines it: the
// payload, or with a layout the payload and the other header fields.
const DefaultMaxFrameSize = 4 << 20

// maxUvarintLen is the longest valid unsigned varint header.
const maxUvarintLen = binary.MaxVarintLen64

var (
	// ErrInvalidLength is returned when a header cannot be a length: a
	// negative 4- or 8-byte length, a malformed varint, or a length that a
	// [Format]'s LengthAdjust makes negative. The stream is unusable after
	// it: close the connection, do not try to resync.
	ErrInvalidLength = errors.New("framed: invalid frame length")

	// ErrFrameTooLarge matches (with [errors.Is]) every [*FrameTooLargeError].
	ErrFrameTooLarge = errors.New("framed: frame too large")

	// ErrFrameTooShort matches (with [errors.Is]) every [*FrameTooShortError].
	ErrFrameTooShort = errors.New("framed: frame too short for its Format")

	// ErrInvalidFormat is returned wherever an invalid [Format] is used;
	// Format's doc, under Validity, lists what makes one invalid.
	ErrInvalidFormat = errors.New("framed: invalid Format")
)

// FrameTooLargeError reports a frame whose length is above the limit. On
// reading it is detected from the header alone, before any payload is read
// or allocated, and the stream is unusable after it. On writing nothing is
// written.
type FrameTooLargeError struct {
	Size  uint64 // the frame length the header claims, or the written frame's length
	Limit int    // the largest length allowed
}

// Error names the size and the limit.
func (e *FrameTooLargeError) Error() string {
	return "framed: frame of " + strconv.FormatUint(e.Size, 10) +
		" bytes exceeds limit of " + strconv.Itoa(e.Limit)
}

// Is reports whether target is [ErrFrameTooLarge].
func (e *FrameTooLargeError) Is(target error) bool { return target == ErrFrameTooLarge }

// FrameTooShortError reports a frame that a [Format] cannot write because
// it is shorter than the fields the layout puts around the length: the
// LengthOffset bytes before the length field, and at least LengthAdjust
// bytes after it when LengthAdjust is positive. Nothing is written.
type FrameTooShortError struct {
	Size int // the frame's length
	Min  int // the shortest frame the Format can write
}

// Error names the size and the minimum.
func (e *FrameTooShortError) Error() string {
	return "framed: frame of " + strconv.Itoa(e.Size) +
		" bytes is shorter than the " + strconv.Itoa(e.Min) + " bytes of its layout's header fields"
}

// Is reports whether target is [ErrFrameTooShort].
func (e *FrameTooShortError) Is(target error) bool { return target == ErrFrameTooShort }

// maxLengthOffset is the largest LengthOffset: the bytes before the length
// field are buffered before the length is known, so they are kept small.
const maxLengthOffset = 1024

// maxLengthAdjust bounds LengthAdjust either way, so that no sum of a
// length, an offset and an adjustment can overflow.
const maxLengthAdjust = math.MaxInt32

// Format describes how a frame's length is written. Its zero value is the
// default wire format: a 4-byte little-endian signed int32 length followed by
// that many payload bytes, at most [DefaultMaxFrameSize] of them.
//
// The same bytes as Netty's LengthFieldBasedFrameDecoder(LITTLE_ENDIAN, max,
// 0, 4, 0, 4, true) with LengthFieldPrepender(LITTLE_ENDIAN, 4). Most other
// peers (Netty's defaults, go-msgio, gRPC) use big-endian: set BigEndian.
//
// Both ends of a connection must use the same Format.
//
// # Layouts
//
// LengthOffset and LengthAdjust describe protocols whose header has more
// than a length, with the knobs of Netty's LengthFieldBasedFrameDecoder
// (lengthFieldOffset, lengthAdjustment) and tokio-util's
// LengthDelimitedCodec. On the wire a frame is
//
//	+---------------------+--------------+-------------------------------+
//	| LengthOffset bytes  | length field | length + LengthAdjust bytes   |
//	+---------------------+--------------+-------------------------------+
//
// A frame as [Reader.ReadFrame] returns it, and as [Writer.WriteFrame]
// takes it, is those bytes without the length field: the LengthOffset
// bytes before it followed by everything after it. A handler thus sees a
// protocol's other header fields (zinx's message ID, the type and stream ID
// of an HTTP/2 frame) and the writer fills in the length field from the
// frame's length. With LengthOffset and LengthAdjust zero, the frame is the
// payload. MaxFrameSize bounds the frame's length so defined.
//
// A length that LengthAdjust makes negative is [ErrInvalidLength] on
// reading. A writer refuses a frame longer than the limit (a
// [*FrameTooLargeError], which also covers a length the field cannot hold)
// and one shorter than the fields around the length (a
// [*FrameTooShortError]). Some layouts, as one-line Formats:
//
//	zinx (msgID u32, length u32 BE)    Format{LengthOffset: 4, BigEndian: true}
//	easytcp (length u32 LE, id u32)    Format{LengthAdjust: 4}
//	gRPC (flag u8, length u32 BE)      Format{LengthOffset: 1, BigEndian: true}
//	HTTP/2 (length u24 BE, 6 bytes)    Format{HeaderSize: 3, BigEndian: true, LengthAdjust: 6, MaxFrameSize: 16384 + 6}
//	MySQL (length u24 LE, sequence)    Format{HeaderSize: 3, LengthAdjust: 1}
//	TLS (type, version, length u16 BE) Format{LengthOffset: 3, HeaderSize: 2, BigEndian: true}
//	length counts itself (u32 BE)      Format{BigEndian: true, LengthAdjust: -4}
//
// # Validity
//
// A Format is invalid, and every use of it is an error matching
// [ErrInvalidFormat], when HeaderSize is not 0, 1, 2, 3, 4 or 8; when
// Varint is set with a HeaderSize; when MaxFrameSize is negative, or below
// the bytes of the header fields (LengthOffset, plus LengthAdjust when it
// is positive); when LengthOffset is outside 0 to 1024; when LengthAdjust
// is beyond ±(2³¹-1); or when a negative LengthAdjust leaves no length
// that the field can hold.
type Format struct {
	// HeaderSize is the width of the length field in bytes: 1, 2, 3, 4 or
	// 8. Zero means 4. Lengths of 1-, 2- and 3-byte fields are unsigned;
	// lengths of 4- and 8-byte fields are signed, and a negative one is
	// [ErrInvalidLength].
	HeaderSize int

	// Varint selects an unsigned varint length prefix (as in protobuf's
	// delimited streams) instead of a fixed-width one. HeaderSize must be 0
	// and BigEndian is ignored.
	Varint bool

	// BigEndian selects network byte order for fixed-width headers. False
	// means little-endian.
	BigEndian bool

	// MaxFrameSize is the largest frame accepted, in bytes: the payload
	// when LengthOffset and LengthAdjust are zero. Zero means
	// [DefaultMaxFrameSize]. The limit is also capped at what the length
	// field can describe (255 for a 1-byte field, 65535 for a 2-byte one,
	// plus LengthOffset and LengthAdjust).
	MaxFrameSize int

	// LengthOffset is the number of bytes before the length field, at most
	// 1024: they are the first bytes of every frame. Zero means the length
	// field comes first.
	LengthOffset int

	// LengthAdjust is added to the length field's value to give the number
	// of bytes after the field, as Netty's lengthAdjustment: positive when
	// fields between the length and the payload are not counted (easytcp's
	// message ID: +4), negative when the length counts itself (-4 for a
	// 4-byte field). Zero means the length counts exactly the bytes after
	// it.
	LengthAdjust int
}

// check reports whether f is usable.
func (f Format) check() error {
	switch {
	case f.MaxFrameSize < 0:
		return fmt.Errorf("%w: MaxFrameSize %d is negative", ErrInvalidFormat, f.MaxFrameSize)
	case f.Varint && f.HeaderSize != 0:
		return fmt.Errorf("%w: Varint with HeaderSize %d", ErrInvalidFormat, f.HeaderSize)
	case f.LengthOffset < 0 || f.LengthOffset > maxLengthOffset:
		return fmt.Errorf("%w: LengthOffset %d is not between 0 and %d", ErrInvalidFormat, f.LengthOffset, maxLengthOffset)
	case f.LengthAdjust < -maxLengthAdjust || f.LengthAdjust > maxLengthAdjust:
		return fmt.Errorf("%w: LengthAdjust %d is beyond ±%d", ErrInvalidFormat, f.LengthAdjust, maxLengthAdjust)
	}
	switch f.HeaderSize {
	case 0, 1, 2, 3, 4, 8:
	default:
		return fmt.Errorf("%w: HeaderSize %d is not 1, 2, 3, 4 or 8", ErrInvalidFormat, f.HeaderSize)
	}
	if f.LengthAdjust < 0 && f.capacity() < uint64(-f.LengthAdjust) {
		return fmt.Errorf("%w: LengthAdjust %d leaves no length a %d-byte field can hold",
			ErrInvalidFormat, f.LengthAdjust, f.headerSize())
	}
	if f.MaxFrameSize != 0 && f.MaxFrameSize < f.minFrame() {
		return fmt.Errorf("%w: MaxFrameSize %d is below the %d bytes of the header fields",
			ErrInvalidFormat, f.MaxFrameSize, f.minFrame())
	}
	return nil
}

// headerSize returns the fixed length field width, or 0 for varint.
func (f Format) headerSize() int {
	if f.Varint {
		return 0
	}
	if f.HeaderSize == 0 {
		return 4
	}
	return f.HeaderSize
}

// maxHeaderSize returns the most bytes a frame adds on the wire beyond its
// length as a writer takes it: the length field's width.
func (f Format) maxHeaderSize() int {
	if f.Varint {
		return maxUvarintLen
	}
	return f.headerSize()
}

// capacity returns the largest value the length field can hold.
func (f Format) capacity() uint64 {
	switch f.headerSize() {
	case 1:
		return math.MaxUint8
	case 2:
		return math.MaxUint16
	case 3:
		return 1<<24 - 1
	case 4:
		return math.MaxInt32
	}
	return math.MaxInt64
}

// minFrame returns the length of the shortest frame f can write: the bytes
// before the length field and the bytes after it that the length does not
// count.
func (f Format) minFrame() int {
	return f.LengthOffset + max(f.LengthAdjust, 0)
}

// Limit returns the largest frame f accepts: MaxFrameSize, or
// [DefaultMaxFrameSize] when it is zero, capped at the longest frame the
// length field can describe.
func (f Format) Limit() int {
	limit := f.MaxFrameSize
	if limit == 0 {
		limit = DefaultMaxFrameSize
	}
	most := f.capacity() // the longest frame: LengthOffset + capacity + LengthAdjust
	if f.LengthAdjust < 0 {
		most -= min(most, uint64(-f.LengthAdjust))
	} else {
		most += uint64(f.LengthAdjust)
	}
	most += uint64(max(f.LengthOffset, 0))
	if uint64(limit) > most {
		return int(most)
	}
	return limit
}

// lengthField is a Format's length field as the hot paths use it: few
// enough words that a call passes it, a slice and a length in registers
// (a whole Format, with a slice and a length, would not fit, and the
// default Format's Reader and Writer would be twice as slow).
type lengthField struct {
	width int  // 1, 2, 3, 4 or 8 bytes; 0 for a varint
	big   bool // big-endian
	off   int  // LengthOffset
	adj   int  // LengthAdjust
}

// field returns f's lengthField.
func (f Format) field() lengthField {
	return lengthField{width: f.headerSize(), big: f.BigEndian, off: f.LengthOffset, adj: f.LengthAdjust}
}

// append appends the length field of a frame of n bytes.
func (lf lengthField) append(dst []byte, n int) []byte {
	v := uint64(n - lf.off - lf.adj)
	switch lf.width {
	case 0:
		return binary.AppendUvarint(dst, v)
	case 4:
		if lf.big {
			return binary.BigEndian.AppendUint32(dst, uint32(v))
		}
		return binary.LittleEndian.AppendUint32(dst, uint32(v))
	case 1:
		return append(dst, byte(v))
	case 2:
		if lf.big {
			return binary.BigEndian.AppendUint16(dst, uint16(v))
		}
		return binary.LittleEndian.AppendUint16(dst, uint16(v))
	case 3:
		if lf.big {
			return append(dst, byte(v>>16), byte(v>>8), byte(v))
		}
		return append(dst, byte(v), byte(v>>8), byte(v>>16))
	}
	if lf.big {
		return binary.BigEndian.AppendUint64(dst, v)
	}
	return binary.LittleEndian.AppendUint64(dst, v)
}

// appendHead appends to dst the bytes of p's frame that go before the part
// of p written as it is, and returns that part: the length field and all
// of p, or, when there are bytes before the length field, those first
// LengthOffset bytes of p, the length field, and the rest of p. Writers
// that send a large p without copying it use appendHead for what precedes
// it; the caller has checked p with checkWrite.
func (f Format) appendHead(dst, p []byte) (head, body []byte) {
	return f.field().append(append(dst, p[:f.LengthOffset]...), len(p)), p[f.LengthOffset:]
}

// checkWrite reports whether a frame of n bytes can be written with limit:
// nil, a [*FrameTooLargeError] for a frame longer than limit (which
// Limit caps at the longest frame the length field can describe), or a
// [*FrameTooShortError] for one shorter than the fields around the length
// (which would make the length negative).
func (f Format) checkWrite(n, limit int) error {
	if n > limit {
		return &FrameTooLargeError{Size: uint64(n), Limit: limit}
	}
	if n < f.LengthOffset+max(f.LengthAdjust, 0) {
		return &FrameTooShortError{Size: n, Min: f.minFrame()}
	}
	return nil
}

// errNeedMore is parseHeader's signal that b holds only part of a header.
var errNeedMore = errors.New("framed: need more header bytes")

// parse reads a header, the LengthOffset bytes and the length field,
// from the start of b. It returns the frame's length (as ReadFrame returns
// it, without the length field) and the length field's width, errNeedMore
// when b is a header's prefix, [ErrInvalidLength], or a
// [*FrameTooLargeError] for a frame longer than limit. The frame takes
// hlen+n bytes on the wire.
func (lf lengthField) parse(b []byte, limit int) (n, hlen int, err error) {
	off := lf.off
	if len(b) < off {
		return 0, 0, errNeedMore
	}
	b = b[off:]
	var size uint64
	switch hlen = lf.width; hlen {
	case 0:
		v, k := binary.Uvarint(b)
		switch {
		case k == 0 && len(b) < maxUvarintLen:
			return 0, 0, errNeedMore
		case k <= 0:
			return 0, 0, ErrInvalidLength
		}
		size, hlen = v, k
	case 4:
		if len(b) < 4 {
			return 0, 0, errNeedMore
		}
		var v int32
		if lf.big {
			v = int32(binary.BigEndian.Uint32(b))
		} else {
			v = int32(binary.LittleEndian.Uint32(b))
		}
		if v < 0 {
			return 0, 0, ErrInvalidLength
		}
		size = uint64(v)
	default:
		if len(b) < hlen {
			return 0, 0, errNeedMore
		}
		var order binary.ByteOrder = binary.LittleEndian
		if lf.big {
			order = binary.BigEndian
		}
		switch hlen {
		case 1:
			size = uint64(b[0])
		case 2:
			size = uint64(order.Uint16(b))
		case 3:
			if lf.big {
				size = uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])
			} else {
				size = uint64(b[2])<<16 | uint64(b[1])<<8 | uint64(b[0])
			}
		case 8:
			v := int64(order.Uint64(b))
			if v < 0 {
				return 0, 0, ErrInvalidLength
			}
			size = uint64(v)
		}
	}
	if adj := lf.adj; adj != 0 || off != 0 {
		if adj < 0 {
			if size < uint64(-adj) {
				return 0, 0, ErrInvalidLength
			}
			size -= uint64(-adj)
		} else {
			size = addSat(size, uint64(adj))
		}
		size = addSat(size, uint64(off))
	}
	if size > uint64(limit) {
		return 0, 0, &FrameTooLargeError{Size: size, Limit: limit}
	}
	return int(size), hlen, nil
}

// addSat returns a+b, or the largest uint64 if that overflows.
func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint64
}
