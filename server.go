package framed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ErrServerClosed is returned by [Server.Serve] and [Server.ListenAndServe]
// once [Server.Shutdown] or [Server.Close] has been called.
var ErrServerClosed = errors.New("framed: Server closed")

// defaultAddr is the address ListenAndServe listens on when Server.Addr is
// empty.
const defaultAddr = ":8888"

// Handler serves the frames a [Server] receives.
//
// ServeFrame is called once per frame, in the order the frames arrive, on
// the connection's own goroutine: the connection's next frame is not read
// until ServeFrame returns. frame is valid only until ServeFrame returns;
// use [bytes.Clone] to keep it. ServeFrame may write zero, one or many
// frames with c.WriteFrame, also from goroutines it starts. It may also
// read the connection's next frames itself with c.ReadFrame, for a message
// that spans frames: those are not passed to ServeFrame, and frame is
// valid only until that call. The read deadline then in force is the last
// one the server set, for IdleTimeout or FrameTimeout, which may have
// passed: set one with c.SetReadDeadline, and on a Server with neither
// timeout clear it before returning, since the server then sets none. A
// non-nil error closes the connection, after the frames already written
// are sent.
//
// ctx descends from the Server's BaseContext. It is cancelled when the
// connection closes and when [Server.Close] is called, but not by
// [Server.Shutdown], which lets running handlers finish. A handler that may
// block must return once ctx is done: Close does not wait for it, but
// Shutdown does, and the connection counts in [ServerStats].Active until
// it returns. Passed to Shutdown, ctx tells it which connection is the
// caller's.
type Handler interface {
	ServeFrame(ctx context.Context, c *Conn, frame []byte) error
}

// HandlerFunc lets an ordinary function be a [Handler].
type HandlerFunc func(ctx context.Context, c *Conn, frame []byte) error

// ServeFrame calls f(ctx, c, frame).
func (f HandlerFunc) ServeFrame(ctx context.Context, c *Conn, frame []byte) error {
	return f(ctx, c, frame)
}

// EchoHandler is a [Handler] that writes every frame back to its sender.
// It is what a [Server] with a nil Handler uses.
type EchoHandler struct{}

// ServeFrame writes frame back on c.
func (EchoHandler) ServeFrame(_ context.Context, c *Conn, frame []byte) error {
	return c.WriteFrame(frame)
}

// ConnState is a point in a server connection's life, reported to
// [Server].ConnState.
type ConnState int

const (
	// StateNew is reported once for every connection the Server serves,
	// on the connection's goroutine before its first frame is read.
	StateNew ConnState = iota

	// StateClosed is reported once for every connection reported as new,
	// after the connection is closed and its last handler call has
	// returned, whatever closed it: the peer, an error, a limit,
	// Shutdown or Close.
	StateClosed
)

// String returns "new" or "closed".
func (s ConnState) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// Server accepts connections and serves their frames with a [Handler], one
// goroutine per connection. The zero value is ready to use: it echoes
// frames of the default [Format], with no limit on connections and no
// timeouts. The fields must not be changed once Serve has been called.
//
// # Lifecycle
//
// [Server.Serve] returns [ErrServerClosed] after [Server.Shutdown] or
// [Server.Close], and at once when called after them. Close and Shutdown
// may be called any number of times, at once, before Serve, and from any
// goroutine, handlers, ConnState hooks and the goroutines they start
// included. Close never waits for its caller, nor Shutdown when given the
// caller's ctx, as below. Close closes every listener
// and connection, cancels the handler contexts, and returns once the Serve
// loops and connections have stopped, except a connection that is running
// its handler or a ConnState hook: like net/http's Close and gRPC's Stop,
// it does not wait for code of yours, which may be what called it. Such a
// connection serves no more frames and ends when that call returns; call
// Shutdown after Close to wait for it. Shutdown stops accepting, serves
// every frame that had reached a connection, sends its replies and a FIN,
// and returns when every connection has ended, its handler and ConnState
// calls included, or when its ctx ends. It knows its caller from ctx: given
// a handler's ctx, or a context derived from it, it does not wait for that
// handler's connection, which drains once the handler returns, nor for the
// connections of other Shutdown calls so given, which wait for it in turn.
// Given another ctx, it waits for every connection; so a handler, or a
// goroutine a handler waits for, passes the handler's ctx, and a ConnState
// hook, which has none, calls Close, or calls Shutdown on a goroutine it
// does not wait for.
//
// A Serve loop survives temporary accept errors (such as running out of
// file descriptors): it logs them at level Warn and retries after 5 ms,
// doubling the wait up to a second.
//
// # Replies
//
// The frames a handler writes are held while its connection serves the
// frames it has received, and go out in one write once the last of those
// has been served, as net/http holds a response until its handler returns
// or flushes; frames that other goroutines write on the connection
// meanwhile join them. So pipelined requests share system calls, a lone
// request's replies go out when its handler returns, and a handler that
// needs a frame sent at once calls c.Flush.
//
// # Hostile peers
//
// A header that is negative or above the limit, a peer that stalls inside a
// frame for longer than FrameTimeout or between frames for longer than
// IdleTimeout, a reset, and a handler panic each close that connection
// only, and each is counted in [Server.Stats]. Memory follows the bytes
// received, not the bytes a header claims.
type Server struct {
	// Addr is the TCP address ListenAndServe listens on, in the form
	// "host:port". Empty means ":8888": port 8888 on every interface, as
	// net/http's empty Addr means ":http".
	Addr string

	// Handler serves each frame. Nil means [EchoHandler].
	Handler Handler

	// Format is the wire format; its MaxFrameSize is the largest frame the
	// Server accepts. The zero value is the default format, with frames of
	// at most [DefaultMaxFrameSize].
	Format Format

	// MaxConns bounds the connections open at once. At the limit a Serve
	// loop stops accepting until a connection closes; meanwhile new peers
	// wait in the listener's backlog, and each pause is counted in
	// ServerStats.MaxConnsWaits. Zero means no limit.
	MaxConns int

	// FrameTimeout bounds the time from a frame's first byte to its last,
	// so a peer that trickles a frame (a slowloris) is closed. Zero means
	// no bound.
	FrameTimeout time.Duration

	// IdleTimeout bounds the wait for the first byte of the next frame,
	// including the wait for the first frame and a TLS handshake. Zero
	// means no bound.
	IdleTimeout time.Duration

	// WriteTimeout bounds each write to the network (see
	// [ConnConfig].WriteTimeout). A write that times out closes the
	// connection. Zero means no bound.
	WriteTimeout time.Duration

	// Probes, when on, probes each connection that has received nothing
	// for Probes.Idle, and ends one whose peer stays silent (see
	// [Probes]). The zero value turns them off.
	Probes Probes

	// MaxPendingBytes bounds the bytes of replies queued on a connection
	// (see [ConnConfig].MaxPendingBytes). Zero means
	// [DefaultMaxPendingBytes].
	MaxPendingBytes int

	// TLSConfig, when not nil, makes Serve wrap every connection in TLS
	// with this configuration, which must hold a certificate (Certificates,
	// GetCertificate or GetConfigForClient).
	TLSConfig *tls.Config

	// Logger receives handler panics at level Error, accept errors that
	// Serve retries at level Warn, connections ended for a silent peer at
	// level Warn, each probe sent or answered at level Debug, and why each
	// connection closed at level Debug. Nil means nothing is logged.
	Logger *slog.Logger

	// ConnState, when not nil, is called with [StateNew] and then
	// [StateClosed], each exactly once, for every connection the Server
	// serves. It runs on the connection's goroutine. It may call Close,
	// which does not wait for it. It has no ctx to give Shutdown, which
	// then waits for its connection too: it may call Shutdown only on a
	// goroutine it does not wait for. The connection counts in
	// ServerStats.Active until just after the StateClosed call returns.
	ConnState func(*Conn, ConnState)

	// BaseContext, when not nil, returns the context from which the
	// handler contexts of connections accepted on the listener descend. It
	// is called once per Serve call, and must not return nil. Nil means
	// [context.Background].
	BaseContext func(net.Listener) context.Context

	life     lifecycle // Serve loops and connections
	counters serverCounters

	mu        sync.Mutex
	listeners map[*onceCloseListener]struct{}
	conns     map[*serverConn]struct{}
	retired   connTotals    // counts of connections already closed
	sem       chan struct{} // one token per open connection when MaxConns > 0
}

// ServerStats is a snapshot of a [Server]'s counters, from [Server.Stats].
// Every count covers the Server's whole life. The counts from
// FramesTooLarge to PanicsRecovered are of connections closed, by reason;
// a connection closed by its peer between frames, by Shutdown or by Close
// is in none of them. LingerTimeouts counts connections of every reason
// that closed gracefully, Shutdown's included, whose linger ran out.
type ServerStats struct {
	Accepted      int64 // connections served
	Active        int64 // connections open now
	MaxConnsWaits int64 // times a Serve loop stopped accepting because MaxConns connections were open
	AcceptErrors  int64 // errors from Accept, other than those caused by Shutdown or Close

	FramesIn  int64 // frames read whole
	FramesOut int64 // frames written (WriteFrame returned nil)
	BytesIn   int64 // bytes received, headers included, as they arrive
	BytesOut  int64 // bytes sent, headers included

	FramesTooLarge  int64 // a header above the Format's limit
	InvalidLength   int64 // a header that cannot be a length, such as a negative one
	FrameTimeouts   int64 // a frame took longer than FrameTimeout
	IdleTimeouts    int64 // no frame began within IdleTimeout
	WriteTimeouts   int64 // a write took longer than WriteTimeout
	ConnErrors      int64 // another network error: a reset, the peer gone mid-frame, a failed TLS handshake
	HandlerErrors   int64 // a handler returned an error, the connection being sound
	PanicsRecovered int64 // a handler panicked
	Unrouted        int64 // a frame had no route: the handler, a [Mux] say, returned an error matching [ErrUnrouted]

	// LingerTimeouts counts connections closed gracefully (see
	// [Server.Shutdown]), whatever the reason, whose peer neither closed
	// nor stopped sending within half a second of the FIN, and were then
	// closed anyway. A connection that cannot half-close, such as one over
	// net.Pipe, does not linger and is never counted.
	LingerTimeouts int64

	ProbesSent     int64 // probes sent to peers silent for Probes.Idle
	ProbesAnswered int64 // probes from peers answered (at most one per Idle per connection)
	PeersSilent    int64 // connections ended because no byte came within Probes.Timeout of a probe
}

// serverCounters are the counts of events the Server sees once per
// connection or less.
type serverCounters struct {
	accepted, maxConnsWaits, acceptErrors                  counter
	tooLarge, invalidLength                                counter
	frameTimeouts, idleTimeouts, writeTimeouts, connErrors counter
	handlerErrors, panics, lingerTimeouts                  counter
	unrouted                                               counter
	probes                                                 probeCounts
}

// connTotals are the per-connection counts that Stats adds up.
type connTotals struct {
	framesIn, framesOut, bytesIn, bytesOut int64
}

func (t *connTotals) add(u connTotals) {
	t.framesIn += u.framesIn
	t.framesOut += u.framesOut
	t.bytesIn += u.bytesIn
	t.bytesOut += u.bytesOut
}

// Stats returns a snapshot of the Server's counters. Bytes and frames
// written are counted as they go; frames read are counted when a
// connection has served the frames that arrived together and is about to
// wait for more, so for an open connection FramesIn may lag by the frames
// it is serving at that moment. Stats takes time in proportion to the
// connections open.
func (s *Server) Stats() ServerStats {
	c := &s.counters
	st := ServerStats{
		Accepted:        c.accepted.Load(),
		MaxConnsWaits:   c.maxConnsWaits.Load(),
		AcceptErrors:    c.acceptErrors.Load(),
		FramesTooLarge:  c.tooLarge.Load(),
		InvalidLength:   c.invalidLength.Load(),
		FrameTimeouts:   c.frameTimeouts.Load(),
		IdleTimeouts:    c.idleTimeouts.Load(),
		WriteTimeouts:   c.writeTimeouts.Load(),
		ConnErrors:      c.connErrors.Load(),
		HandlerErrors:   c.handlerErrors.Load(),
		PanicsRecovered: c.panics.Load(),
		Unrouted:        c.unrouted.Load(),
		LingerTimeouts:  c.lingerTimeouts.Load(),
		ProbesSent:      c.probes.sent.Load(),
		ProbesAnswered:  c.probes.answered.Load(),
		PeersSilent:     c.probes.silent.Load(),
	}
	s.mu.Lock()
	t := s.retired
	for sc := range s.conns {
		t.add(sc.totals())
	}
	st.Active = int64(len(s.conns))
	s.mu.Unlock()
	st.FramesIn, st.FramesOut, st.BytesIn, st.BytesOut = t.framesIn, t.framesOut, t.bytesIn, t.bytesOut
	return st
}

// ListenAndServe listens on the TCP address s.Addr and serves connections
// from it, as [Server.Serve] does. It returns [ErrServerClosed] after
// Shutdown or Close, and any other error from listening or serving.
func (s *Server) ListenAndServe() error {
	if s.shuttingDown() {
		return ErrServerClosed
	}
	addr := s.Addr
	if addr == "" {
		addr = defaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln and serves each on a new goroutine. It
// may be called for several listeners at once. To learn the port of a
// listener on port 0, create it with [net.Listen] and ask ln.Addr().
//
// Serve always closes ln before it returns. It returns [ErrServerClosed]
// after Shutdown or Close, an error when the Server's fields are invalid
// (a negative limit or timeout, an invalid Format, a TLSConfig without a
// certificate), and the first Accept error that is neither temporary nor a
// timeout. Connections already accepted go on being served after Serve
// returns such an error, until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	l := &onceCloseListener{Listener: ln}
	defer l.Close()
	if err := s.check(); err != nil {
		return err
	}
	if s.shuttingDown() {
		return ErrServerClosed
	}
	// BaseContext is called before the loop is tracked, so that Close
	// called from it has no loop to wait for.
	baseCtx := context.Background()
	if s.BaseContext != nil {
		baseCtx = s.BaseContext(ln)
		if baseCtx == nil {
			panic("framed: Server.BaseContext returned a nil context")
		}
	}
	var loop tracked
	if !s.trackListener(l, &loop) {
		return ErrServerClosed
	}
	defer s.untrackListener(l, &loop)

	tlsConfig := s.TLSConfig.Clone()
	cfg := ConnConfig{Format: s.Format, WriteTimeout: s.WriteTimeout, MaxPendingBytes: s.MaxPendingBytes}
	done, sem := s.life.doneChan(), s.semaphore()

	var tempDelay time.Duration // how long to wait after a temporary accept error
	for {
		if sem != nil {
			select {
			case sem <- struct{}{}:
			default:
				s.counters.maxConnsWaits.inc()
				select {
				case sem <- struct{}{}:
				case <-done:
					return ErrServerClosed
				}
			}
		}
		nc, err := l.Accept()
		if err != nil {
			if sem != nil {
				<-sem
			}
			if s.shuttingDown() {
				return ErrServerClosed
			}
			s.counters.acceptErrors.inc()
			if !isTemporary(err) {
				return err
			}
			tempDelay = backoff(tempDelay)
			if s.Logger != nil {
				s.Logger.Warn("framed: accept failed; retrying",
					"addr", ln.Addr(), "err", err, "delay", tempDelay)
			}
			if !sleep(tempDelay, done) {
				return ErrServerClosed
			}
			continue
		}
		tempDelay = 0
		if tlsConfig != nil {
			nc = tls.Server(nc, tlsConfig)
		}
		sc := &serverConn{srv: s, c: NewConn(nc, cfg), sem: sem}
		sc.c.q.counts = &sc.out
		ctx, cancel := context.WithCancel(baseCtx)
		sc.cancel = cancel
		if !s.trackConn(sc) {
			cancel()
			sc.c.Close()
			if sem != nil {
				<-sem
			}
			return ErrServerClosed
		}
		go s.serveConn(s.life.withCaller(ctx, &sc.tracked), sc)
	}
}

// isTemporary reports whether an Accept error is worth retrying: the
// platform calls it temporary (as for running out of file descriptors) or
// it is a timeout. This is net/http's rule.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	var to interface{ Timeout() bool }
	return errors.As(err, &to) && to.Timeout()
}

// check reports whether the Server's fields can be used.
func (s *Server) check() error {
	if err := s.Format.check(); err != nil {
		return err
	}
	if err := s.Probes.check(s.Format); err != nil {
		return err
	}
	switch {
	case s.MaxConns < 0:
		return fmt.Errorf("framed: Server.MaxConns %d is negative", s.MaxConns)
	case s.MaxPendingBytes < 0:
		return fmt.Errorf("framed: Server.MaxPendingBytes %d is negative", s.MaxPendingBytes)
	case s.FrameTimeout < 0 || s.IdleTimeout < 0 || s.WriteTimeout < 0:
		return errors.New("framed: Server timeouts must not be negative")
	}
	if tc := s.TLSConfig; tc != nil && len(tc.Certificates) == 0 && tc.GetCertificate == nil && tc.GetConfigForClient == nil {
		return errors.New("framed: Server.TLSConfig has no certificate")
	}
	return nil
}

// Shutdown shuts the Server down gracefully. It closes every listener, so
// that Serve returns [ErrServerClosed], and drains every connection: each
// frame whose bytes had reached the server when Shutdown reached the
// connection (in its read buffer or, on Linux, in the socket's receive
// queue) is read and served, and its replies are sent; frames that arrive
// later are not served. A connection idle between frames stops at once. A
// frame that had begun to arrive is read whole, within FrameTimeout: a peer
// stalled inside one keeps its connection until then. Then the connection
// sends a TCP FIN, so its peer reads [io.EOF] right after the last reply:
// for requests answered in order, every request before that point was
// answered and none after it. Over TLS, and on other platforms, the frames
// served are those already buffered.
//
// Shutdown waits until every Serve loop has returned and every connection
// has ended, its handler and ConnState calls included, and returns nil, or
// ctx's error if ctx ends first: the connections left are still open, and
// Close closes them. It does not cancel handler contexts. Given a handler's
// ctx, or a context derived from it, it does not wait for that handler's
// connection, nor for those of other Shutdown calls given a handler's ctx
// (see [Server]).
//
// Like every graceful close, a drained connection then discards what the
// peer sends until the peer closes or for at most half a second (counted
// in ServerStats.LingerTimeouts when it runs out), and closes: closing at
// once could lose the replies to a TCP reset.
//
// Shutdown returns the error, if any, of closing a listener.
func (s *Server) Shutdown(ctx context.Context) error {
	s.life.stop()
	s.mu.Lock()
	err := s.closeListenersLocked()
	for sc := range s.conns {
		sc.setState(connStopping)
	}
	s.mu.Unlock()
	if werr := s.life.waitShutdown(ctx); werr != nil {
		return werr
	}
	return err
}

// Close closes every listener and connection at once and cancels the
// handler contexts. Replies not yet sent are dropped. It returns once the
// Serve loops have returned and every connection has ended, but for those
// running a handler or a ConnState hook, which end when that returns and
// serve no more frames (see [Server]). It returns the error, if any, of
// closing a listener.
func (s *Server) Close() error {
	s.life.stop()
	s.mu.Lock()
	err := s.closeListenersLocked()
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		sc.setState(connClosed)
		conns = append(conns, sc)
	}
	s.mu.Unlock()

	for _, sc := range conns {
		sc.cancel()
		sc.c.Close()
	}
	s.life.waitClose()
	return err
}

func (s *Server) shuttingDown() bool { return s.life.stopped() }

// semaphore returns the MaxConns semaphore, nil when there is no limit.
func (s *Server) semaphore() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sem == nil && s.MaxConns > 0 {
		s.sem = make(chan struct{}, s.MaxConns)
	}
	return s.sem
}

func (s *Server) closeListenersLocked() error {
	var err error
	for l := range s.listeners {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// trackListener adds l, served by loop, unless the Server is shutting down.
func (s *Server) trackListener(l *onceCloseListener, loop *tracked) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.life.enter(loop) {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*onceCloseListener]struct{})
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) untrackListener(l *onceCloseListener, loop *tracked) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
	s.life.leave(loop)
}

// trackConn adds sc to the open connections, unless the Server is shutting
// down. It is called before sc's goroutine starts, so Shutdown and Close
// always see it.
func (s *Server) trackConn(sc *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.life.enter(&sc.tracked) {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*serverConn]struct{})
	}
	s.conns[sc] = struct{}{}
	s.counters.accepted.inc()
	return true
}

func (s *Server) untrackConn(sc *serverConn) {
	s.mu.Lock()
	s.retired.add(sc.totals())
	delete(s.conns, sc)
	if sc.sem != nil {
		<-sc.sem
	}
	s.mu.Unlock()
	s.life.leave(&sc.tracked)
}

// onceCloseListener guards a listener against the second Close that Serve
// and Shutdown may both make.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
