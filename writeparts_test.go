package framed_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// cuts returns the places to cut a frame of n bytes into head and body:
// every place for a short frame, and around the edges and the length
// field's place (off) for a long one.
func cuts(n, off int) []int {
	if n <= 16 {
		out := make([]int, 0, n+1)
		for i := 0; i <= n; i++ {
			out = append(out, i)
		}
		return out
	}
	var out []int
	for _, i := range []int{0, 1, off - 1, off, off + 1, n / 2, n - 1, n} {
		if i >= 0 && i <= n {
			out = append(out, i)
		}
	}
	return out
}

// TestWriteFramePartsWritesWhatWriteFrameWrites cuts frames of every
// layout into a head and a body at every place, the length field's place
// included (inside head, at its end, inside body), and checks that the
// bytes on the wire are the encoder's bytes of the whole frame: small
// frames through the queue's copy, large ones through its vectored write.
func TestWriteFramePartsWritesWhatWriteFrameWrites(t *testing.T) {
	formats := []struct {
		name string
		f    framed.Format
	}{{"default", framed.Format{}}, {"be16", framed.Format{HeaderSize: 2, BigEndian: true}}, {"uvarint", framed.Format{Varint: true}}}
	formats = append(formats, protocolLayouts...)
	for _, tt := range formats {
		t.Run(tt.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, tr transport) {
				f := tt.f
				var want []byte
				type parts struct{ head, body []byte }
				var sends []parts
				for _, p := range layoutFrames(f) {
					frame, err := f.AppendFrame(nil, p)
					require.NoError(t, err, "%s: AppendFrame of %d bytes", tt.name, len(p))
					for _, at := range cuts(len(p), f.LengthOffset) {
						want = append(want, frame...)
						sends = append(sends, parts{p[:at:at], p[at:]})
					}
				}
				na, nb := tr.pair(t)
				c := framed.NewConn(na, framed.ConnConfig{Format: f})
				t.Cleanup(func() { c.Close() })
				got := make([]byte, len(want))
				read := make(chan error, 1)
				go func() {
					_, err := io.ReadFull(nb, got)
					read <- err
				}()
				for i, s := range sends {
					require.NoError(t, c.WriteFrameParts(s.head, s.body),
						"%s: WriteFrameParts %d, head %d bytes, body %d bytes", tt.name, i, len(s.head), len(s.body))
				}
				require.NoError(t, c.Flush())
				require.NoError(t, wait(t, read, "the frames"), "%s: read the frames", tt.name)
				assert.True(t, bytes.Equal(want, got), "%s: WriteFrameParts writes the encoder's bytes", tt.name)
			})
		})
	}
}

// TestWriteFramePartsLimits: the limits count head and body together, a
// refused frame sends nothing, and the Conn stays usable.
func TestWriteFramePartsLimits(t *testing.T) {
	zinx := framed.Format{LengthOffset: 4, BigEndian: true, MaxFrameSize: 100}
	tests := []struct {
		name       string
		f          framed.Format
		head, body int
		wantErr    error
		want       any
	}{
		{name: "too large by one", f: framed.Format{MaxFrameSize: 10}, head: 4, body: 7,
			wantErr: framed.ErrFrameTooLarge, want: &framed.FrameTooLargeError{Size: 11, Limit: 10}},
		{name: "too large, all in head", f: framed.Format{MaxFrameSize: 10}, head: 11,
			wantErr: framed.ErrFrameTooLarge, want: &framed.FrameTooLargeError{Size: 11, Limit: 10}},
		{name: "too large for a 1-byte field", f: framed.Format{HeaderSize: 1}, head: 200, body: 56,
			wantErr: framed.ErrFrameTooLarge, want: &framed.FrameTooLargeError{Size: 256, Limit: 255}},
		{name: "too short for the bytes before the length", f: zinx, head: 2, body: 1,
			wantErr: framed.ErrFrameTooShort, want: &framed.FrameTooShortError{Size: 3, Min: 4}},
		{name: "too short for the bytes after it", f: framed.Format{LengthAdjust: 4}, head: 1, body: 2,
			wantErr: framed.ErrFrameTooShort, want: &framed.FrameTooShortError{Size: 3, Min: 4}},
		{name: "the limit exactly", f: zinx, head: 4, body: 96},
		{name: "the shortest exactly", f: zinx, head: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			na, nb := pipePair(t)
			a, b := framed.NewConn(na, framed.ConnConfig{Format: tt.f}), framed.NewConn(nb, framed.ConnConfig{Format: tt.f})
			t.Cleanup(func() {
				a.Close()
				b.Close()
			})
			frames, errc := readConnFrames(t, b)
			head, body := frameOf(1, tt.head), frameOf(2, tt.body)
			err := a.WriteFrameParts(head, body)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr, "%d+%d bytes", tt.head, tt.body)
				assert.Equal(t, tt.want, errors.Unwrap(wrapped{err}), "%d+%d bytes", tt.head, tt.body)
			} else {
				require.NoError(t, err, "%d+%d bytes", tt.head, tt.body)
			}
			// The Conn is usable, and nothing of a refused frame was sent.
			last := frameOf(3, tt.f.LengthOffset+max(tt.f.LengthAdjust, 0))
			require.NoError(t, a.WriteFrame(last))
			if tt.wantErr == nil {
				assert.Equal(t, concat(head, body), wait(t, frames, "the frame"), "%d+%d bytes", tt.head, tt.body)
			}
			select {
			case p := <-frames:
				assert.Equal(t, last, p, "the frame after")
			case err := <-errc:
				t.Fatal(err)
			}
		})
	}
}

// wrapped lets errors.Unwrap return an error as it is.
type wrapped struct{ err error }

func (w wrapped) Error() string { return w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

// TestWriteFramePartsKeepsNoReference: once WriteFrameParts returns, the
// caller may reuse head and body: a small frame is copied into the queue
// (here while the write before it is held), a large one is written before
// WriteFrameParts returns.
func TestWriteFramePartsKeepsNoReference(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		g, a, frames, errc := gatedPair(t, tr, framed.ConnConfig{})
		for i, n := range []int{60, 100 << 10} {
			head, body := frameOf(n, 4), frameOf(n+1, n)
			want := concat(head, body)
			require.NoError(t, a.WriteFrameParts(head, body), "WriteFrameParts of 4+%d bytes", n)
			clear(head)
			clear(body)
			if i == 0 {
				wait(t, g.entered, "the first write")
				g.release()
			}
			select {
			case p := <-frames:
				assert.Equal(t, want, p, "the frame of 4+%d bytes, its parts cleared once WriteFrameParts returned", n)
			case err := <-errc:
				t.Fatal(err)
			}
		}
	})
}

// TestWriteFramePartsAfterClose: a closed Conn refuses with net.ErrClosed.
func TestWriteFramePartsAfterClose(t *testing.T) {
	na, _ := pipePair(t)
	c := framed.NewConn(na, framed.ConnConfig{})
	require.NoError(t, c.Close())
	assert.ErrorIs(t, c.WriteFrameParts([]byte("head"), []byte("body")), net.ErrClosed)
}

// TestWriteFramePartsAllocs: a reply made of the request's header and a
// new body costs no allocation, as WriteFrame costs none.
func TestWriteFramePartsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, f := range []framed.Format{{}, {LengthOffset: 4, BigEndian: true}, {LengthAdjust: 4}} {
		na, nb := tcpPair(t)
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, nb)
		}()
		c := framed.NewConn(na, framed.ConnConfig{Format: f})
		head, body := make([]byte, 4), make([]byte, 60)
		for range 1000 { // warm up: the queue's buffers reach their size
			require.NoError(t, c.WriteFrameParts(head, body))
		}
		require.NoError(t, c.Flush())
		allocs := testing.AllocsPerRun(1000, func() {
			if err := c.WriteFrameParts(head, body); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, "allocations per WriteFrameParts of 4+60 bytes, %+v", f)
		require.NoError(t, c.Flush())
		c.Close()
		<-drained
	}
}
