package framed_test

import (
	"bufio"
	"bytes"
	"context"
	"go/constant"
	"go/token"
	"go/types"
	"io"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// protocolLayouts are the layouts of README.md's Format table.
var protocolLayouts = []struct {
	name string
	f    framed.Format
}{
	{"zinx", framed.Format{LengthOffset: 4, BigEndian: true}},
	{"easytcp", framed.Format{LengthAdjust: 4}},
	{"gRPC", framed.Format{LengthOffset: 1, BigEndian: true}},
	{"HTTP/2", framed.Format{HeaderSize: 3, BigEndian: true, LengthAdjust: 6}},
	{"MySQL", framed.Format{HeaderSize: 3, LengthAdjust: 1}},
	{"TLS", framed.Format{LengthOffset: 3, HeaderSize: 2, BigEndian: true, MaxFrameSize: 3 + 1<<14}},
	{"length counts itself", framed.Format{BigEndian: true, LengthAdjust: -4}},
	{"offset, 3 bytes, negative adjust", framed.Format{LengthOffset: 2, HeaderSize: 3, BigEndian: true, LengthAdjust: -5}},
	{"varint after a byte", framed.Format{Varint: true, LengthOffset: 1}},
}

// layoutFrames returns frames for f: the shortest it can write, a few
// small ones, and, when the limit allows, one for the large-frame paths.
func layoutFrames(f framed.Format) [][]byte {
	shortest := f.LengthOffset + max(f.LengthAdjust, 0)
	var frames [][]byte
	for i, n := range []int{0, 1, 5, 300, 70000} {
		if n += shortest; n <= f.Limit() {
			frames = append(frames, payload(i, n))
		}
	}
	return frames
}

// reverseTail is the handler of the layout tests: it replies with the
// frame's header fields as they are and the rest reversed, so a reply that
// lost or moved a header byte does not compare equal.
func reverseTail(f framed.Format, p []byte) []byte {
	k := f.LengthOffset + max(f.LengthAdjust, 0)
	out := bytes.Clone(p)
	slices.Reverse(out[k:])
	return out
}

// TestLayoutServerAndDial runs every layout through Server and Dial: a
// Client sends frames and reads the replies, and a raw connection checks
// the bytes on the wire against the encoder's.
func TestLayoutServerAndDial(t *testing.T) {
	for _, tt := range protocolLayouts {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			s := &framed.Server{Format: f, Handler: framed.HandlerFunc(func(_ context.Context, c *framed.Conn, p []byte) error {
				return c.WriteFrame(reverseTail(f, p))
			})}
			r := serve(t, s)
			frames := layoutFrames(f)

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := (&framed.Dialer{Format: f}).Dial(ctx, r.addr)
			require.NoError(t, err, "Dial with %s", tt.name)
			defer c.Close()
			for _, p := range frames {
				require.NoError(t, c.Send(t.Context(), p), "%s: Send of %d bytes", tt.name, len(p))
			}
			for _, p := range frames {
				got, err := c.Receive(t.Context())
				require.NoError(t, err, "%s: Receive of %d bytes", tt.name, len(p))
				assert.True(t, bytes.Equal(reverseTail(f, p), got), "%s: reply to %d bytes", tt.name, len(p))
			}

			// The same exchange as raw bytes: what the Server writes is
			// what the encoder writes.
			nc := dialRaw(t, r.addr)
			var stream, want []byte
			for _, p := range frames {
				stream, err = f.AppendFrame(stream, p)
				require.NoError(t, err)
				want, err = f.AppendFrame(want, reverseTail(f, p))
				require.NoError(t, err)
			}
			_, err = nc.Write(stream)
			require.NoError(t, err)
			got := make([]byte, len(want))
			_, err = io.ReadFull(nc, got)
			require.NoError(t, err, "%s: read the replies", tt.name)
			assert.True(t, bytes.Equal(want, got), "%s: the Server's bytes", tt.name)
		})
	}
}

// TestLayoutConn checks Conn over a pipe and TCP: the bytes WriteFrame
// sends are the encoder's, ReadFrame returns what was written, and a frame
// too short for its layout is refused with nothing sent.
func TestLayoutConn(t *testing.T) {
	for _, tt := range protocolLayouts {
		t.Run(tt.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, tr transport) {
				a, b := connPair(t, tr, framed.ConnConfig{Format: tt.f})
				frames := layoutFrames(tt.f)
				errc := make(chan error, 1)
				go func() {
					defer close(errc)
					for _, p := range frames {
						if err := a.WriteFrame(p); err != nil {
							errc <- err
							return
						}
					}
					errc <- a.Flush()
				}()
				for _, p := range frames {
					got, err := b.ReadFrame()
					require.NoError(t, err, "%s: ReadFrame of %d bytes", tt.name, len(p))
					assert.True(t, bytes.Equal(p, got), "%s: frame of %d bytes", tt.name, len(p))
				}
				require.NoError(t, <-errc, "%s: WriteFrame", tt.name)

				if shortest := tt.f.LengthOffset + max(tt.f.LengthAdjust, 0); shortest > 0 {
					err := a.WriteFrame(make([]byte, shortest-1))
					assert.ErrorIs(t, err, framed.ErrFrameTooShort, "%s: WriteFrame of %d bytes", tt.name, shortest-1)
				}
			})
		})
	}
}

// TestLayoutConnWire checks the bytes a Conn writes for each layout
// against the encoder's, which the golden vectors pin.
func TestLayoutConnWire(t *testing.T) {
	for _, tt := range protocolLayouts {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer server.Close()
			c := framed.NewConn(client, framed.ConnConfig{Format: tt.f})
			defer c.Close()
			var want []byte
			frames := layoutFrames(tt.f)
			for _, p := range frames {
				var err error
				want, err = tt.f.AppendFrame(want, p)
				require.NoError(t, err)
			}
			done := make(chan error, 1)
			go func() {
				for _, p := range frames {
					if err := c.WriteFrame(p); err != nil {
						done <- err
						return
					}
				}
				done <- c.Flush()
			}()
			require.NoError(t, server.SetDeadline(time.Now().Add(testTimeout)))
			got := make([]byte, len(want))
			_, err := io.ReadFull(server, got)
			require.NoError(t, err)
			require.NoError(t, <-done)
			assert.True(t, bytes.Equal(want, got), "%s: Conn's bytes", tt.name)
		})
	}
}

// TestLayoutHostileHeaders checks that a Server refuses, from the header
// alone, a length that its layout adjusts below zero or above the limit,
// closing that connection.
func TestLayoutHostileHeaders(t *testing.T) {
	tests := []struct {
		name string
		f    framed.Format
		give []byte
	}{
		{"adjusted below zero", framed.Format{BigEndian: true, LengthAdjust: -4}, []byte{0, 0, 0, 3}},
		{"offset then too large", framed.Format{LengthOffset: 4, BigEndian: true, MaxFrameSize: 100}, []byte{0, 0, 0, 1, 0, 0, 0, 97}},
		{"3 bytes too large", framed.Format{HeaderSize: 3, BigEndian: true, LengthAdjust: 6}, []byte{0xff, 0xff, 0xff, 4, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &framed.Server{Format: tt.f, Handler: framed.HandlerFunc(func(context.Context, *framed.Conn, []byte) error {
				t.Error("handler called for a hostile header")
				return nil
			})}
			r := serve(t, s)
			nc := dialRaw(t, r.addr)
			_, err := nc.Write(tt.give) // the header alone: the payload never comes
			require.NoError(t, err)
			n, err := bufio.NewReader(nc).Read(make([]byte, 1))
			assert.Zero(t, n, "%s: bytes after a hostile header", tt.name)
			assert.Error(t, err, "%s: the Server closes the connection", tt.name)
			waitFor(t, testTimeout, "the refusal is counted", func() bool {
				st := s.Stats()
				return st.FramesTooLarge+st.InvalidLength == 1
			})
		})
	}
}

// TestLayoutREADME checks the Format recipes of README.md's table: each is
// a valid Format, and each is a layout these tests run (MaxFrameSize
// aside), so the README shows no layout that is not tested.
func TestLayoutREADME(t *testing.T) {
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	tested := map[framed.Format]bool{}
	for _, l := range protocolLayouts {
		l.f.MaxFrameSize = 0
		tested[l.f] = true
	}
	found := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		_, lit, ok := strings.Cut(line, "`framed.Format{")
		if !ok || !strings.HasPrefix(line, "|") {
			continue
		}
		lit, _, _ = strings.Cut(lit, "}`")
		f := parseFormatLiteral(t, lit)
		_, err := f.Encode(make([]byte, f.LengthOffset+max(f.LengthAdjust, 0)))
		assert.NoError(t, err, "README's framed.Format{%s} encodes its shortest frame", lit)
		f.MaxFrameSize = 0
		assert.True(t, tested[f], "README's framed.Format{%s} is one of protocolLayouts", lit)
		found++
	}
	assert.Equal(t, len(protocolLayouts)-1, found, "README's table has every protocol layout but the varint one")
}

// parseFormatLiteral evaluates the fields of a framed.Format literal, as
// in "LengthOffset: 4, BigEndian: true, MaxFrameSize: 16384 + 6".
func parseFormatLiteral(t *testing.T, lit string) framed.Format {
	t.Helper()
	var f framed.Format
	v := reflect.ValueOf(&f).Elem()
	for field := range strings.SplitSeq(lit, ",") {
		name, expr, ok := strings.Cut(field, ":")
		require.True(t, ok, "field %q of %q", field, lit)
		tv, err := types.Eval(token.NewFileSet(), nil, token.NoPos, strings.TrimSpace(expr))
		require.NoError(t, err, "value of %q", field)
		fv := v.FieldByName(strings.TrimSpace(name))
		require.True(t, fv.IsValid(), "Format has no field %q", name)
		switch fv.Kind() {
		case reflect.Bool:
			fv.SetBool(constant.BoolVal(tv.Value))
		default:
			n, exact := constant.Int64Val(tv.Value)
			require.True(t, exact, "value of %q", field)
			fv.SetInt(n)
		}
	}
	return f
}

// TestLayoutMemoryFollowsBytes checks that, for every layout, a header
// that claims the largest frame followed by a few bytes costs a Reader and
// Decode about those bytes, not the frame the header claims.
func TestLayoutMemoryFollowsBytes(t *testing.T) {
	for _, tt := range protocolLayouts {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.MaxFrameSize = 4 << 20
			limit := f.Limit()
			full, err := f.Encode(make([]byte, limit))
			require.NoError(t, err)
			stalled := full[:len(full)-limit+f.LengthOffset+10] // the header and 10 bytes more
			var rerr, derr error
			allocated := measureAlloc(func() {
				r := framed.NewReaderSize(bytes.NewReader(stalled), f, 64)
				_, rerr = r.ReadFrame()
				_, derr = f.Decode(bufio.NewReader(bytes.NewReader(stalled)))
			})
			assert.Equal(t, io.ErrUnexpectedEOF, rerr, "%s: ReadFrame of a cut frame", tt.name)
			assert.Equal(t, io.ErrUnexpectedEOF, derr, "%s: Decode of a cut frame", tt.name)
			assert.Less(t, allocated, uint64(2*framed.GrowChunk+16<<10),
				"%s: bytes allocated for a header claiming %d bytes and 10 more", tt.name, limit)
		})
	}
}
