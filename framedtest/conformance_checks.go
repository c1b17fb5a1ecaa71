package framedtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// The cases below, sections 2 to 5 of the battery, each drive the server
// one way and say what came otherwise than the contract wants.

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
	// The rest of the frame follows, up to 16 MiB: a server may refuse
	// from the header or after reading the frame, and must not answer
	// either way.
	rest := max(e.f.LengthAdjust, 0) + e.limit + 1
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
			c.Write(e.frame(nil, []byte("cut")[:min(3, e.limit)])[:2])
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
	err = expectAll(e.reader(bufio.NewReaderSize(c, 64<<10)), payloads)
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
