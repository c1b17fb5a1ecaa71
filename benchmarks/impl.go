package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode says what a server does with the frames it receives.
type Mode int

const (
	// Sink reads every frame, checks its size and counts it; it replies
	// nothing.
	Sink Mode = iota
	// Echo sends every frame back to its sender.
	Echo
)

// maxFrame is the largest payload any server here accepts. Every
// implementation checks the length from the header before it reads or
// allocates the payload.
const maxFrame = 4 << 20

// headerSize is the length prefix of every implementation here: an int32
// little-endian, except go-msgio's uint32 big-endian.
const headerSize = 4

var errBadFrame = errors.New("bench: frame of unexpected size")

// ServerConfig says how to start a server.
type ServerConfig struct {
	Mode Mode

	// Size, in Sink mode, is the payload size every frame must have; a
	// frame of another size ends the connection with an error. Negative
	// means any size.
	Size int

	// Done, in Sink mode, receives one report per connection, once the
	// peer has closed its side and every frame before that was read. A
	// full channel drops the report; give it room for every connection.
	Done chan<- SinkDone

	// BufSize is the bufio size of the raw server, zero meaning 64 KiB.
	// Other implementations ignore it.
	BufSize int
}

// report sends d on cfg.Done without ever blocking a server goroutine.
func (cfg ServerConfig) report(d SinkDone) {
	if cfg.Done == nil {
		return
	}
	select {
	case cfg.Done <- d:
	default:
	}
}

// SinkDone is a sink connection's final count.
type SinkDone struct {
	Frames int64
	At     time.Time // when the last frame had been read and the peer's FIN seen
	Err    error     // why the connection ended, when not a clean FIN between frames
}

// Server is a running server of one implementation, on 127.0.0.1.
type Server interface {
	Addr() string
	// Active returns the number of connections open now.
	Active() int
	// Close closes the listener and every connection, and returns once
	// every goroutine the server started has returned.
	Close() error
}

// Client is one connection's client side. WriteFrame may buffer; Flush
// sends what is buffered. ReadFrame's payload is valid until the next
// call. Buffered is the number of bytes received but not yet returned (0
// for unbuffered clients). A Client is used by one goroutine at a time,
// except that one goroutine may write while another reads.
type Client interface {
	WriteFrame(p []byte) error
	Flush() error
	ReadFrame() ([]byte, error)
	Buffered() int
	SetDeadline(t time.Time) error
	CloseWrite() error
	Close() error
}

// Impl is one implementation under test: how to start its server and how
// to connect a client to it.
type Impl struct {
	Name      string // as the table shows it
	Key       string // as Go benchmark and test names show it
	Note      string
	BigEndian bool // the length prefix is big-endian (go-msgio)
	Serve     func(ServerConfig) (Server, error)
	Dial      func(addr string) (Client, error)
}

// impls returns the implementations in the order every repetition runs
// them.
func impls() []Impl {
	return []Impl{rawImpl(), framedImpl(), naiveImpl(), msgioImpl(), gnetImpl()}
}

func implByName(name string) (Impl, bool) {
	for _, im := range impls() {
		if im.Name == name {
			return im, true
		}
	}
	return Impl{}, false
}

// putHeader writes the little-endian int32 length prefix.
func putHeader(h []byte, n int) { binary.LittleEndian.PutUint32(h, uint32(n)) }

// parseHeader returns the payload length a little-endian header announces,
// refusing what no server here accepts.
func parseHeader(h []byte) (int, error) {
	n := int(int32(binary.LittleEndian.Uint32(h)))
	if n < 0 || n > maxFrame {
		return 0, fmt.Errorf("bench: frame length %d out of range", n)
	}
	return n, nil
}

func dialTCP(addr string) (*net.TCPConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return nc.(*net.TCPConn), nil
}

// connServer serves each accepted connection on its own goroutine, as the
// raw, naive and go-msgio servers do. Close closes the listener and every
// connection and waits for every goroutine.
type connServer struct {
	ln     net.Listener
	serve  func(net.Conn)
	wg     sync.WaitGroup
	active atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startConnServer(serve func(net.Conn)) (*connServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &connServer{ln: ln, serve: serve, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *connServer) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return // closed; loopback accept errors are not worth retrying here
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.active.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(nc)
			nc.Close()
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
			s.active.Add(-1)
		}()
	}
}

func (s *connServer) Addr() string { return s.ln.Addr().String() }
func (s *connServer) Active() int  { return int(s.active.Load()) }

func (s *connServer) Close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
