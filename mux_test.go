package framed_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

func TestKeyRead(t *testing.T) {
	frame := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09}
	tests := []struct {
		name   string
		give   framed.Key
		frame  []byte
		want   uint64
		wantOK bool
	}{
		{name: "zero: u32 LE at 0", give: framed.Key{}, frame: frame, want: 0x04030201, wantOK: true},
		{name: "u32 BE at 0", give: framed.Key{BigEndian: true}, frame: frame, want: 0x01020304, wantOK: true},
		{name: "u32 BE at 4", give: framed.Key{Offset: 4, Size: 4, BigEndian: true}, frame: frame, want: 0x05060708, wantOK: true},
		{name: "u32 at the end", give: framed.Key{Offset: 5, BigEndian: true}, frame: frame, want: 0x06070809, wantOK: true},
		{name: "u32 one byte short", give: framed.Key{Offset: 6}, frame: frame},
		{name: "u8 at 2", give: framed.Key{Offset: 2, Size: 1}, frame: frame, want: 3, wantOK: true},
		{name: "u8 past the end", give: framed.Key{Offset: 9, Size: 1}, frame: frame},
		{name: "u16 LE", give: framed.Key{Size: 2}, frame: frame, want: 0x0201, wantOK: true},
		{name: "u16 BE at 1", give: framed.Key{Offset: 1, Size: 2, BigEndian: true}, frame: frame, want: 0x0203, wantOK: true},
		{name: "u16 short", give: framed.Key{Size: 2}, frame: frame[:1]},
		{name: "u64 LE", give: framed.Key{Size: 8}, frame: frame, want: 0x0807060504030201, wantOK: true},
		{name: "u64 BE at 1", give: framed.Key{Offset: 1, Size: 8, BigEndian: true}, frame: frame, want: 0x0203040506070809, wantOK: true},
		{name: "u64 short", give: framed.Key{Size: 8}, frame: frame[:7]},
		{name: "offset past the end", give: framed.Key{Offset: 10, Size: 1}, frame: frame},
		{name: "empty frame", give: framed.Key{}, frame: nil},
		{name: "varint", give: framed.Key{Varint: true}, frame: []byte{0xac, 0x02, 0xff}, want: 300, wantOK: true},
		{name: "varint at 1", give: framed.Key{Offset: 1, Varint: true}, frame: []byte{0xff, 0x07}, want: 7, wantOK: true},
		{name: "varint cut short", give: framed.Key{Varint: true}, frame: []byte{0xac}},
		{name: "varint overflows", give: framed.Key{Varint: true}, frame: bytes.Repeat([]byte{0xff}, 11)},
		{name: "func", give: framed.Key{Func: func(f []byte) (uint64, bool) { return uint64(len(f)), len(f) > 0 }}, frame: frame, want: 9, wantOK: true},
		{name: "func says none", give: framed.Key{Func: func(f []byte) (uint64, bool) { return 0, false }}, frame: frame},
		{name: "invalid size", give: framed.Key{Size: 3}, frame: frame},
		{name: "negative offset", give: framed.Key{Offset: -1}, frame: frame},
	}
	for _, tt := range tests {
		got, ok := tt.give.Read(tt.frame)
		assert.Equal(t, tt.wantOK, ok, "%s: ok", tt.name)
		if tt.wantOK {
			assert.Equal(t, tt.want, got, "%s: key", tt.name)
		}
	}
}

func TestMuxHandlePanics(t *testing.T) {
	h := framed.EchoHandler{}
	tests := []struct {
		name string
		key  framed.Key
		give func(m *framed.Mux)
		want string
	}{
		{name: "nil Handler", give: func(m *framed.Mux) { m.Handle(1, nil) }, want: "nil Handler"},
		{name: "nil func", give: func(m *framed.Mux) { m.HandleFunc(1, nil) }, want: "nil func"},
		{name: "twice", give: func(m *framed.Mux) { m.Handle(7, h); m.Handle(7, h) }, want: "key 7 registered twice"},
		{name: "twice, large key", give: func(m *framed.Mux) { m.Handle(1<<40, h); m.Handle(1<<40, h) }, key: framed.Key{Size: 8}, want: "registered twice"},
		{name: "above a byte", key: framed.Key{Size: 1}, give: func(m *framed.Mux) { m.Handle(256, h) }, want: "key 256 does not fit a 1-byte Key"},
		{name: "above 2 bytes", key: framed.Key{Size: 2}, give: func(m *framed.Mux) { m.Handle(1<<16, h) }, want: "does not fit a 2-byte Key"},
		{name: "above 4 bytes", give: func(m *framed.Mux) { m.Handle(1<<32, h) }, want: "does not fit a 4-byte Key"},
		{name: "size 3", key: framed.Key{Size: 3}, give: func(m *framed.Mux) { m.Handle(1, h) }, want: "Key.Size 3"},
		{name: "negative offset", key: framed.Key{Offset: -1}, give: func(m *framed.Mux) { m.Handle(1, h) }, want: "Key.Offset -1"},
		{name: "varint with a size", key: framed.Key{Varint: true, Size: 4}, give: func(m *framed.Mux) { m.Handle(1, h) }, want: "Varint with Size 4"},
		{name: "func with an offset", key: framed.Key{Offset: 1, Func: func([]byte) (uint64, bool) { return 0, true }},
			give: func(m *framed.Mux) { m.Handle(1, h) }, want: "Key.Func with other Key fields"},
	}
	for _, tt := range tests {
		v := panicValue(func() { tt.give(&framed.Mux{Key: tt.key}) })
		require.NotNil(t, v, "%s panics", tt.name)
		assert.Contains(t, fmt.Sprint(v), tt.want, tt.name)
		assert.True(t, strings.HasPrefix(fmt.Sprint(v), "framed: "), "%s: %v", tt.name, v)
	}

	// What fits is accepted.
	assert.NotPanics(t, func() { (&framed.Mux{Key: framed.Key{Size: 1}}).Handle(255, h) })
	assert.NotPanics(t, func() { (&framed.Mux{Key: framed.Key{Varint: true}}).Handle(1<<63, h) })
}

// panicValue returns the value f panics with, or nil.
func panicValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// zinx is zinx's layout: msgID u32 BE, length u32 BE, data. A frame is
// the msgID and the data.
var zinx = framed.Format{LengthOffset: 4, BigEndian: true}

func zinxMsg(id uint32, data string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, id), data...)
}

// zinxMux routes zinx frames: 1 answers pong, 2 the data in upper case,
// 3 the data reversed, and 5000 (a key above the small ones) "large";
// each reply carries the request's msgID.
func zinxMux() *framed.Mux {
	mux := &framed.Mux{Key: framed.Key{BigEndian: true}}
	mux.HandleFunc(1, func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], []byte("pong"))
	})
	mux.HandleFunc(2, func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], bytes.ToUpper(frame[4:]))
	})
	mux.HandleFunc(3, func(_ context.Context, c *framed.Conn, frame []byte) error {
		body := bytes.Clone(frame[4:])
		for i, j := 0, len(body)-1; i < j; i, j = i+1, j-1 {
			body[i], body[j] = body[j], body[i]
		}
		return c.WriteFrameParts(frame[:4], body)
	})
	mux.HandleFunc(5000, func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], []byte("large"))
	})
	return mux
}

func TestMuxRoutesByKey(t *testing.T) {
	s := &framed.Server{Format: zinx, Handler: zinxMux()}
	r := serve(t, s)
	c, err := (&framed.Dialer{Format: zinx}).Dial(t.Context(), r.addr)
	require.NoError(t, err)
	defer c.Close()
	tests := []struct {
		give, want []byte
	}{
		{give: zinxMsg(1, "ping"), want: zinxMsg(1, "pong")},
		{give: zinxMsg(2, "hello"), want: zinxMsg(2, "HELLO")},
		{give: zinxMsg(3, "stressed"), want: zinxMsg(3, "desserts")},
		{give: zinxMsg(5000, ""), want: zinxMsg(5000, "large")},
		{give: zinxMsg(2, ""), want: zinxMsg(2, "")},
	}
	for _, tt := range tests {
		got, err := c.Request(t.Context(), tt.give)
		require.NoError(t, err, "request % x", tt.give)
		assert.Equal(t, tt.want, got, "reply to % x", tt.give)
	}
	st := s.Stats()
	assert.Zero(t, st.Unrouted)
	assert.Zero(t, st.HandlerErrors)
}

// TestMuxUnroutedEndsTheConnection: a frame with no route, or no key, ends
// the connection after the replies to the frames before it, with no reply
// of its own and none to the frames after it, and is counted as unrouted.
func TestMuxUnroutedEndsTheConnection(t *testing.T) {
	tests := []struct {
		name string
		bad  []byte
	}{
		{name: "unknown key", bad: zinxMsg(99, "who?")},
		{name: "unknown key 0", bad: zinxMsg(0, "")},
		{name: "unknown large key", bad: zinxMsg(5001, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &framed.Server{Format: zinx, Handler: zinxMux()}
			r := serve(t, s)
			nc := dialRaw(t, r.addr)
			var stream []byte
			for _, m := range [][]byte{zinxMsg(1, "a"), zinxMsg(2, "b"), tt.bad, zinxMsg(1, "after")} {
				var err error
				stream, err = zinx.AppendFrame(stream, m)
				require.NoError(t, err)
			}
			_, err := nc.Write(stream) // in one write: the frames are served in one run
			require.NoError(t, err)
			rd := framed.NewReader(nc, zinx)
			for _, want := range [][]byte{zinxMsg(1, "pong"), zinxMsg(2, "B")} {
				got, err := rd.ReadFrame()
				require.NoError(t, err, "%s: the replies owed before it", tt.name)
				assert.Equal(t, want, got, tt.name)
			}
			_, err = rd.ReadFrame()
			assert.ErrorIs(t, err, io.EOF, "%s: the connection ends cleanly after the replies owed", tt.name)
			waitFor(t, testTimeout, "the connection counted", func() bool { return s.Stats().Active == 0 })
			st := s.Stats()
			assert.EqualValues(t, 1, st.Unrouted, tt.name)
			assert.Zero(t, st.HandlerErrors, "%s: counted as unrouted, not as a handler error", tt.name)
		})
	}
}

// TestMuxFrameWithoutKey: a frame too short for its key is unrouted, and
// says so.
func TestMuxFrameWithoutKey(t *testing.T) {
	s := &framed.Server{Handler: zinxMux()} // the default Format: frames of any length
	r := serve(t, s)
	c := dial(t, r.addr)
	require.NoError(t, c.WriteFrame(zinxMsg(1, "")))
	require.NoError(t, c.WriteFrame([]byte{0, 0, 1}))
	got, err := c.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, zinxMsg(1, "pong"), got)
	_, err = c.ReadFrame()
	assert.ErrorIs(t, err, io.EOF)
	waitFor(t, testTimeout, "the connection counted", func() bool { return s.Stats().Unrouted == 1 })
}

func TestUnroutedError(t *testing.T) {
	mux := zinxMux()
	tests := []struct {
		frame   []byte
		want    *framed.UnroutedError
		wantMsg string
	}{
		{frame: zinxMsg(42, "x"), want: &framed.UnroutedError{Key: 42, Size: 5}, wantMsg: "framed: no route for key 42"},
		{frame: []byte{0, 1}, want: &framed.UnroutedError{NoKey: true, Size: 2}, wantMsg: "framed: no route: frame of 2 bytes holds no key"},
	}
	for _, tt := range tests {
		err := mux.ServeFrame(context.Background(), nil, tt.frame)
		require.ErrorIs(t, err, framed.ErrUnrouted, "% x", tt.frame)
		var ue *framed.UnroutedError
		require.ErrorAs(t, err, &ue, "% x", tt.frame)
		assert.Equal(t, tt.want, ue, "% x", tt.frame)
		assert.EqualError(t, err, tt.wantMsg, "% x", tt.frame)
		assert.ErrorIs(t, fmt.Errorf("wrapped: %w", err), framed.ErrUnrouted, "wrapped")
	}
}

// TestMuxNotFound: a NotFound handler gets the frames with no route, and
// the connection goes on when it returns nil.
func TestMuxNotFound(t *testing.T) {
	mux := zinxMux()
	mux.NotFound = framed.HandlerFunc(func(_ context.Context, c *framed.Conn, frame []byte) error {
		if len(frame) < 4 {
			return c.WriteFrameParts(zinxMsg(0, ""), []byte("no key"))
		}
		return c.WriteFrameParts(frame[:4], []byte("unknown msgID"))
	})
	s := &framed.Server{Format: zinx, Handler: mux}
	r := serve(t, s)
	c, err := (&framed.Dialer{Format: zinx}).Dial(t.Context(), r.addr)
	require.NoError(t, err)
	defer c.Close()
	for _, tt := range []struct{ give, want []byte }{
		{give: zinxMsg(99, "?"), want: zinxMsg(99, "unknown msgID")},
		{give: zinxMsg(1, ""), want: zinxMsg(1, "pong")},
	} {
		got, err := c.Request(t.Context(), tt.give)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	assert.Zero(t, s.Stats().Unrouted)
}

// trace is a Middleware that appends its name to a log before and after
// the Handler it wraps.
func trace(log *[]string, name string) framed.Middleware {
	return func(next framed.Handler) framed.Handler {
		return framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			*log = append(*log, name)
			err := next.ServeFrame(ctx, c, frame)
			*log = append(*log, "/"+name)
			return err
		})
	}
}

func TestChain(t *testing.T) {
	var log []string
	h := framed.HandlerFunc(func(context.Context, *framed.Conn, []byte) error {
		log = append(log, "h")
		return nil
	})
	mw := []framed.Middleware{trace(&log, "a"), trace(&log, "b"), trace(&log, "c")}
	chained := framed.Chain(mw...)
	mw[0] = trace(&log, "changed") // Chain keeps its own list
	require.NoError(t, chained(h).ServeFrame(context.Background(), nil, nil))
	assert.Equal(t, []string{"a", "b", "c", "h", "/c", "/b", "/a"}, log)

	log = nil
	require.NoError(t, framed.Chain()(h).ServeFrame(context.Background(), nil, nil))
	assert.Equal(t, []string{"h"}, log, "Chain() adds nothing")
}

// TestMiddlewareWrapsRoutesWhateverTheOrder: a Middleware around the Mux
// sees every frame, routes registered after it was applied included; one
// around a route sees that route's frames only.
func TestMiddlewareWrapsRoutesWhateverTheOrder(t *testing.T) {
	var log []string
	mux := &framed.Mux{Key: framed.Key{Size: 1}}
	route := func(name string) framed.Handler {
		return framed.HandlerFunc(func(context.Context, *framed.Conn, []byte) error {
			log = append(log, name)
			return nil
		})
	}
	mux.Handle(1, route("one"))
	h := framed.Chain(trace(&log, "all"))(mux) // applied before route 2 exists
	mux.Handle(2, framed.Chain(trace(&log, "two only"))(route("two")))
	mux.Handle(3, route("three"))

	for _, key := range []byte{1, 2, 3} {
		require.NoError(t, h.ServeFrame(context.Background(), nil, []byte{key}))
	}
	assert.Equal(t, []string{
		"all", "one", "/all",
		"all", "two only", "two", "/two only", "/all",
		"all", "three", "/all",
	}, log)
}

// TestMuxRoutePanicIsRecovered: a panic in a route, under middleware, is
// the Server's to recover: the middleware's deferred calls run, and the
// panic closes that connection only and is counted.
func TestMuxRoutePanicIsRecovered(t *testing.T) {
	var entered, unwound atomic.Int64
	guard := func(next framed.Handler) framed.Handler {
		return framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			entered.Add(1)
			defer unwound.Add(1)
			return next.ServeFrame(ctx, c, frame)
		})
	}
	mux := zinxMux()
	mux.Handle(13, guard(framed.HandlerFunc(func(context.Context, *framed.Conn, []byte) error {
		panic("route 13 fails")
	})))
	s := &framed.Server{Format: zinx, Handler: framed.Chain(guard)(mux)}
	r := serve(t, s)
	other, err := (&framed.Dialer{Format: zinx}).Dial(t.Context(), r.addr)
	require.NoError(t, err)
	defer other.Close()

	victim, err := (&framed.Dialer{Format: zinx}).Dial(t.Context(), r.addr)
	require.NoError(t, err)
	defer victim.Close()
	_, err = victim.Request(t.Context(), zinxMsg(13, ""))
	assert.Error(t, err, "the panicking route's connection ends")

	got, err := other.Request(t.Context(), zinxMsg(1, ""))
	require.NoError(t, err, "another connection is served")
	assert.Equal(t, zinxMsg(1, "pong"), got)
	waitFor(t, testTimeout, "the panic counted", func() bool { return s.Stats().PanicsRecovered == 1 })
	assert.EqualValues(t, 3, entered.Load(), "the Mux's guard twice, route 13's once")
	assert.Equal(t, entered.Load(), unwound.Load(), "every guard's deferred call ran")
}

// TestMuxHandleWhileServing registers routes while other goroutines serve
// frames through the Mux: under -race, the two must not race, and a route
// once registered is found.
func TestMuxHandleWhileServing(t *testing.T) {
	mux := &framed.Mux{Key: framed.Key{Size: 2}}
	ok := framed.HandlerFunc(func(context.Context, *framed.Conn, []byte) error { return nil })
	const routes = 2000 // above and below the keys kept in a slice
	registered := make(chan int, routes)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(registered)
		for k := range routes {
			mux.Handle(uint64(k), ok)
			registered <- k
		}
	})
	for range 4 {
		wg.Go(func() {
			frame := make([]byte, 2)
			for k := range registered {
				binary.LittleEndian.PutUint16(frame, uint16(k))
				if err := mux.ServeFrame(context.Background(), nil, frame); err != nil {
					t.Errorf("key %d, registered: %v", k, err)
					return
				}
				binary.LittleEndian.PutUint16(frame, routes+1)
				if err := mux.ServeFrame(context.Background(), nil, frame); !errors.Is(err, framed.ErrUnrouted) {
					t.Errorf("key %d, never registered: %v", routes+1, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// muxOf16 is the Mux of the benchmark: 16 routes keyed by a 4-byte ID,
// each of which only counts.
func muxOf16(served *int64) *framed.Mux {
	mux := &framed.Mux{}
	for k := range 16 {
		mux.HandleFunc(uint64(k), func(context.Context, *framed.Conn, []byte) error {
			*served++
			return nil
		})
	}
	return mux
}

// TestMuxAllocs: routing a frame costs no allocation.
func TestMuxAllocs(t *testing.T) {
	var served int64
	mux := muxOf16(&served)
	frames := make([][]byte, 16)
	for k := range frames {
		frames[k] = binary.LittleEndian.AppendUint32(nil, uint32(k))
		frames[k] = append(frames[k], make([]byte, 60)...)
	}
	ctx := context.Background()
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if err := mux.ServeFrame(ctx, nil, frames[i%16]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	assert.Zero(t, allocs, "allocations per frame routed")
	assert.Positive(t, served)
}

// BenchmarkMuxServeFrame is the cost of routing alone, against calling the
// route directly.
func BenchmarkMuxServeFrame(b *testing.B) {
	var served int64
	frames := make([][]byte, 16)
	for k := range frames {
		frames[k] = binary.LittleEndian.AppendUint32(nil, uint32(k))
		frames[k] = append(frames[k], make([]byte, 60)...)
	}
	ctx := context.Background()
	for _, bb := range []struct {
		name string
		h    framed.Handler
	}{
		{"handler", framed.HandlerFunc(func(context.Context, *framed.Conn, []byte) error { served++; return nil })},
		{"mux16", muxOf16(&served)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := bb.h.ServeFrame(ctx, nil, frames[i&15]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
