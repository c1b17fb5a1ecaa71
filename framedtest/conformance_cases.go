package framedtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

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

func caseManyInOneWrite(e *env) error {
	stream, payloads := e.frameSet(21, 1000, 48)
	c, err := e.dial()
	if err != nil {
		return err
	}
	if err := e.write(c, stream); err != nil {
		return err
	}
	return expectAll(e.reader(c), payloads)
}

func caseRandomSplits(e *env) error {
	stream, payloads := e.frameSet(22, 100, 300)
	c, err := e.dial()
	if err != nil {
		return err
	}
	// Pieces of 1 to 7 bytes cut headers of every width; a short pause now
	// and then lets the server see the pieces apart.
	r := rand.New(rand.NewPCG(22, 1))
	for i := 0; len(stream) > 0; i++ {
		n := min(len(stream), 1+r.IntN(7))
		if err := e.write(c, stream[:n]); err != nil {
			return err
		}
		stream = stream[n:]
		if i%32 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	return expectAll(e.reader(c), payloads)
}

func caseOneBytePerWrite(e *env) error {
	p := []byte("one byte per write")
	b := e.frame(nil, p)
	c, err := e.dial()
	if err != nil {
		return err
	}
	for _, x := range b[:len(b)-1] {
		if err := e.write(c, []byte{x}); err != nil {
			return err
		}
		time.Sleep(time.Millisecond) // each byte its own segment, and most often its own read
	}
	// Nothing may come back before the last byte: a server that echoes
	// bytes, or answers a read, has answered within 200 ms, even on a
	// loaded machine.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var early [256]byte
	if n, _ := c.Read(early[:]); n > 0 {
		return fmt.Errorf("%d bytes came back before the frame's last byte was sent:\n%s", n, HexDiff(early[:n], nil))
	}
	dl, _ := e.ctx.Deadline()
	c.SetReadDeadline(dl)
	// The frame, then a second one sent whole: its echo must come next, so
	// the first was echoed once.
	after := []byte("sent whole, after it")
	if err := e.write(c, e.frame(b[len(b)-1:], after)); err != nil {
		return err
	}
	r := e.reader(c)
	if err := expectFrame(r, "the frame sent one byte per write", p); err != nil {
		return err
	}
	return expectFrame(r, "the frame sent whole after it", after)
}

// badAfterGood writes two good frames and bad in one write, then rest (if
// any) while reading, and checks that both good frames are echoed and the
// connection then ends.
func (e *env) badAfterGood(bad []byte, rest int) error {
	c, err := e.dial()
	if err != nil {
		return err
	}
	before := [][]byte{[]byte("before the bad header, 1"), []byte("before the bad header, 2")}
	b := e.frame(e.frame(nil, before[0]), before[1])
	if err := e.write(c, append(b, bad...)); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.Close()
	if rest > 0 {
		wg.Go(func() {
			chunk := make([]byte, 64<<10)
			for rest > 0 {
				n, err := c.Write(chunk[:min(rest, len(chunk))])
				if err != nil {
					return // the server may end the connection at any point
				}
				rest -= n
			}
		})
	}
	r := e.reader(c)
	if err := expectAll(r, before); err != nil {
		return err
	}
	return expectConnEnd(r, "after the bad header")
}

// tooLargeHeader returns the header of a frame of limit+1, or a skip.
func (e *env) tooLargeHeader() ([]byte, error) {
	h, ok := e.header(uint64(e.limit) + 1)
	if !ok {
		return nil, skipError(fmt.Sprintf("the header cannot hold limit+1 (%d)", e.limit+1))
	}
	return h, nil
}

func caseTooLarge(e *env) error {
	h, err := e.tooLargeHeader()
	if err != nil {
		return err
	}
	// The payload follows, up to 16 MiB: a server may refuse from the
	// header or after reading the frame, and must not answer either way.
	rest := e.limit + 1
	if rest > 16<<20 {
		rest = 1 << 20
		e.note = "only the first MiB of the payload sent"
	}
	return e.badAfterGood(h, rest)
}

func caseInvalidLength(e *env) error {
	h, ok := e.invalidHeader()
	if !ok {
		return skipError("1- and 2-byte lengths are unsigned: every header is valid")
	}
	return e.badAfterGood(h, 0)
}

func caseTruncated(e *env) error {
	c, err := e.dial()
	if err != nil {
		return err
	}
	before := []byte("a whole frame")
	n := min(100, e.limit)
	b := e.frame(e.frame(nil, before), payload(33, n))
	if err := e.write(c, b[:len(b)-n/2]); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	r := e.reader(c)
	if err := expectFrame(r, "the whole frame", before); err != nil {
		return err
	}
	return expectConnEnd(r, fmt.Sprintf("after %d of the %d payload bytes of the last frame and EOF", n-n/2, n))
}

func caseTooLargeHeaderAlone(e *env) error {
	h, err := e.tooLargeHeader()
	if err != nil {
		return err
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	if err := e.write(c, h); err != nil {
		return err
	}
	return expectConnEnd(e.reader(c), "after the header alone")
}

func caseHalfClose(e *env) error {
	stream, payloads := e.frameSet(41, 100, 200)
	c, err := e.dial()
	if err != nil {
		return err
	}
	if err := e.write(c, stream); err != nil {
		return err
	}
	if err := c.CloseWrite(); err != nil {
		return err
	}
	r := e.reader(c)
	if err := expectAll(r, payloads); err != nil {
		return err
	}
	if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("after every reply: want EOF, got %v", explain(err))
	}
	return nil
}

func caseChurn(e *env) error {
	half, _ := e.header(uint64(min(e.limit, 8)))
	half = half[:max(1, len(half)/2)]
	var d net.Dialer
	for i := range 1000 {
		c, err := d.DialContext(e.ctx, "tcp", e.addr)
		if err != nil {
			return fmt.Errorf("connection %d of 1000: %w", i, err)
		}
		switch i % 3 {
		case 1: // half a header, then FIN
			c.Write(half)
		case 2: // part of a frame, then RST
			c.Write(e.frame(nil, []byte("cut"))[:2])
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
	return e.echoSizes(5)
}

func caseCleanEnd(e *env) error {
	h, err := e.tooLargeHeader()
	if err != nil {
		if h, ok := e.invalidHeader(); ok {
			return e.cleanEnd(h)
		}
		return err
	}
	return e.cleanEnd(h)
}

func (e *env) cleanEnd(bad []byte) error {
	c, err := e.dial()
	if err != nil {
		return err
	}
	before := []byte("before the bad header")
	b := append(e.frame(nil, before), bad...)
	b = append(b, make([]byte, 64<<10)...)
	if err := e.write(c, b); err != nil {
		return err
	}
	r := e.reader(c)
	if err := expectFrame(r, "the frame before the bad header", before); err != nil {
		return err
	}
	_, err = r.ReadFrame()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("the connection ended with a reset (RST)")
	case err == nil:
		return errors.New("got a reply after the bad header")
	}
	return fmt.Errorf("after the bad header: want EOF, got %v", explain(err))
}

func caseManyConns(e *env) error {
	const conns, frames = 64, 10
	cs := make([]*net.TCPConn, conns)
	for i := range cs {
		c, err := e.dial()
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		cs[i] = c
	}
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			var stream []byte
			var payloads [][]byte
			for j := range frames {
				p := fmt.Appendf(nil, "connection %d, frame %d", i, j)
				payloads = append(payloads, p)
				stream = e.frame(stream, p)
			}
			if err := e.write(c, stream); err != nil {
				errs[i] = err
				return
			}
			errs[i] = expectAll(e.reader(c), payloads)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("connection %d of %d: %w", i, conns, err)
		}
	}
	return nil
}

func caseStalledHeader(e *env) error {
	stalled, err := e.dial()
	if err != nil {
		return err
	}
	h, _ := e.header(uint64(min(e.limit, 300)))
	part := h[:len(h)/2]
	if len(part) == 0 { // a 1-byte header has no half: stall in the payload
		part = h
	}
	if err := e.write(stalled, part); err != nil {
		return err
	}
	// The stalled connection is open and quiet while another one is served.
	other, err := e.dial()
	if err != nil {
		return err
	}
	p := []byte("while another connection is stalled")
	if err := e.write(other, e.frame(nil, p)); err != nil {
		return err
	}
	return expectFrame(e.reader(other), "the other connection's frame", p)
}

func caseBackpressure(e *env) error {
	const total = 8 << 20
	size := min(e.limit, 16<<10)
	var stream []byte
	var payloads [][]byte
	for i := 0; len(stream) < total; i++ {
		p := payload(uint64(i), size)
		payloads = append(payloads, p)
		stream = e.frame(stream, p)
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	// Small buffers on this side, so that the server's own decide how soon
	// it must hold the writer back.
	c.SetReadBuffer(64 << 10)
	c.SetWriteBuffer(64 << 10)
	dl, _ := e.ctx.Deadline()
	// The writer reports when a write makes no progress for 200 ms: the
	// server has stopped reading, because its replies are not read.
	held := make(chan int, 1)
	werr := make(chan error, 1)
	go func() {
		sent, signalled := 0, false
		for sent < len(stream) {
			if !signalled {
				c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			}
			n, err := c.Write(stream[sent:min(len(stream), sent+256<<10)])
			sent += n
			if err != nil && !signalled && errors.Is(err, os.ErrDeadlineExceeded) {
				signalled = true
				held <- sent
				c.SetWriteDeadline(dl)
				continue
			}
			if err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	writerDone := false
	select {
	case sent := <-held:
		e.note = fmt.Sprintf("the server held the client back after %.1f MiB", float64(sent)/(1<<20))
	case err := <-werr:
		if err != nil {
			return fmt.Errorf("write before reading: %w", explain(err))
		}
		writerDone = true
		e.note = fmt.Sprintf("all %.1f MiB written without the server holding the client back", float64(len(stream))/(1<<20))
	}
	err = expectAll(framed.NewReader(bufio.NewReaderSize(c, 64<<10), e.f), payloads)
	if err != nil {
		c.Close() // unblocks the writer
	}
	if !writerDone {
		if wErr := <-werr; err == nil && wErr != nil {
			err = fmt.Errorf("write: %w", explain(wErr))
		}
	}
	return err
}
