package framedtest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// Listener is a [net.Listener] whose connections are in memory, as gRPC's
// bufconn is: a test dials it with [Listener.Dial] instead of the network,
// so it needs no port, and the connections behave as TCP ones do where
// tests rely on them. A [github.com/framed-go/framed.Server] serves it
// with Serve, and [github.com/framed-go/framed.NewConn] frames the
// connections it dials.
//
// Each direction of a connection buffers a bounded number of bytes: a
// writer blocks while its peer's buffer is full, so a peer that does not
// read pushes back as it would over TCP. Read and write deadlines, Close
// (the peer reads io.EOF after the data and its writes fail) and CloseWrite
// (the peer reads io.EOF after the data; reading goes on) work as on a
// *net.TCPConn, and every method may be called by any number of goroutines.
//
// Dial does not wait for Accept: like a TCP backlog, connections wait in the
// Listener until accepted. Close closes the ones still waiting.
type Listener struct {
	size int

	mu     sync.Mutex
	cond   sync.Cond
	queue  []*memConn
	closed bool
	n      int
}

// NewListener returns a Listener whose connections buffer size bytes in
// each direction; zero means [DefaultBufferSize].
func NewListener(size int) *Listener {
	if size <= 0 {
		size = DefaultBufferSize
	}
	l := &Listener{size: size}
	l.cond.L = &l.mu
	return l
}

// Accept waits for and returns the next connection dialed to l. After Close
// it returns an error matching net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.closed {
			return nil, &net.OpError{Op: "accept", Net: "memory", Addr: l.Addr(), Err: net.ErrClosed}
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			return c, nil
		}
		l.cond.Wait()
	}
}

// Close stops l: a blocked Accept returns, later dials are refused, and
// connections dialed but not accepted are closed. It always returns nil.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for _, c := range l.queue {
		c.Close()
	}
	l.queue = nil
	l.cond.Broadcast()
	return nil
}

// Addr returns the listener's address, whose network is "memory".
func (l *Listener) Addr() net.Addr { return memAddr("framedtest") }

// Dial connects to l and returns the client's end of the new connection.
// After Close it returns an error matching syscall.ECONNREFUSED.
func (l *Listener) Dial() (net.Conn, error) {
	return l.DialContext(context.Background())
}

// DialContext is Dial that returns ctx's error, and connects nothing, when
// ctx is already done.
func (l *Listener) DialContext(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "memory", Addr: l.Addr(), Err: err}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, &net.OpError{Op: "dial", Net: "memory", Addr: l.Addr(), Err: syscall.ECONNREFUSED}
	}
	l.n++
	client, server := newMemPipe(l.size, memAddr(fmt.Sprintf("client-%d", l.n)), l.Addr())
	l.queue = append(l.queue, server)
	l.cond.Broadcast()
	return client, nil
}
