package framed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
)

// ErrUnrouted matches (with [errors.Is]) every [*UnroutedError].
var ErrUnrouted = errors.New("framed: no route for frame")

// UnroutedError is what a [Mux] without a NotFound handler returns for a
// frame it has no route for: its key has no Handler, or the frame holds no
// key. A [Server] then ends the connection once the replies to the frames
// before it are sent, and counts it in ServerStats.Unrouted. It matches
// [ErrUnrouted].
type UnroutedError struct {
	Key   uint64 // the frame's key; 0 when NoKey
	NoKey bool   // the frame holds no key: too short for it, a malformed varint, or Key.Func said so
	Size  int    // the frame's length
}

// Error names the key, or says that the frame held none.
func (e *UnroutedError) Error() string {
	if e.NoKey {
		return "framed: no route: frame of " + strconv.Itoa(e.Size) + " bytes holds no key"
	}
	return "framed: no route for key " + strconv.FormatUint(e.Key, 10)
}

// Is reports whether target is [ErrUnrouted].
func (e *UnroutedError) Is(target error) bool { return target == ErrUnrouted }

// Key says where a [Mux] finds each frame's key: an unsigned integer of
// Size bytes, or an unsigned varint, starting Offset bytes into the frame,
// or whatever Func returns. The frame is the one a [Handler] gets, without
// the length field (see [Format]). The zero value is a 4-byte
// little-endian integer at the start of the frame. For zinx's layout
// (msgID u32 big-endian, then the length, then data) the key is
// Key{BigEndian: true}; for easytcp's (length u32, then id u32
// little-endian) it is the zero Key.
type Key struct {
	// Offset is the number of bytes of the frame before the key.
	Offset int

	// Size is the key's width in bytes: 1, 2, 4 or 8. Zero means 4.
	Size int

	// BigEndian selects network byte order. False means little-endian.
	BigEndian bool

	// Varint selects an unsigned varint key, as in protobuf. Size must be
	// 0, and BigEndian is ignored.
	Varint bool

	// Func, when not nil, returns the frame's key and true, or false for
	// a frame that holds none; the other fields must then be zero. It is
	// called once per frame, concurrently for frames of different
	// connections, and must not keep frame.
	Func func(frame []byte) (key uint64, ok bool)
}

// check reports whether k can be used.
func (k *Key) check() error {
	switch {
	case k.Func != nil && (k.Offset != 0 || k.Size != 0 || k.BigEndian || k.Varint):
		return errors.New("framed: Key.Func with other Key fields set")
	case k.Offset < 0:
		return fmt.Errorf("framed: Key.Offset %d is negative", k.Offset)
	case k.Varint && k.Size != 0:
		return fmt.Errorf("framed: Key.Varint with Size %d", k.Size)
	}
	switch k.Size {
	case 0, 1, 2, 4, 8:
		return nil
	}
	return fmt.Errorf("framed: Key.Size %d is not 1, 2, 4 or 8", k.Size)
}

// max returns the largest key k can read.
func (k *Key) max() uint64 {
	switch {
	case k.Func != nil || k.Varint:
		return math.MaxUint64
	case k.Size == 1:
		return math.MaxUint8
	case k.Size == 2:
		return math.MaxUint16
	case k.Size == 8:
		return math.MaxUint64
	}
	return math.MaxUint32
}

// Read returns frame's key and true, or false when frame holds no key: it
// ends before Offset+Size bytes, its varint is cut short or overflows 64
// bits, Func returns false, or k itself is invalid.
func (k Key) Read(frame []byte) (key uint64, ok bool) { return k.read(frame) }

func (k *Key) read(frame []byte) (uint64, bool) {
	if k.Func != nil {
		return k.Func(frame)
	}
	if k.Offset < 0 || k.Offset > len(frame) {
		return 0, false
	}
	b := frame[k.Offset:]
	if k.Varint {
		v, n := binary.Uvarint(b)
		return v, n > 0
	}
	switch k.Size {
	case 0, 4:
		if len(b) < 4 {
			return 0, false
		}
		if k.BigEndian {
			return uint64(binary.BigEndian.Uint32(b)), true
		}
		return uint64(binary.LittleEndian.Uint32(b)), true
	case 1:
		if len(b) < 1 {
			return 0, false
		}
		return uint64(b[0]), true
	case 2:
		if len(b) < 2 {
			return 0, false
		}
		if k.BigEndian {
			return uint64(binary.BigEndian.Uint16(b)), true
		}
		return uint64(binary.LittleEndian.Uint16(b)), true
	case 8:
		if len(b) < 8 {
			return 0, false
		}
		if k.BigEndian {
			return binary.BigEndian.Uint64(b), true
		}
		return binary.LittleEndian.Uint64(b), true
	}
	return 0, false
}

// Mux is a [Handler] that routes each frame to the Handler registered for
// the frame's key, as net/http's ServeMux routes a request by its path.
// The key is a field of the frame, a message ID or a command code, read
// as Key says. The zero value routes by a 4-byte little-endian key at the
// start of the frame, and has no routes.
//
//	mux := &framed.Mux{Key: framed.Key{BigEndian: true}} // zinx's msgID
//	mux.HandleFunc(1, ping)
//	mux.Handle(2, framed.Chain(logFrames)(echo))
//	srv := &framed.Server{Format: framed.Format{LengthOffset: 4, BigEndian: true}, Handler: mux}
//
// A frame whose key has no route, or that holds no key at all (it is too
// short, say), goes to NotFound. Without one, ServeFrame returns an
// [*UnroutedError], and a [Server] ends the connection once the replies to
// the frames before it are sent. It never drops such a frame silently: a
// client that pipelines requests and matches replies in order would be
// out of step from then on.
//
// Key must be set before the first Handle, which checks keys against it,
// and neither Key nor NotFound may change once the Mux serves frames.
// Handle may be called at any time, also while the Mux serves frames from
// any number of connections; ServeFrame takes no lock.
type Mux struct {
	// Key says where each frame's key is. The zero value is a 4-byte
	// little-endian unsigned integer at the start of the frame.
	Key Key

	// NotFound serves the frames that have no route. It may reply (with
	// an error frame of the protocol, say) and return nil to go on with
	// the connection. Nil means return an [*UnroutedError].
	NotFound Handler

	mu     sync.Mutex
	routes map[uint64]Handler         // every route; guarded by mu
	table  atomic.Pointer[routeTable] // routes as ServeFrame reads them; nil when out of date
}

// smallKeys bounds the keys that routeTable holds in a slice: message IDs
// are mostly small numbers, and a slice finds them faster than a map.
const smallKeys = 1024

// routeTable is a Mux's routes as they were when it was made: it never
// changes, so that ServeFrame reads it without a lock.
type routeTable struct {
	small []Handler          // by key, for keys below smallKeys
	large map[uint64]Handler // the other keys
}

func (t *routeTable) lookup(key uint64) Handler {
	if key < uint64(len(t.small)) {
		return t.small[key]
	}
	return t.large[key]
}

// Handle registers h for frames whose key is key. It panics when h is nil,
// when key is registered already, when key is larger than Key can read
// (above 255 for a 1-byte Key), and when Key is invalid: a Size other than
// 0, 1, 2, 4 or 8, a negative Offset, Varint with a Size, or Func with any
// other field.
func (m *Mux) Handle(key uint64, h Handler) {
	if h == nil {
		panic("framed: Mux.Handle of a nil Handler for key " + strconv.FormatUint(key, 10))
	}
	if err := m.Key.check(); err != nil {
		panic(err.Error())
	}
	if key > m.Key.max() {
		size := m.Key.Size
		if size == 0 {
			size = 4
		}
		panic(fmt.Sprintf("framed: Mux.Handle: key %d does not fit a %d-byte Key", key, size))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.routes[key]; ok {
		panic("framed: Mux.Handle: key " + strconv.FormatUint(key, 10) + " registered twice")
	}
	if m.routes == nil {
		m.routes = make(map[uint64]Handler)
	}
	m.routes[key] = h
	m.table.Store(nil) // ServeFrame builds the next table from routes
}

// HandleFunc registers f for frames whose key is key, as Handle does.
func (m *Mux) HandleFunc(key uint64, f func(ctx context.Context, c *Conn, frame []byte) error) {
	if f == nil {
		panic("framed: Mux.HandleFunc of a nil func for key " + strconv.FormatUint(key, 10))
	}
	m.Handle(key, HandlerFunc(f))
}

// ServeFrame reads frame's key and calls the Handler registered for it, or
// NotFound, with the same arguments, and returns what it returns. Without
// a route or a NotFound it returns an [*UnroutedError].
func (m *Mux) ServeFrame(ctx context.Context, c *Conn, frame []byte) error {
	key, ok := m.Key.read(frame)
	if ok {
		t := m.table.Load()
		if t == nil {
			t = m.buildTable()
		}
		if h := t.lookup(key); h != nil {
			return h.ServeFrame(ctx, c, frame)
		}
	}
	if m.NotFound != nil {
		return m.NotFound.ServeFrame(ctx, c, frame)
	}
	return &UnroutedError{Key: key, NoKey: !ok, Size: len(frame)}
}

// buildTable makes the table of the routes registered so far, once per
// change to them.
func (m *Mux) buildTable() *routeTable {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.table.Load(); t != nil {
		return t // another connection built it meanwhile
	}
	t := &routeTable{}
	n := 0
	for key := range m.routes {
		if key < smallKeys {
			n = max(n, int(key)+1)
		}
	}
	t.small = make([]Handler, n)
	for key, h := range m.routes {
		if key < smallKeys {
			t.small[key] = h
			continue
		}
		if t.large == nil {
			t.large = make(map[uint64]Handler)
		}
		t.large[key] = h
	}
	m.table.Store(t)
	return t
}

// Middleware wraps a [Handler] in another that does something before or
// after it, or instead of it: log, count, check, recover. The same
// Middleware wraps one route, mux.Handle(key, mw(h)), or every frame,
// srv.Handler = mw(mux), and [Chain] makes one of several. A Middleware
// applies to what it wraps, whenever routes are registered.
type Middleware func(Handler) Handler

// Chain returns a Middleware that wraps a Handler in each of mw, the first
// outermost: Chain(a, b)(h) is a(b(h)), so a sees each frame first and
// returns last. Chain() returns the Handler it is given.
func Chain(mw ...Middleware) Middleware {
	mw = append([]Middleware(nil), mw...) // the caller may reuse its slice
	return func(h Handler) Handler {
		for i := len(mw) - 1; i >= 0; i-- {
			h = mw[i](h)
		}
		return h
	}
}
