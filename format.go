package framed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// DefaultMaxFrameSize is the largest payload accepted when a [Format]'s
// MaxFrameSize is zero: 4 MiB, the same as gRPC's default receive limit.
const DefaultMaxFrameSize = 4 << 20

// maxUvarintLen is the longest valid unsigned varint header.
const maxUvarintLen = binary.MaxVarintLen64

var (
	// ErrInvalidLength is returned when a header cannot be a length: a
	// negative 4- or 8-byte length, or a malformed varint. The stream is
	// unusable after it: close the connection, do not try to resync.
	ErrInvalidLength = errors.New("framed: invalid frame length")

	// ErrFrameTooLarge matches (with [errors.Is]) every [*FrameTooLargeError].
	ErrFrameTooLarge = errors.New("framed: frame too large")

	// ErrInvalidFormat is returned when a [Format] has a header size other
	// than 0, 1, 2, 4 or 8, a varint header with a size, or a negative
	// MaxFrameSize.
	ErrInvalidFormat = errors.New("framed: invalid Format")
)

// FrameTooLargeError reports a frame whose length is above the limit. On
// reading it is detected from the header alone, before any payload is read
// or allocated, and the stream is unusable after it. On writing nothing is
// written.
type FrameTooLargeError struct {
	Size  uint64 // the length the header claims, or the payload's length
	Limit int    // the largest length allowed
}

// Error names the size and the limit.
func (e *FrameTooLargeError) Error() string {
	return "framed: frame of " + strconv.FormatUint(e.Size, 10) +
		" bytes exceeds limit of " + strconv.Itoa(e.Limit)
}

// Is reports whether target is [ErrFrameTooLarge].
func (e *FrameTooLargeError) Is(target error) bool { return target == ErrFrameTooLarge }

// Format describes how a frame's length is written. Its zero value is the
// default wire format: a 4-byte little-endian signed int32 length followed by
// that many payload bytes, at most [DefaultMaxFrameSize] of them.
//
// The same bytes as Netty's LengthFieldBasedFrameDecoder(LITTLE_ENDIAN, max,
// 0, 4, 0, 4, true) with LengthFieldPrepender(LITTLE_ENDIAN, 4). Most other
// peers (Netty's defaults, go-msgio, gRPC) use big-endian: set BigEndian.
//
// Both ends of a connection must use the same Format.
type Format struct {
	// HeaderSize is the width of the length prefix in bytes: 1, 2, 4 or 8.
	// Zero means 4. Lengths of 1- and 2-byte headers are unsigned; lengths
	// of 4- and 8-byte headers are signed, and a negative one is
	// [ErrInvalidLength].
	HeaderSize int

	// Varint selects an unsigned varint length prefix (as in protobuf's
	// delimited streams) instead of a fixed-width one. HeaderSize must be 0
	// and BigEndian is ignored.
	Varint bool

	// BigEndian selects network byte order for fixed-width headers. False
	// means little-endian.
	BigEndian bool

	// MaxFrameSize is the largest payload accepted, in bytes. Zero means
	// [DefaultMaxFrameSize]. The limit is also capped at what the header can
	// hold (255 for a 1-byte header, 65535 for a 2-byte one).
	MaxFrameSize int
}

// check reports whether f is usable.
func (f Format) check() error {
	switch {
	case f.MaxFrameSize < 0:
		return fmt.Errorf("%w: MaxFrameSize %d is negative", ErrInvalidFormat, f.MaxFrameSize)
	case f.Varint && f.HeaderSize != 0:
		return fmt.Errorf("%w: Varint with HeaderSize %d", ErrInvalidFormat, f.HeaderSize)
	}
	switch f.HeaderSize {
	case 0, 1, 2, 4, 8:
		return nil
	}
	return fmt.Errorf("%w: HeaderSize %d is not 1, 2, 4 or 8", ErrInvalidFormat, f.HeaderSize)
}

// headerSize returns the fixed header width, or 0 for varint.
func (f Format) headerSize() int {
	if f.Varint {
		return 0
	}
	if f.HeaderSize == 0 {
		return 4
	}
	return f.HeaderSize
}

// maxHeaderSize returns the most bytes a header can take.
func (f Format) maxHeaderSize() int {
	if f.Varint {
		return maxUvarintLen
	}
	return f.headerSize()
}

// Limit returns the largest payload f accepts: MaxFrameSize, or
// [DefaultMaxFrameSize] when it is zero, capped at what the header can hold.
func (f Format) Limit() int {
	limit := f.MaxFrameSize
	if limit == 0 {
		limit = DefaultMaxFrameSize
	}
	var capacity uint64
	switch f.headerSize() {
	case 0, 8:
		capacity = math.MaxInt64
	case 1:
		capacity = math.MaxUint8
	case 2:
		capacity = math.MaxUint16
	case 4:
		capacity = math.MaxInt32
	}
	if uint64(limit) > capacity {
		return int(capacity)
	}
	return limit
}

// appendHeader appends the header for a payload of n bytes, which the
// caller has checked against the limit.
func (f Format) appendHeader(dst []byte, n int) []byte {
	if f.Varint {
		return binary.AppendUvarint(dst, uint64(n))
	}
	var order binary.AppendByteOrder = binary.LittleEndian
	if f.BigEndian {
		order = binary.BigEndian
	}
	switch f.headerSize() {
	case 1:
		return append(dst, byte(n))
	case 2:
		return order.AppendUint16(dst, uint16(n))
	case 8:
		return order.AppendUint64(dst, uint64(n))
	default:
		return order.AppendUint32(dst, uint32(n))
	}
}

// appendHead appends to dst the bytes of p's frame that go before the part
// of p written as it is, and returns that part. With the header in front
// of the payload, that is the header and all of p. Writers that send a
// large p without copying it use appendHead for what precedes it; the
// caller has checked p against the limit.
func (f Format) appendHead(dst, p []byte) (head, body []byte) {
	return f.appendHeader(dst, len(p)), p
}

// checkWrite reports whether a frame of n bytes can be written with limit:
// nil, or a [*FrameTooLargeError].
func (f Format) checkWrite(n, limit int) error {
	if n > limit {
		return &FrameTooLargeError{Size: uint64(n), Limit: limit}
	}
	return nil
}

// errNeedMore is parseHeader's signal that b holds only part of a header.
var errNeedMore = errors.New("framed: need more header bytes")

// parseHeader reads a header from the start of b. It returns the payload
// length and the header's width, errNeedMore when b is a header's prefix,
// [ErrInvalidLength], or a [*FrameTooLargeError] for a length above limit.
func (f Format) parseHeader(b []byte, limit int) (n, hlen int, err error) {
	var size uint64
	if f.Varint {
		v, k := binary.Uvarint(b)
		switch {
		case k == 0 && len(b) < maxUvarintLen:
			return 0, 0, errNeedMore
		case k <= 0:
			return 0, 0, ErrInvalidLength
		}
		size, hlen = v, k
	} else {
		hlen = f.headerSize()
		if len(b) < hlen {
			return 0, 0, errNeedMore
		}
		var order binary.ByteOrder = binary.LittleEndian
		if f.BigEndian {
			order = binary.BigEndian
		}
		switch hlen {
		case 1:
			size = uint64(b[0])
		case 2:
			size = uint64(order.Uint16(b))
		case 4:
			v := int32(order.Uint32(b))
			if v < 0 {
				return 0, 0, ErrInvalidLength
			}
			size = uint64(v)
		case 8:
			v := int64(order.Uint64(b))
			if v < 0 {
				return 0, 0, ErrInvalidLength
			}
			size = uint64(v)
		}
	}
	if size > uint64(limit) {
		return 0, 0, &FrameTooLargeError{Size: size, Limit: limit}
	}
	return int(size), hlen, nil
}
