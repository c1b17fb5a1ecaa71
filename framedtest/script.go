package framedtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framed-go/framed"
)

// DefaultStepTimeout bounds each step of a [Script] whose Timeout is zero.
const DefaultStepTimeout = 5 * time.Second

// Script is a scripted peer, as tokio-test's io::Builder is: a list of steps
// (send a frame or raw bytes, expect a frame, raw bytes, EOF or the end of
// the connection, wait) run in order against a connection. The first step
// whose expectation is not met fails the test, naming the step by its index
// and showing a hex dump of what came and what was expected.
//
//	framedtest.NewScript().
//		Send([]byte("ping")).
//		Expect([]byte("ping")).
//		SendRaw([]byte{0xff, 0xff}, []byte{0xff, 0xff}). // a negative length, in two writes
//		ExpectClosed(time.Second).
//		RunAddr(t, srv.Addr)
//
// The zero value is an empty script for the default Format; [NewFormatScript]
// makes one for another. Methods that add steps return the Script, so that
// calls chain.
type Script struct {
	// Format is the wire format of the frames sent and expected; the zero
	// value is the default one.
	Format framed.Format

	// Timeout bounds each step that reads or writes. Zero means
	// [DefaultStepTimeout].
	Timeout time.Duration

	steps []step
}

type stepKind int

const (
	stepSend stepKind = iota
	stepSendRaw
	stepExpect
	stepExpectRaw
	stepExpectEOF
	stepExpectClosed
	stepCloseWrite
	stepWait
)

type step struct {
	kind   stepKind
	data   []byte
	pieces [][]byte
	d      time.Duration
}

func (s step) String() string {
	switch s.kind {
	case stepSend:
		return fmt.Sprintf("send frame of %d bytes", len(s.data))
	case stepSendRaw:
		n := 0
		for _, p := range s.pieces {
			n += len(p)
		}
		return fmt.Sprintf("send %d raw bytes in %d writes", n, len(s.pieces))
	case stepExpect:
		return fmt.Sprintf("expect frame of %d bytes", len(s.data))
	case stepExpectRaw:
		return fmt.Sprintf("expect %d raw bytes", len(s.data))
	case stepExpectEOF:
		return "expect EOF"
	case stepExpectClosed:
		return fmt.Sprintf("expect the connection closed within %v", s.d)
	case stepCloseWrite:
		return "close write"
	default:
		return fmt.Sprintf("wait %v", s.d)
	}
}

// NewScript returns an empty Script for the default Format.
func NewScript() *Script { return &Script{} }

// NewFormatScript returns an empty Script whose frames, sent and
// expected, are of format f: a peer for a [NewFormatServer](f, h).
func NewFormatScript(f framed.Format) *Script { return &Script{Format: f} }

func (s *Script) add(st step) *Script {
	s.steps = append(s.steps, st)
	return s
}

// Send adds a step that sends payload as one frame, in one write.
func (s *Script) Send(payload []byte) *Script {
	return s.add(step{kind: stepSend, data: bytes.Clone(payload)})
}

// SendRaw adds a step that writes the pieces as given, one write each,
// whatever they hold: part of a header, a hostile length, several frames.
func (s *Script) SendRaw(pieces ...[]byte) *Script {
	st := step{kind: stepSendRaw}
	for _, p := range pieces {
		st.pieces = append(st.pieces, bytes.Clone(p))
	}
	return s.add(st)
}

// Expect adds a step that reads one frame and fails unless its payload is
// payload.
func (s *Script) Expect(payload []byte) *Script {
	return s.add(step{kind: stepExpect, data: bytes.Clone(payload)})
}

// ExpectRaw adds a step that reads len(b) bytes and fails unless they are b.
func (s *Script) ExpectRaw(b []byte) *Script {
	return s.add(step{kind: stepExpectRaw, data: bytes.Clone(b)})
}

// ExpectEOF adds a step that fails unless the peer has shut down its
// writing side cleanly (a FIN) with nothing left to read.
func (s *Script) ExpectEOF() *Script {
	return s.add(step{kind: stepExpectEOF})
}

// ExpectClosed adds a step that fails unless the connection ends, by EOF or
// by a reset, within d, with nothing more to read.
func (s *Script) ExpectClosed(d time.Duration) *Script {
	return s.add(step{kind: stepExpectClosed, d: d})
}

// CloseWrite adds a step that shuts down the script's writing side (a TCP
// FIN), so the peer reads EOF; reading goes on.
func (s *Script) CloseWrite() *Script {
	return s.add(step{kind: stepCloseWrite})
}

// Wait adds a step that does nothing for d.
func (s *Script) Wait(d time.Duration) *Script {
	return s.add(step{kind: stepWait, d: d})
}

// RunAddr dials the TCP address addr, runs the script on the connection, and
// closes it. It must be called from the test's goroutine, as t.Fatalf must.
func (s *Script) RunAddr(t testing.TB, addr string) {
	t.Helper()
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("framedtest: script: dial %s: %v", addr, err)
		return
	}
	defer c.Close()
	s.Run(t, c)
}

// Run runs the script on c, and leaves c open. It fails t with t.Fatalf at
// the first step that does not go as written, so it must be called from the
// test's goroutine.
func (s *Script) Run(t testing.TB, c net.Conn) {
	t.Helper()
	r := bufio.NewReader(c)
	for i, st := range s.steps {
		if err := s.run(st, c, r); err != nil {
			t.Fatalf("framedtest: script step %d (%v): %v", i, st, err)
			return
		}
	}
}

func (s *Script) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultStepTimeout
}

// run runs one step and says how it failed.
func (s *Script) run(st step, c net.Conn, r *bufio.Reader) error {
	deadline := time.Now().Add(s.timeout())
	switch st.kind {
	case stepSend:
		frame, err := s.Format.Encode(st.data)
		if err != nil {
			return err
		}
		c.SetWriteDeadline(deadline)
		_, err = c.Write(frame)
		return err
	case stepSendRaw:
		c.SetWriteDeadline(deadline)
		for j, p := range st.pieces {
			if _, err := c.Write(p); err != nil {
				return fmt.Errorf("write %d: %w", j, err)
			}
		}
		return nil
	case stepExpect:
		c.SetReadDeadline(deadline)
		got, err := s.Format.Decode(r)
		if err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		if !bytes.Equal(got, st.data) {
			return fmt.Errorf("frame differs: %s", HexDiff(got, st.data))
		}
		return nil
	case stepExpectRaw:
		c.SetReadDeadline(deadline)
		got := make([]byte, len(st.data))
		n, err := io.ReadFull(r, got)
		if err != nil {
			return fmt.Errorf("read %d bytes, got %d: %w; %s", len(got), n, err, HexDiff(got[:n], st.data))
		}
		if !bytes.Equal(got, st.data) {
			return fmt.Errorf("bytes differ: %s", HexDiff(got, st.data))
		}
		return nil
	case stepExpectEOF:
		c.SetReadDeadline(deadline)
		return expectEnd(r, false)
	case stepExpectClosed:
		c.SetReadDeadline(time.Now().Add(st.d))
		return expectEnd(r, true)
	case stepCloseWrite:
		cw, ok := c.(interface{ CloseWrite() error })
		if !ok {
			return fmt.Errorf("%T has no CloseWrite method", c)
		}
		return cw.CloseWrite()
	default:
		t := time.NewTimer(st.d)
		<-t.C
		return nil
	}
}

// expectEnd reads from r and fails unless the stream ends with nothing
// more to read: with io.EOF, or also with a reset when reset is true.
func expectEnd(r *bufio.Reader, reset bool) error {
	var extra [64]byte
	n, err := r.Read(extra[:])
	switch {
	case n > 0:
		return fmt.Errorf("got %d unexpected bytes before the end (%v):\n%s", n, err, hex.Dump(extra[:n]))
	case errors.Is(err, io.EOF):
		return nil
	case reset && errors.Is(err, syscall.ECONNRESET):
		return nil
	default:
		return fmt.Errorf("the stream did not end: %w", err)
	}
}

// HexDiff describes how got differs from want: where the first difference
// is, and a hex dump of both around it. It is what a failing [Script]
// step shows; tests may use it for their own messages.
func HexDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	if i == len(got) && i == len(want) {
		return "no difference"
	}
	from := max(0, i-32) &^ 15
	window := func(b []byte) string {
		if from >= len(b) {
			return "\t(nothing here)\n"
		}
		end := min(len(b), from+96)
		dump := hex.Dump(b[from:end])
		if from > 0 || end < len(b) {
			dump = fmt.Sprintf("\t(bytes %d to %d of %d, offsets from %d)\n%s", from, end, len(b), from, dump)
		}
		return dump
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "first difference at byte %d (got %d bytes, want %d)\ngot:\n%swant:\n%s",
		i, len(got), len(want), window(got), window(want))
	return sb.String()
}
