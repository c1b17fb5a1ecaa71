package framedtest

import (
	"context"
	"net"
	"sync"

	"github.com/framed-go/framed"
)

// Proxy is a TCP proxy on a loopback port that passes every connection made
// to Addr on to a target address, with [Faults] on the way up (from the
// client to the target) and down (from the target back). The Faults apply
// to every connection, current and future, and may be changed while bytes
// flow; limits count per connection.
//
//	proxy := framedtest.NewProxy(srv.Addr)
//	defer proxy.Close()
//	proxy.Up.Slice(1) // the server gets one byte per read
//	client, err := proxy.Dial(ctx)
//
// The proxy passes bytes, whatever they mean; Dial connects a Client in
// the default Format, or in the one given to NewFormatProxy. A client that
// half-closes is half-closed on to the target, and a reset on one side
// resets the other.
type Proxy struct {
	// Addr is the proxy's address, "127.0.0.1:port".
	Addr string
	// Up is what happens to the bytes from clients to the target.
	Up *Faults
	// Down is what happens to the bytes from the target to clients.
	Down *Faults

	target string
	format framed.Format // Dial's
	ln     net.Listener
	stop   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[*proxyConn]struct{}
	closed bool
}

// proxyConn is one client's connection and the proxy's to the target.
type proxyConn struct {
	client, target net.Conn
	once           sync.Once
}

func (pc *proxyConn) end(reset bool) {
	pc.once.Do(func() {
		if reset {
			resetConn(pc.client)
			resetConn(pc.target)
		} else {
			pc.client.Close()
			pc.target.Close()
		}
	})
}

// NewProxy starts a Proxy to the TCP address target on a free loopback
// port, whose Dial speaks the default Format. It panics when it cannot
// listen, as NewServer does. The caller should call Close when done.
func NewProxy(target string) *Proxy { return NewFormatProxy(framed.Format{}, target) }

// NewFormatProxy starts a Proxy to the TCP address target, as NewProxy
// does, whose Dial speaks the wire format f: a proxy to a
// [NewFormatServer](f, h).
func NewFormatProxy(f framed.Format, target string) *Proxy {
	p := &Proxy{
		Up: &Faults{}, Down: &Faults{},
		target: target, format: f, ln: newLocalListener(), stop: make(chan struct{}),
		conns: make(map[*proxyConn]struct{}),
	}
	p.Addr = p.ln.Addr().String()
	p.wg.Add(1)
	go p.accept()
	return p
}

// Dial connects a Client to the target through the proxy, in the Format
// the proxy was made with. The caller closes the Client; Close closes its
// connection at the proxy too.
func (p *Proxy) Dial(ctx context.Context) (*framed.Client, error) {
	return (&framed.Dialer{Format: p.format}).Dial(ctx, p.Addr)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects client to the target and pumps both ways until both
// directions end.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	var d net.Dialer
	target, err := d.Dial("tcp", p.target)
	if err != nil {
		resetConn(client)
		return
	}
	pc := &proxyConn{client: client, target: target}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pc.end(false)
		return
	}
	p.conns[pc] = struct{}{}
	p.mu.Unlock()

	halfClose := func(c net.Conn) func() {
		return func() { c.(*net.TCPConn).CloseWrite() }
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		(&pump{src: client, dst: target, f: p.Up, stop: p.stop, end: pc.end, eof: halfClose(target)}).run()
	}()
	go func() {
		defer wg.Done()
		(&pump{src: target, dst: client, f: p.Down, stop: p.stop, end: pc.end, eof: halfClose(client)}).run()
	}()
	wg.Wait()
	pc.end(false)
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// Reset resets every connection open through the proxy now, both ways: the
// client and the target read ECONNRESET.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		pc.end(true)
	}
}

// Close stops the proxy: it stops listening, closes every connection
// through it, and waits for its goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	p.ln.Close()
	for pc := range p.conns {
		pc.end(false)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
