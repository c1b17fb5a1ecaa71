package framed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// growChunk is the most a frame buffer grows by before the bytes to fill it
// have arrived, so a header that claims a large frame costs little until
// the payload really comes.
const growChunk = 64 << 10

// firstChunk is the smallest buffer a Reader gathers a large frame in: a
// header that claims a large frame and a stalled payload cost this much,
// not growChunk, so thousands of stalled connections cost little.
const firstChunk = 4 << 10

// Encode returns msg as one frame of the default [Format]: its length as a
// 4-byte little-endian int32, then msg. A msg longer than
// [DefaultMaxFrameSize] is a [*FrameTooLargeError].
func Encode(msg []byte) ([]byte, error) { return Format{}.Encode(msg) }

// AppendFrame appends msg as one frame of the default [Format] to dst and
// returns the extended slice. It does not allocate when dst has room. On
// error dst is returned unchanged.
func AppendFrame(dst, msg []byte) ([]byte, error) { return Format{}.AppendFrame(dst, msg) }

// Decode reads one frame of the default [Format] from r and returns its
// payload, the frame without its length field, in a new slice. It returns
// [io.EOF] only when r ends exactly between frames, [io.ErrUnexpectedEOF]
// when it ends inside one, [ErrInvalidLength] for a negative length, and a
// [*FrameTooLargeError] for a length above [DefaultMaxFrameSize]; it never
// returns a partial frame.
//
// Memory follows the bytes received: a header that claims a large frame
// costs at most twice the bytes that actually arrive, plus 64 KiB.
func Decode(r *bufio.Reader) ([]byte, error) { return Format{}.Decode(r) }

// Encode returns msg as one frame of f. See [Format.AppendFrame].
func (f Format) Encode(msg []byte) ([]byte, error) {
	var dst []byte // nil unless f accepts msg, and then made to fit
	if f.check() == nil && f.checkWrite(len(msg), f.Limit()) == nil {
		dst = make([]byte, 0, f.maxHeaderSize()+len(msg))
	}
	return f.AppendFrame(dst, msg)
}

// AppendFrame appends msg as one frame of f to dst. msg is the frame
// without its length field (see [Format]); AppendFrame inserts the field
// after msg's first f.LengthOffset bytes. It refuses, with dst unchanged, a
// msg longer than f.Limit() (a [*FrameTooLargeError]) and one shorter than
// the layout's header fields (a [*FrameTooShortError]): the encoder never
// writes what the decoder would refuse, and never truncates a length.
func (f Format) AppendFrame(dst, msg []byte) ([]byte, error) {
	if err := f.check(); err != nil {
		return dst, err
	}
	if err := f.checkWrite(len(msg), f.Limit()); err != nil {
		return dst, err
	}
	head, body := f.appendHead(dst, msg)
	return append(head, body...), nil
}

// Decode reads one frame of f from r and returns it without its length
// field (see [Format]) in a new slice, with the errors and the memory
// bound of the package-level [Decode], f's limit in place of
// DefaultMaxFrameSize. An invalid f is an error matching
// [ErrInvalidFormat].
func (f Format) Decode(r *bufio.Reader) ([]byte, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	limit, lf := f.Limit(), f.field()
	var n, hlen int
	for want := 1; ; want++ {
		b, peekErr := r.Peek(want)
		var err error
		n, hlen, err = lf.parse(b, limit)
		if err == nil {
			break
		}
		if err != errNeedMore {
			return nil, err
		}
		if peekErr != nil {
			if peekErr == io.EOF && len(b) == 0 {
				return nil, io.EOF
			}
			return nil, noEOF(peekErr)
		}
	}
	// The frame starts with the LengthOffset bytes before the length field
	// (n is at least that many), then goes on after the field.
	payload := make([]byte, 0, min(n, growChunk))
	if f.LengthOffset > 0 {
		head, _ := r.Peek(f.LengthOffset) // parsed, so buffered
		payload = append(payload, head...)
	}
	if _, err := r.Discard(f.LengthOffset + hlen); err != nil {
		return nil, noEOF(err)
	}
	payload, err := readGrowing(r, payload, n)
	if err != nil {
		return nil, noEOF(err)
	}
	return payload, nil
}

// readGrowing appends bytes read from r to buf until it holds n bytes. It
// grows buf no faster than the bytes arrive (to twice what has arrived, or
// firstChunk), so memory follows bytes received, not bytes claimed. On
// error it returns what it has read so far, so a caller can resume after a
// timeout.
func readGrowing(r io.Reader, buf []byte, n int) ([]byte, error) {
	empty := 0 // reads in a row that returned nothing
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, max(2*len(buf), firstChunk)))
			copy(grown, buf)
			buf = grown
		}
		k, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+k]
		if err != nil {
			if len(buf) == n {
				return buf, nil
			}
			return buf, err
		}
		if k > 0 {
			empty = 0
		} else if empty++; empty == 100 { // as many as fill and bufio allow
			return buf, io.ErrNoProgress
		}
	}
	return buf, nil
}

// noEOF turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// DefaultReadBufferSize is the size of a [Reader]'s buffer to begin with.
// Frames that fit in the buffer are returned as slices of it, with no
// copy; larger ones are gathered in a separate buffer that grows as their
// bytes arrive. When reads fill the buffer the stream is busy, and the
// Reader moves to a 64 KiB buffer, so that it reads more per system call.
// On Unix, a [Conn] over a plain TCP or Unix socket that waits for the
// next frame gives its buffer back to a pool and holds none; over TLS,
// net.Pipe or on other systems it keeps its buffer.
const DefaultReadBufferSize = 16 << 10

// Reader reads frames from a stream. It reads ahead: one read of the
// underlying stream may bring many frames, and ReadFrame returns them one at
// a time without further reads.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	src   io.Reader
	f     Format
	lf    lengthField // f's, kept to parse headers with
	limit int
	off   int   // f.LengthOffset
	le32  bool  // f is the default header, an int32 little-endian: bufferedFrame parses it inline
	err   error // sticky: the stream cannot go on

	buf  []byte  // buffered bytes are buf[r:w]; nil while idle
	bufp *[]byte // buf's pool entry, when it came from a read buffer pool
	size int     // len(buf) when first allocated
	// wait, when not nil, reads at least one byte from the source into an
	// empty buffer, taking the buffer only once bytes have arrived, so that
	// an idle Reader waits without holding one.
	wait func() error
	r, w int

	// next is the header of a whole frame at buf[r:], found by
	// frameBuffered, so that ReadFrame need not parse it again.
	next   struct{ n, hlen int }
	nextOK bool

	big    []byte // a frame too large for buf, as it arrives
	bigLen int    // the length of the frame in big, 0 when none is pending
}

// NewReader returns a Reader of frames of format f from r.
func NewReader(r io.Reader, f Format) *Reader {
	return newReaderSize(r, f, DefaultReadBufferSize)
}

func newReaderSize(r io.Reader, f Format, size int) *Reader {
	rd := &Reader{src: r, f: f, lf: f.field(), limit: f.Limit(), off: f.LengthOffset}
	if err := f.check(); err != nil {
		rd.err = err
	}
	header := f
	header.MaxFrameSize = 0
	rd.le32 = header == Format{} || header == Format{HeaderSize: 4}
	// The buffer holds at least a whole header.
	rd.size = max(size, 64, f.LengthOffset+f.maxHeaderSize())
	return rd
}

// busyReadBufferSize is the buffer a Reader of the default size moves to
// when one read fills its buffer: the stream is busy, and larger reads
// mean fewer system calls. It goes back to the smaller size when idle.
const busyReadBufferSize = 64 << 10

// readBufPool and busyReadBufPool hold the read buffers of idle Readers of
// the default size, so that thousands of idle connections pin none.
var (
	readBufPool = sync.Pool{New: func() any {
		b := make([]byte, DefaultReadBufferSize)
		return &b
	}}
	busyReadBufPool = sync.Pool{New: func() any {
		b := make([]byte, busyReadBufferSize)
		return &b
	}}
)

// putBuf gives a pooled read buffer back to its pool.
func putBuf(bp *[]byte) {
	if len(*bp) == busyReadBufferSize {
		busyReadBufPool.Put(bp)
	} else {
		readBufPool.Put(bp)
	}
}

// growBusy moves the buffered bytes to a busy-sized buffer.
func (r *Reader) growBusy() {
	bp := busyReadBufPool.Get().(*[]byte)
	r.w = copy(*bp, r.buf[r.r:r.w])
	r.r = 0
	putBuf(r.bufp)
	r.bufp, r.buf = bp, *bp
}

// getBuf gives the Reader its buffer.
func (r *Reader) getBuf() {
	if r.size == DefaultReadBufferSize {
		r.bufp = readBufPool.Get().(*[]byte)
		r.buf = *r.bufp
		return
	}
	r.buf = make([]byte, r.size)
}

// releaseBuf lets an empty Reader's buffers go until bytes arrive again.
func (r *Reader) releaseBuf() {
	if r.r != r.w || r.bigLen > 0 {
		return
	}
	if r.bufp != nil {
		putBuf(r.bufp)
	}
	r.buf, r.bufp, r.r, r.w = nil, nil, 0, 0
	putBig(r.big)
	r.big = nil
}

// bigPools hold the large-frame buffers of idle Readers by size class: pool
// k holds buffers of at least growChunk<<k bytes, up to DefaultMaxFrameSize.
// A connection that receives large frames with pauses between them reuses
// a buffer instead of growing a new one for every frame, and an idle one
// pins none. A Reader takes a pooled buffer only if it exists already, so
// memory still follows the bytes received.
var bigPools [7]sync.Pool

// bigClass returns the pool for buffers of at least n bytes, for taking
// (up) or for giving back a buffer of capacity n (down); ok is false when
// no pool fits.
func bigClass(n int, up bool) (k int, ok bool) {
	for k = range bigPools {
		size := growChunk << k
		if up && size >= n {
			return k, true
		}
		if !up && (size > n) {
			return k - 1, k > 0
		}
	}
	if up {
		return 0, false
	}
	return len(bigPools) - 1, true
}

// getBig returns a pooled buffer of capacity at least n, or nil. It looks
// in the class of buffers sure to fit, then in the class below, where a
// buffer given back after a frame of this same size lands unless n is a
// class size: so frames of any one size reuse their buffer.
func getBig(n int) []byte {
	if k, ok := bigClass(n, true); ok {
		if b, _ := bigPools[k].Get().(*[]byte); b != nil {
			return (*b)[:0]
		}
	}
	if k, ok := bigClass(n, false); ok {
		if b, _ := bigPools[k].Get().(*[]byte); b != nil {
			if cap(*b) >= n {
				return (*b)[:0]
			}
			bigPools[k].Put(b) // too small for this frame
		}
	}
	return nil
}

func putBig(b []byte) {
	if cap(b) < growChunk || cap(b) > 2*DefaultMaxFrameSize {
		return
	}
	if k, ok := bigClass(cap(b), false); ok {
		p := new([]byte) // only here, so that small frames never allocate
		*p = b
		bigPools[k].Put(p)
	}
}

// ReadFrame reads the next frame and returns it without its length field:
// the payload, or with a layout the payload and the header fields other
// than the length (see [Format]). The slice is valid only until the next
// call to ReadFrame; use [bytes.Clone] to keep it.
// In steady state ReadFrame does not allocate.
//
// At the end of the stream exactly between frames it returns [io.EOF]; inside
// a frame, [io.ErrUnexpectedEOF]. A negative length is [ErrInvalidLength] and
// a length above the limit a [*FrameTooLargeError], both found from the header
// alone, before any byte after it is read or allocated. After any of these, and
// after any other read error that is not a timeout, every later call returns
// the same error. A timeout (see [net.Error]) leaves the Reader as it was:
// the bytes that did arrive are kept and the next call goes on from there.
func (r *Reader) ReadFrame() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.bigLen > 0 {
		return r.readBig()
	}
	if r.nextOK {
		return r.take(r.next.n, r.next.hlen), nil
	}
	for {
		n, hlen, err := r.lf.parse(r.buf[r.r:r.w], r.limit)
		if err == nil {
			if r.r+hlen+n <= r.w {
				if cap(r.big) > growChunk {
					r.big = nil // large frames have stopped: let the memory go
				}
				return r.take(n, hlen), nil
			}
			if hlen+n > len(r.buf) {
				r.skipField(hlen)
				return r.startBig(n)
			}
		} else if err != errNeedMore {
			return nil, r.fail(err)
		}
		if err := r.fill(); err != nil {
			if err == io.EOF && r.r == r.w {
				return nil, r.fail(io.EOF)
			}
			return nil, r.fail(noEOF(err))
		}
	}
}

// take consumes the frame at the start of the buffered bytes, buffered
// whole, whose header is hlen bytes long and gives its length as n, and
// returns it without its length field. It is the one place a frame is
// taken from the buffer; it forgets the header that frameBuffered found.
func (r *Reader) take(n, hlen int) []byte {
	end := r.r + hlen + n
	r.skipField(hlen)
	p := r.buf[r.r:end:end]
	r.r = end
	r.nextOK = false
	return p
}

// skipField steps over the length field of the frame whose header starts
// the buffered bytes, moving the LengthOffset bytes before the field up
// against the bytes after it, so that the frame is contiguous at r.r.
func (r *Reader) skipField(hlen int) {
	if r.off > 0 {
		copy(r.buf[r.r+hlen:r.r+hlen+r.off], r.buf[r.r:r.r+r.off])
	}
	r.r += hlen
}

// startBig begins a frame of n bytes that does not fit in the buffer: the
// bytes already buffered move to r.big, and the rest is read into it.
func (r *Reader) startBig(n int) ([]byte, error) {
	have := r.buf[r.r:r.w]
	if cap(r.big) > 2*n+growChunk {
		r.big = nil // kept from an earlier, much larger frame
	}
	if cap(r.big) < n {
		if b := getBig(n); b != nil {
			putBig(r.big)
			r.big = b
		}
	}
	r.big = append(r.big[:0], have...)
	r.r, r.w = 0, 0
	if r.bufp != nil {
		// The frame is read straight into r.big: a peer that stalls in
		// it holds no read buffer.
		putBuf(r.bufp)
		r.buf, r.bufp = nil, nil
	}
	r.bigLen = n
	return r.readBig()
}

func (r *Reader) readBig() ([]byte, error) {
	var err error
	r.big, err = readGrowing(r.src, r.big, r.bigLen)
	if err != nil {
		return nil, r.fail(noEOF(err))
	}
	r.bigLen = 0
	return r.big, nil
}

// fill reads more bytes into the buffer, first moving what is buffered to
// its front if the end is full.
func (r *Reader) fill() error {
	switch {
	case r.buf == nil:
		r.getBuf()
	case r.w == len(r.buf) && r.bufp != nil && len(r.buf) < busyReadBufferSize:
		r.growBusy() // reads fill the buffer: the stream is busy
	case r.r > 0 && (r.w == len(r.buf) || r.r == r.w):
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.w:])
		r.w += n
		if n > 0 || err != nil {
			if n > 0 && err == io.EOF {
				err = nil // the next read returns it again
			}
			return err
		}
	}
	return io.ErrNoProgress
}

// waitData blocks until at least one byte is buffered. Like ReadFrame, it
// returns io.EOF when the stream ends between frames.
func (r *Reader) waitData() error {
	if r.err != nil {
		return r.err
	}
	if r.w > r.r || r.bigLen > 0 {
		return nil
	}
	if r.wait != nil {
		// The previous frame's slice is no longer promised to the caller:
		// wait with no buffer, and take one when bytes arrive.
		r.releaseBuf()
		return r.fail(r.wait())
	}
	return r.fail(r.fill())
}

// readIdle reads once with read into a Reader that has nothing buffered:
// it takes the buffer for the read, keeps the n bytes read, and gives the
// buffer back when n is zero, so that a Reader waiting for its source to
// become readable holds none. It is how a [Conn] on a socket waits for
// the next frame (see idleReader).
func (r *Reader) readIdle(read func(p []byte) (n int, err error)) (int, error) {
	if r.buf == nil {
		r.getBuf()
	}
	n, err := read(r.buf[r.w:])
	r.w += n
	if n == 0 {
		r.releaseBuf()
	}
	return n, err
}

// fail records err if the stream cannot go on after it, and returns it.
func (r *Reader) fail(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if !(errors.As(err, &ne) && ne.Timeout()) {
		r.err = err
	}
	return err
}

// Buffered returns the number of bytes read from the stream but not yet
// returned as frames.
func (r *Reader) Buffered() int {
	if r.bigLen > 0 {
		return r.w - r.r + len(r.big)
	}
	return r.w - r.r
}

// frameBuffered reports whether a whole frame is buffered, so ReadFrame
// would return without reading the stream.
func (r *Reader) frameBuffered() bool {
	if r.err != nil || r.bigLen > 0 {
		return false
	}
	if r.nextOK {
		return true
	}
	n, hlen, err := r.lf.parse(r.buf[r.r:r.w], r.limit)
	if err != nil || r.r+hlen+n > r.w {
		return false
	}
	r.next.n, r.next.hlen, r.nextOK = n, hlen, true
	return true
}

// bufferedFrame returns the next frame and consumes it, as ReadFrame
// would, if it is buffered whole; otherwise it reads nothing and reports
// false. It is the server's loop over a run of frames that arrived
// together: the header is parsed once, and the source is never touched.
func (r *Reader) bufferedFrame() ([]byte, bool) {
	if r.err != nil || r.bigLen > 0 {
		return nil, false
	}
	if r.nextOK {
		return r.take(r.next.n, r.next.hlen), true
	}
	b := r.buf[r.r:r.w]
	if r.le32 {
		// The default header, parsed here rather than by lengthField: a
		// negative length or one above the limit is left to ReadFrame,
		// which reports it.
		if len(b) < 4 {
			return nil, false
		}
		n := int(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
		if n < 0 || n > r.limit || 4+n > len(b) {
			return nil, false
		}
		return r.take(n, 4), true
	}
	n, hlen, err := r.lf.parse(b, r.limit)
	if err != nil || hlen+n > len(b) {
		return nil, false
	}
	return r.take(n, hlen), true
}

// DefaultWriteBufferSize is the size of a [Writer]'s buffer: 64 KiB, as a
// well-written bufio loop uses, so a stream of small frames takes one
// write per 64 KiB.
const DefaultWriteBufferSize = 64 << 10

// Writer writes frames to a stream through a buffer, so that many small
// frames go out in one write. Call Flush to send what is buffered. A payload
// that does not fit in the room left and is at least half the buffer's size
// is written straight from the caller's slice (header, buffered frames and
// payload in one vectored write) with no copy; smaller ones are copied.
//
// A Writer is not safe for concurrent use; see [Conn] for that.
type Writer struct {
	dst   io.Writer
	f     Format
	lf    lengthField // f's, kept to write headers with
	limit int
	hmax  int // f.maxHeaderSize()
	buf   []byte
	err   error       // sticky: a write failed
	iov   [2][]byte   // a large frame's write: the buffer, then the payload
	bufs  net.Buffers // iov, as WriteTo consumes it
}

// NewWriter returns a Writer of frames of format f to w.
func NewWriter(w io.Writer, f Format) *Writer {
	wr := &Writer{dst: w, f: f, lf: f.field(), limit: f.Limit(), hmax: f.maxHeaderSize(), buf: make([]byte, 0, DefaultWriteBufferSize)}
	if err := f.check(); err != nil {
		wr.err = err
	}
	return wr
}

// WriteFrame buffers p as one frame, flushing first if it does not fit. p
// is the frame without its length field (see [Format]): the Writer inserts
// the field after p's first LengthOffset bytes. A p longer than the limit
// is a [*FrameTooLargeError], one shorter than the layout's header fields
// a [*FrameTooShortError], and nothing is written; the Writer stays
// usable. After a write error every later call returns it.
func (w *Writer) WriteFrame(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if err := w.f.checkWrite(len(p), w.limit); err != nil {
		return err
	}
	if len(w.buf)+w.hmax+len(p) <= cap(w.buf) {
		if w.lf.off == 0 { // appendFrame, written out: this is the hot path
			w.buf = append(w.lf.append(w.buf, len(p)), p...)
		} else {
			w.appendFrame(p)
		}
		return nil
	}
	if len(p) < cap(w.buf)/2 {
		if err := w.Flush(); err != nil {
			return err
		}
		w.appendFrame(p)
		return nil
	}
	if len(w.buf)+w.hmax+w.lf.off > cap(w.buf) {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	var body []byte
	w.buf, body = w.f.appendHead(w.buf, p)
	w.iov = [2][]byte{w.buf, body}
	w.bufs = w.iov[:] // kept in the Writer, so the write does not allocate
	n, err := w.bufs.WriteTo(w.dst)
	w.iov, w.bufs = [2][]byte{}, nil // keep no reference to p
	if err == nil && n < int64(len(w.buf)+len(body)) {
		err = io.ErrShortWrite
	}
	w.buf = w.buf[:0]
	if err != nil {
		w.err = fmt.Errorf("framed: write: %w", err)
	}
	return w.err
}

// appendFrame appends p's frame to the buffer, which has room for it.
func (w *Writer) appendFrame(p []byte) {
	off := w.lf.off
	w.buf = append(w.lf.append(append(w.buf, p[:off]...), len(p)), p[off:]...)
}

// Flush writes any buffered frames to the underlying stream.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.dst.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	w.buf = w.buf[:0]
	if err != nil {
		w.err = fmt.Errorf("framed: write: %w", err)
	}
	return w.err
}

// Buffered returns the number of bytes waiting for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }
