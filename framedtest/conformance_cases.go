package framedtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"syscall"

	"github.com/framed-go/framed"
)

// Reasons shared by several cases.
const (
	whyEcho   = "the echo of a frame is the whole frame: a server that cannot echo it cannot serve it"
	whyStream = "TCP is a byte stream: it merges and splits writes anywhere, so a server must find frames by their headers, not by its reads"
	whyLimit  = "a length is claimed by the peer: a server that believes it can be made to hold memory by one header, and replies owed for earlier frames must not be lost"
	whyShare  = "one peer must not hold up the others"
)

func cases() []ConformanceCase {
	return []ConformanceCase{
		{ID: "1.1", Title: "an empty frame is echoed as an empty frame", Level: Required, Reason: "a length of 0 is valid: " + whyEcho,
			run: func(e *env) error { return e.echoSizes(0) }},
		{ID: "1.2", Title: "a frame of 1 byte is echoed", Level: Required, Reason: whyEcho,
			run: func(e *env) error { return e.echoSizes(1) }},
		{ID: "1.3", Title: "frames of 255 and 256 bytes are echoed", Level: Required, Reason: "the edge of one length byte: " + whyEcho,
			run: func(e *env) error { return e.echoSizes(255, 256) }},
		{ID: "1.4", Title: "frames of 65535 and 65536 bytes are echoed", Level: Required, Reason: "the edge of two length bytes, and more than one read of 64 KiB: " + whyEcho,
			run: func(e *env) error { return e.echoSizes(65535, 65536) }},
		{ID: "1.5", Title: "a frame of exactly the limit is echoed", Level: Required, Reason: "the limit is the largest frame accepted, not the first refused",
			run: func(e *env) error { return e.echoSizes(e.limit) }},

		{ID: "2.1", Title: "1,000 frames in one write are echoed, each once, in order", Level: Required, Reason: whyStream,
			run: caseManyInOneWrite},
		{ID: "2.2", Title: "frames cut at random points, headers included, are echoed whole", Level: Required, Reason: whyStream,
			run: caseRandomSplits},
		{ID: "2.3", Title: "a frame sent one byte per write is echoed once, whole", Level: Required, Reason: whyStream + "; nothing may be echoed before the frame's last byte",
			run: caseOneBytePerWrite},

		{ID: "3.1", Title: "a frame of limit+1 ends the connection with no reply, after the replies to the frames before it", Level: Required, Reason: whyLimit,
			run: caseTooLarge},
		{ID: "3.2", Title: "an invalid length (negative, or an overflowing varint) ends the connection with no reply, after the replies to the frames before it", Level: Required, Reason: "a length that cannot be a size must not be taken as one, and replies owed for earlier frames must not be lost",
			run: caseInvalidLength},
		{ID: "3.3", Title: "a truncated frame then EOF: the frames before it are echoed, nothing of it, then the connection ends", Level: Required, Reason: "part of a frame is not a frame: a server must never answer one",
			run: caseTruncated},
		{ID: "3.4", Title: "the header of a frame of limit+1, alone, ends the connection", Level: Recommended, Reason: "refusing from the header alone keeps memory to the bytes received; a server that reads and drops the payload first is slower to refuse, but safe",
			run: caseTooLargeHeaderAlone},

		{ID: "4.1", Title: "a half-close after the last frame gets every reply, then EOF", Level: Required, Reason: "clients that send a batch and then shut down writing (nc -N, framecat) must get every reply owed",
			run: caseHalfClose},
		{ID: "4.2", Title: "1,000 quick connect/close cycles (some mid-frame, some reset) leave the server serving", Level: Required, Reason: "a peer that goes away, however abruptly, must cost the server nothing that lasts",
			run: caseChurn},
		{ID: "4.3", Title: "after a bad header with more bytes behind it, the connection ends with EOF, not a reset", Level: Recommended, Reason: "closing with unread input sends a TCP RST, which can make the peer's system drop replies it has not read yet",
			run: caseCleanEnd},

		{ID: "5.1", Title: "64 connections at once each get their own replies", Level: Required, Reason: whyShare + "; replies must go to the connection that sent the frame",
			run: caseManyConns},
		{ID: "5.2", Title: "a connection stalled in the middle of a header does not block other connections", Level: Required, Reason: whyShare,
			run: caseStalledHeader},
		{ID: "5.3", Title: "a client that writes without reading gets every reply once it reads", Level: Required, Reason: "when the client reads slowly the server must wait (backpressure), not drop replies or the connection",
			run: caseBackpressure},
	}
}

// payload returns n bytes that differ from frame to frame, so that a reply
// sent to the wrong frame or connection shows.
func payload(id uint64, n int) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], id)
	binary.LittleEndian.PutUint64(seed[8:], uint64(n))
	p := make([]byte, n)
	rand.NewChaCha8(seed).Read(p)
	return p
}

// frame encodes p in the server's Format.
func (e *env) frame(dst, p []byte) []byte {
	out, err := e.f.AppendFrame(dst, p)
	if err != nil {
		panic(fmt.Sprintf("framedtest: conformance frame of %d bytes: %v", len(p), err)) // callers keep to the limit
	}
	return out
}

// header encodes a length of n, which may be more than the limit allows,
// and reports false when the Format cannot hold n.
func (e *env) header(n uint64) ([]byte, bool) {
	if e.f.Varint {
		return binary.AppendUvarint(nil, n), true
	}
	size := e.f.HeaderSize
	if size == 0 {
		size = 4
	}
	var order binary.AppendByteOrder = binary.LittleEndian
	if e.f.BigEndian {
		order = binary.BigEndian
	}
	switch size {
	case 1:
		return []byte{byte(n)}, n <= math.MaxUint8
	case 2:
		return order.AppendUint16(nil, uint16(n)), n <= math.MaxUint16
	case 4:
		return order.AppendUint32(nil, uint32(n)), n <= math.MaxInt32
	default:
		return order.AppendUint64(nil, n), n <= math.MaxInt64
	}
}

// invalidHeader returns a header no length can be read from: a negative
// length for 4- and 8-byte headers, an overflowing varint. 1- and 2-byte
// headers are unsigned: every header is valid.
func (e *env) invalidHeader() ([]byte, bool) {
	switch {
	case e.f.Varint:
		return append(bytes.Repeat([]byte{0xff}, 9), 0x02), true
	case e.f.HeaderSize == 0 || e.f.HeaderSize == 4:
		return []byte{0xff, 0xff, 0xff, 0xff}, true
	case e.f.HeaderSize == 8:
		return bytes.Repeat([]byte{0xff}, 8), true
	}
	return nil, false
}

// reader reads the server's replies; a reply above the limit is an error.
func (e *env) reader(c net.Conn) *framed.Reader {
	return framed.NewReader(c, e.f)
}

// expectFrame reads one reply and compares it with want.
func expectFrame(r *framed.Reader, what string, want []byte) error {
	got, err := r.ReadFrame()
	if err != nil {
		return fmt.Errorf("%s: no reply: %w", what, explain(err))
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: the reply differs: %s", what, HexDiff(got, want))
	}
	return nil
}

// expectConnEnd reads after the replies owed and fails unless the connection
// ends there: EOF or a reset, with no byte more.
func expectConnEnd(r *framed.Reader, what string) error {
	got, err := r.ReadFrame()
	switch {
	case err == nil:
		return fmt.Errorf("%s: got a reply of %d bytes where the connection should end", what, len(got))
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: part of a reply arrived, then the connection ended", what)
	case errors.Is(err, framed.ErrFrameTooLarge), errors.Is(err, framed.ErrInvalidLength):
		return fmt.Errorf("%s: a reply whose header no conforming server sends (%v) came where the connection should end", what, err)
	}
	return fmt.Errorf("%s: the connection did not end: %w", what, explain(err))
}

// explain words a read error, a timeout above all.
func explain(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("nothing within the case's time (%w)", err)
	}
	return err
}

// echoSizes sends frames of the given sizes on one connection, one at a
// time, and checks each echo. Sizes above the limit are left out.
func (e *env) echoSizes(sizes ...int) error {
	var fit []int
	for _, n := range sizes {
		if n <= e.limit {
			fit = append(fit, n)
		}
	}
	if len(fit) == 0 {
		return skipError(fmt.Sprintf("sizes %v are above the limit of %d", sizes, e.limit))
	}
	if len(fit) < len(sizes) {
		e.note = fmt.Sprintf("sizes above the limit of %d left out", e.limit)
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	r := e.reader(c)
	for _, n := range fit {
		p := payload(uint64(n), n)
		if err := e.write(c, e.frame(nil, p)); err != nil {
			return fmt.Errorf("frame of %d bytes: %w", n, err)
		}
		if err := expectFrame(r, fmt.Sprintf("frame of %d bytes", n), p); err != nil {
			return err
		}
	}
	return nil
}

// write writes b while a goroutine reads nothing: callers keep b smaller
// than the socket buffers, or read at the same time.
func (e *env) write(c net.Conn, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return fmt.Errorf("write: %w", explain(err))
	}
	return nil
}

// frameSet builds count frames of sizes up to maxSize (within the limit).
func (e *env) frameSet(seed uint64, count, maxSize int) (stream []byte, payloads [][]byte) {
	r := rand.New(rand.NewPCG(seed, 0))
	maxSize = min(maxSize, e.limit)
	for i := range count {
		p := payload(seed<<32|uint64(i), r.IntN(maxSize+1))
		payloads = append(payloads, p)
		stream = e.frame(stream, p)
	}
	return stream, payloads
}

func expectAll(r *framed.Reader, payloads [][]byte) error {
	for i, p := range payloads {
		if err := expectFrame(r, fmt.Sprintf("frame %d of %d (%d bytes)", i, len(payloads), len(p)), p); err != nil {
			return err
		}
	}
	return nil
}
