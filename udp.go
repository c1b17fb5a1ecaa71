package framed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// maxDatagram is the largest payload a UDP datagram can carry without IPv6
// jumbograms: 65,535 minus the 8-byte UDP header. Over IPv4 the 20-byte IP
// header counts too, leaving maxDatagramIPv4.
const (
	maxDatagram     = 65527
	maxDatagramIPv4 = 65507
)

// ErrUDPServerClosed is returned by [UDPServer.Serve] and
// [UDPServer.ListenAndServe] after [UDPServer.Shutdown] or [UDPServer.Close].
var ErrUDPServerClosed = errors.New("framed: UDP server closed")

// UDPHandler answers datagrams for a [UDPServer].
//
// ServeDatagram is called once per datagram. req is valid during the call
// only; the reply may alias it. A nil reply sends nothing; a non-nil reply,
// even an empty one, is sent to from as one datagram. A non-nil error sends
// nothing and is counted in [UDPStats.HandlerErrors]. ctx is cancelled when
// the server is closed; a handler must return soon after.
type UDPHandler interface {
	ServeDatagram(ctx context.Context, req []byte, from net.Addr) (reply []byte, err error)
}

// UDPHandlerFunc adapts a function to a [UDPHandler].
type UDPHandlerFunc func(ctx context.Context, req []byte, from net.Addr) ([]byte, error)

// ServeDatagram calls f(ctx, req, from).
func (f UDPHandlerFunc) ServeDatagram(ctx context.Context, req []byte, from net.Addr) ([]byte, error) {
	return f(ctx, req, from)
}

// UDPStats is a snapshot of a [UDPServer]'s counters since it was created.
type UDPStats struct {
	DatagramsIn   uint64 // datagrams passed to the handler
	BytesIn       uint64 // their payload bytes
	DatagramsOut  uint64 // replies sent
	BytesOut      uint64 // their payload bytes
	Oversize      uint64 // datagrams dropped for exceeding MaxDatagramSize
	Amplification uint64 // replies refused for being larger than their request
	HandlerErrors uint64 // datagrams whose handler returned an error
	Panics        uint64 // handler panics recovered
	ReadErrors    uint64 // read errors retried after a backoff
	WriteErrors   uint64 // replies the socket refused to send
}

// UDPServer answers UDP datagrams with a [UDPHandler]; its zero value is an
// echo server on a loopback port chosen by the system.
//
// Datagrams are handled one at a time, in arrival order, on the goroutine
// that calls Serve: the server starts no goroutine of its own, and memory
// stays at one buffer per socket however fast peers send. While a handler
// runs, new datagrams wait in the kernel's socket buffer, which drops them
// when full, as UDP does. A handler that needs more time than the traffic
// allows can be given several sockets, one Serve call each (SO_REUSEPORT
// lets them share a port on Linux and the BSDs).
//
// A datagram that fails (a handler error or panic, a refused or undeliverable
// reply, a datagram too large) is counted in [UDPStats] and logged at Debug
// level, or Error for a panic, then the loop goes on: a remote peer can
// neither stop the server nor flood the log above Debug.
//
// Concurrency: Serve may be called for several sockets at once; Shutdown,
// Close, Stats and LocalAddr may be called from any goroutine at any time.
// A UDPServer must not be copied after first use.
type UDPServer struct {
	// Addr is the address ListenAndServe binds, "host:port". Empty means
	// "127.0.0.1:0": loopback, with a port chosen by the system and reported
	// by LocalAddr. An echo reflects traffic, so reaching other hosts has to
	// be asked for.
	Addr string

	// Handler answers each datagram. Nil echoes each datagram back.
	Handler UDPHandler

	// Logger receives the server's diagnostics. Nil logs nothing.
	Logger *slog.Logger

	// MaxDatagramSize is the largest request, in bytes, passed to Handler.
	// A larger datagram is dropped whole and counted in UDPStats.Oversize,
	// never passed on cut short. Zero means 65,527, the most any datagram
	// can carry; values outside 0..65,527 make Serve return an error. Serve
	// reads into a buffer of MaxDatagramSize+1 bytes.
	MaxDatagramSize int

	// AllowAmplification lets a reply be larger than its request. By
	// default such a reply is refused and counted in UDPStats.Amplification,
	// so that a forged source address cannot turn the server into an
	// amplifier aimed at a third party. Set it only for peers whose
	// addresses you trust.
	AllowAmplification bool

	life  lifecycle // Serve calls
	stats udpCounters

	mu     sync.Mutex
	conns  map[net.PacketConn]struct{}
	addr   net.Addr
	ctx    context.Context    // handlers' context
	cancel context.CancelFunc // cancels ctx
}

type udpCounters struct {
	datagramsIn, bytesIn, datagramsOut, bytesOut   counter
	oversize, amplification, handlerErrors, panics counter
	readErrors, writeErrors                        counter
}

// ListenAndServe binds s.Addr and calls [UDPServer.Serve] with the socket.
// It returns ErrUDPServerClosed once the server is shut down or closed,
// without binding if that happened first.
func (s *UDPServer) ListenAndServe() error {
	if s.isClosed() {
		return ErrUDPServerClosed
	}
	addr := s.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("framed: %w", err)
	}
	return s.Serve(conn)
}

// Serve reads datagrams from conn and answers them until the server is shut
// down or closed, then returns ErrUDPServerClosed. Serve takes ownership of
// conn and closes it before returning.
//
// Read errors are retried after a backoff that grows from 5 ms to 1 s; if
// conn is closed by someone other than the server, Serve returns an error
// matching [net.ErrClosed].
func (s *UDPServer) Serve(conn net.PacketConn) error {
	limit := s.MaxDatagramSize
	if limit == 0 {
		limit = maxDatagram
	}
	if limit < 0 || limit > maxDatagram {
		conn.Close()
		return fmt.Errorf("framed: UDPServer.MaxDatagramSize %d is outside 0..%d", limit, maxDatagram)
	}
	var loop tracked
	ctx, ok := s.track(conn, &loop)
	if !ok {
		conn.Close()
		return ErrUDPServerClosed
	}
	defer s.untrack(conn, &loop)
	// Handlers run on this goroutine, and their ctx names it, so that
	// Shutdown called with it does not wait for it.
	ctx = s.life.withCaller(ctx, &loop)
	defer conn.Close()
	done := s.life.doneChan()

	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	buf := make([]byte, limit+1)
	var delay time.Duration
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			select {
			case <-done:
				return ErrUDPServerClosed
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("framed: UDP read: %w", err)
			}
			s.stats.readErrors.inc()
			delay = backoff(delay)
			log.Warn("framed: UDP read failed; retrying", "addr", conn.LocalAddr(), "err", err, "delay", delay)
			if !sleep(delay, done) {
				return ErrUDPServerClosed
			}
			continue
		}
		delay = 0
		if n > limit {
			s.stats.oversize.inc()
			log.Debug("framed: UDP datagram dropped: too large", "from", from, "limit", limit)
			continue
		}
		s.serveDatagram(ctx, &loop, log, conn, buf[:n:n], from)
	}
}

// serveDatagram passes one datagram to the handler and sends its reply.
// loop is the Serve call's goroutine, this one.
func (s *UDPServer) serveDatagram(ctx context.Context, loop *tracked, log *slog.Logger, conn net.PacketConn, req []byte, from net.Addr) {
	s.stats.datagramsIn.inc()
	s.stats.bytesIn.Add(int64(len(req)))
	reply, ok := s.handle(ctx, loop, log, req, from)
	if !ok || reply == nil {
		return
	}
	if len(reply) > len(req) && !s.AllowAmplification {
		s.stats.amplification.inc()
		log.Debug("framed: UDP reply refused: larger than its request", "to", from, "request", len(req), "reply", len(reply))
		return
	}
	if _, err := conn.WriteTo(reply, from); err != nil {
		s.stats.writeErrors.inc()
		log.Debug("framed: UDP reply not sent", "to", from, "err", err)
		return
	}
	s.stats.datagramsOut.inc()
	s.stats.bytesOut.Add(int64(len(reply)))
}

// handle calls the handler, recovering a panic; ok is false if the handler
// failed. The call is code of the user's for the lifecycle: Close does not
// wait for it, since it may be what called Close.
func (s *UDPServer) handle(ctx context.Context, loop *tracked, log *slog.Logger, req []byte, from net.Addr) (reply []byte, ok bool) {
	if s.Handler == nil {
		return req, true
	}
	s.life.enterUser(loop)
	defer s.life.leaveUser(loop)
	defer func() {
		if v := recover(); v != nil {
			s.stats.panics.inc()
			recovered(log, v, "from", from)
			reply, ok = nil, false
		}
	}()
	reply, err := s.Handler.ServeDatagram(ctx, req, from)
	if err != nil {
		s.stats.handlerErrors.inc()
		log.Debug("framed: UDP handler failed", "from", from, "err", err)
		return nil, false
	}
	return reply, true
}

// Shutdown stops the server gracefully: it stops reading at once (datagrams
// still queued in the kernel are dropped), lets each handler already running
// finish and send its reply, closes the sockets and returns nil when every
// Serve call has returned. If ctx ends first, Shutdown closes the server as
// [UDPServer.Close] does and returns ctx.Err().
//
// Shutdown may be called at any time, more than once, and concurrently with
// Close; Serve and ListenAndServe called afterwards return ErrUDPServerClosed.
// A handler may call it, or a goroutine the handler waits for, with the
// handler's ctx or a context derived from it: Shutdown then does not wait
// for the handler's own Serve call, which returns once the handler does.
// Given another ctx, it waits for that Serve call too.
func (s *UDPServer) Shutdown(ctx context.Context) error {
	s.life.stop()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.SetReadDeadline(aLongTimeAgo) // unblocks ReadFrom at once
	}
	s.mu.Unlock()
	if err := s.life.waitShutdown(ctx); err != nil {
		_ = s.Close()
		return err
	}
	s.cancelHandlers()
	return nil
}

// Close stops the server now: it cancels the handlers' context, closes every
// socket and returns once every Serve call has returned, but for those
// running a handler, which return once the handler does: like
// [Server.Close], it does not wait for code of yours, which may be what
// called it. Call Shutdown after Close to wait for those too. It returns
// the first error from closing a socket. Like Shutdown, it may be called at
// any time, more than once, from any goroutine, a handler's included.
func (s *UDPServer) Close() error {
	s.life.stop()
	s.cancelHandlers()
	s.mu.Lock()
	var err error
	for c := range s.conns {
		if cerr := c.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = fmt.Errorf("framed: close UDP socket: %w", cerr)
		}
	}
	s.mu.Unlock()
	s.life.waitClose()
	return err
}

// Stats returns a snapshot of the server's counters.
func (s *UDPServer) Stats() UDPStats {
	c := &s.stats
	return UDPStats{
		DatagramsIn:   uint64(c.datagramsIn.Load()),
		BytesIn:       uint64(c.bytesIn.Load()),
		DatagramsOut:  uint64(c.datagramsOut.Load()),
		BytesOut:      uint64(c.bytesOut.Load()),
		Oversize:      uint64(c.oversize.Load()),
		Amplification: uint64(c.amplification.Load()),
		HandlerErrors: uint64(c.handlerErrors.Load()),
		Panics:        uint64(c.panics.Load()),
		ReadErrors:    uint64(c.readErrors.Load()),
		WriteErrors:   uint64(c.writeErrors.Load()),
	}
}

// LocalAddr returns the local address of the first socket the server served,
// such as the port ListenAndServe was given by the system, or nil before
// Serve has started.
func (s *UDPServer) LocalAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// handlers returns the handlers' context, made on first use.
func (s *UDPServer) handlersLocked() context.Context {
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
	return s.ctx
}

// cancelHandlers cancels the handlers' context.
func (s *UDPServer) cancelHandlers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlersLocked()
	s.cancel()
}

func (s *UDPServer) isClosed() bool { return s.life.stopped() }

// track registers a Serve call for conn, run by loop, unless the server is
// stopping, and returns the handlers' context.
func (s *UDPServer) track(conn net.PacketConn, loop *tracked) (ctx context.Context, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.life.enter(loop) {
		return nil, false
	}
	if s.conns == nil {
		s.conns = make(map[net.PacketConn]struct{})
	}
	s.conns[conn] = struct{}{}
	if s.addr == nil {
		s.addr = conn.LocalAddr()
	}
	return s.handlersLocked(), true
}

func (s *UDPServer) untrack(conn net.PacketConn, loop *tracked) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.life.leave(loop)
}
