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

// fieldsFor returns the header fields of the frame whose payload is n
// bytes: the bytes before the length field and, with a positive
// LengthAdjust, those after it that the length does not count. They
// follow a pattern that depends on n, so that fields the server lost,
// changed, or took from another frame show.
func (e *env) fieldsFor(n int) []byte {
	b := make([]byte, e.fields)
	for i := range b {
		b[i] = 0xa5 ^ byte(i*29) ^ byte(n) ^ byte(n>>8)
	}
	return b
}

// frame appends to dst the frame of payload p in the server's Format,
// its header fields filled in by fieldsFor.
func (e *env) frame(dst, p []byte) []byte {
	msg := p
	if e.fields > 0 {
		msg = append(e.fieldsFor(len(p)), p...)
	}
	out, err := e.f.AppendFrame(dst, msg)
	if err != nil {
		panic(fmt.Sprintf("framedtest: conformance frame of %d bytes: %v", len(p), err)) // callers keep to the limit
	}
	return out
}

// header returns the bytes that begin the frame of a payload of n bytes,
// which may be more than the limit allows, up to and including the length
// field: the fields before it, then the field. It reports false when the
// length field cannot hold the length.
func (e *env) header(n uint64) ([]byte, bool) {
	// The field says n, plus what LengthAdjust takes off; the fields
	// after it, when LengthAdjust is positive, are not counted.
	v := n + uint64(max(0, -e.f.LengthAdjust))
	field, ok := e.lengthField(v)
	return append(e.fieldsFor(int(min(n, 1<<20)))[:e.f.LengthOffset], field...), ok
}

// lengthField encodes v as the Format's length field, and reports false
// when the field cannot hold v.
func (e *env) lengthField(v uint64) ([]byte, bool) {
	if e.f.Varint {
		return binary.AppendUvarint(nil, v), true
	}
	var order binary.AppendByteOrder = binary.LittleEndian
	if e.f.BigEndian {
		order = binary.BigEndian
	}
	switch e.f.HeaderSize {
	case 1:
		return []byte{byte(v)}, v <= math.MaxUint8
	case 2:
		return order.AppendUint16(nil, uint16(v)), v <= math.MaxUint16
	case 3:
		b := order.AppendUint32(nil, uint32(v))
		if e.f.BigEndian {
			b = b[1:]
		} else {
			b = b[:3]
		}
		return b, v < 1<<24
	case 8:
		return order.AppendUint64(nil, v), v <= math.MaxInt64
	}
	return order.AppendUint32(nil, uint32(v)), v <= math.MaxInt32
}

// invalidHeader returns the beginning of a frame, up to its length field,
// that no length can be read from: a length that LengthAdjust makes
// negative, a negative 4- or 8-byte length, or an overflowing varint.
// With a LengthAdjust of zero or more, every 1-, 2- and 3-byte length is
// valid, and invalidHeader reports false.
func (e *env) invalidHeader() ([]byte, bool) {
	before := e.fieldsFor(0)[:e.f.LengthOffset]
	var field []byte
	switch {
	case e.f.LengthAdjust < 0:
		field, _ = e.lengthField(0)
	case e.f.Varint:
		field = append(bytes.Repeat([]byte{0xff}, 9), 0x02)
	case e.f.HeaderSize == 0 || e.f.HeaderSize == 4:
		field = []byte{0xff, 0xff, 0xff, 0xff}
	case e.f.HeaderSize == 8:
		field = bytes.Repeat([]byte{0xff}, 8)
	default:
		return nil, false
	}
	return append(before, field...), true
}

// replies reads the server's replies: the frames, checked to begin with
// the header fields sent (see fieldsFor), without those fields.
type replies struct {
	r      *framed.Reader
	fields func(n int) []byte
	n      int // the header fields' length
}

// reader reads the server's replies on c; a reply above the limit is an
// error.
func (e *env) reader(c io.Reader) *replies {
	return &replies{r: framed.NewReader(c, e.f), fields: e.fieldsFor, n: e.fields}
}

// fieldsError is a reply whose header fields are not the ones sent.
type fieldsError struct{ got, want []byte }

func (e *fieldsError) Error() string {
	return "the reply's header fields are not those of the frame sent: " + HexDiff(e.got, e.want)
}

// ReadFrame returns the next reply's payload, after its header fields, or
// a *fieldsError when those fields are not the ones sent.
func (r *replies) ReadFrame() ([]byte, error) {
	frame, err := r.r.ReadFrame()
	if err != nil || r.n == 0 {
		return frame, err
	}
	if len(frame) < r.n {
		return nil, &fieldsError{got: frame, want: r.fields(0)}
	}
	payload := frame[r.n:]
	if want := r.fields(len(payload)); !bytes.Equal(frame[:r.n], want) {
		return nil, &fieldsError{got: frame[:r.n], want: want}
	}
	return payload, nil
}

// expectFrame reads one reply and compares it with want.
func expectFrame(r *replies, what string, want []byte) error {
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
func expectConnEnd(r *replies, what string) error {
	got, err := r.ReadFrame()
	var fe *fieldsError
	switch {
	case err == nil:
		return fmt.Errorf("%s: got a reply of %d bytes where the connection should end", what, len(got))
	case errors.As(err, &fe):
		return fmt.Errorf("%s: got a reply where the connection should end", what)
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

func expectAll(r *replies, payloads [][]byte) error {
	for i, p := range payloads {
		if err := expectFrame(r, fmt.Sprintf("frame %d of %d (%d bytes)", i, len(payloads), len(p)), p); err != nil {
			return err
		}
	}
	return nil
}
