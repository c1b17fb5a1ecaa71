package framed

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// lingerTimeout bounds how long a connection closed gracefully waits for
// its peer to close, discarding what it sends, so that a TCP reset does not
// destroy the replies just written.
const lingerTimeout = 500 * time.Millisecond

// connState is where a server connection is in its life, as Shutdown and
// Close see it. It moves from active to idle and back while frames come,
// and from either to draining (Shutdown) or closed (Close), never back.
type connState int32

const (
	connActive   connState = iota // reading or serving frames
	connIdle                      // waiting for the first byte of a frame
	connDraining                  // Shutdown reached it: serve what had arrived, then stop
	connClosed                    // Close reached it: stop now
)

// serverConn is a connection that a Server serves.
type serverConn struct {
	tracked  // by the Server's lifecycle
	c        *Conn
	cancel   context.CancelFunc
	sem      chan struct{}
	state    atomic.Int32
	wake     sync.Mutex   // orders Shutdown's wake-up of an idle connection before the connection's own deadlines
	framesIn atomic.Int64 // stored after each run of frames
	out      writeCounts  // guarded by c's write queue

	// Used by the connection's goroutine alone.
	corked  bool
	drainTo int64 // while draining: the stream position to serve up to
}

func (sc *serverConn) load() connState { return connState(sc.state.Load()) }

func (sc *serverConn) cas(from, to connState) bool {
	return sc.state.CompareAndSwap(int32(from), int32(to))
}

// shutdown moves sc to draining, waking it if it is idle, and reports
// whether it was open.
func (sc *serverConn) shutdown() bool {
	sc.wake.Lock()
	defer sc.wake.Unlock()
	if sc.cas(connIdle, connDraining) {
		sc.c.SetReadDeadline(aLongTimeAgo)
		return true
	}
	return sc.cas(connActive, connDraining)
}

func (sc *serverConn) totals() connTotals {
	framesOut, bytesOut := sc.c.q.totals()
	return connTotals{framesIn: sc.framesIn.Load(), framesOut: framesOut, bytesIn: sc.c.in.n.Load(), bytesOut: bytesOut}
}

// connEnd is why a connection closed.
type connEnd int

const (
	endPeerClosed   connEnd = iota // io.EOF between frames
	endClosed                      // closed by Close or by a handler
	endShutdown                    // stopped by Shutdown, once what had arrived was served
	endTooLarge                    // FrameTooLargeError
	endInvalid                     // ErrInvalidLength
	endFrameTimeout                // FrameTimeout passed inside a frame
	endIdleTimeout                 // IdleTimeout passed between frames
	endWriteTimeout                // a write timed out
	endConnError                   // another network error
	endHandlerError                // the handler returned an error
	endPanic                       // the handler panicked
	endUnrouted                    // the handler returned ErrUnrouted: a Mux had no route
)

var endNames = [...]string{
	endPeerClosed:   "peer closed",
	endClosed:       "closed by server",
	endShutdown:     "shutdown",
	endTooLarge:     "frame too large",
	endInvalid:      "invalid length",
	endFrameTimeout: "frame timeout",
	endIdleTimeout:  "idle timeout",
	endWriteTimeout: "write timeout",
	endConnError:    "connection error",
	endHandlerError: "handler error",
	endPanic:        "handler panic",
	endUnrouted:     "no route",
}

func (e connEnd) String() string { return endNames[e] }

// discards reports whether a connection that ends this way drops the
// replies still queued: Close, a failed or timed-out write, and a broken
// connection (a reset, a failed TLS handshake), which could not carry
// them anyway. Every other end sends them, then a FIN, and lingers (see
// lingerClose).
func (e connEnd) discards() bool {
	return e == endClosed || e == endWriteTimeout || e == endConnError
}

// serveConn serves sc until it ends, closes it, and reports it gone.
func (s *Server) serveConn(ctx context.Context, sc *serverConn) {
	c := sc.c
	sc.runningHere()
	if s.ConnState != nil {
		s.ConnState(c, StateNew)
	}
	end, err := s.serveFrames(ctx, sc)
	if end.discards() {
		c.Close()
	} else if !lingerClose(c) {
		s.counters.lingerTimeouts.inc()
	}
	sc.cancel()
	s.count(end)
	if s.Logger != nil {
		attrs := []slog.Attr{slog.Any("remote", c.RemoteAddr()), slog.String("reason", end.String())}
		if err != nil {
			attrs = append(attrs, slog.Any("err", err))
		}
		s.Logger.LogAttrs(ctx, slog.LevelDebug, "framed: connection closed", attrs...)
	}
	if s.ConnState != nil {
		s.ConnState(c, StateClosed)
	}
	s.untrackConn(sc)
}

// serveFrames reads and serves sc's frames until the connection must end,
// and says why. Frames come in runs: those that arrived together are
// served in one tight loop (serveRun) with the replies held, which go out
// in one write when the run ends.
func (s *Server) serveFrames(ctx context.Context, sc *serverConn) (end connEnd, err error) {
	c := sc.c
	h := s.Handler
	if h == nil {
		h = EchoHandler{}
	}
	var framesIn int64
	defer func() { sc.framesIn.Store(framesIn) }()
	for {
		if !c.rd.frameBuffered() {
			sc.framesIn.Store(framesIn)
			if end, err, stop := s.endRun(sc); stop {
				return end, err
			}
		}
		if sc.drainTo != 0 && c.position() >= sc.drainTo {
			return endShutdown, nil // served all that had arrived
		}
		p, err := c.readFrameWithin(s.IdleTimeout, s.FrameTimeout)
		if err != nil {
			return sc.readEnded(err, false), err
		}
		if !sc.corked {
			// Hold replies until the frames buffered now are served.
			c.q.setCorked(true)
			sc.corked = true
		}
		n, end, err := s.serveRun(ctx, h, sc, p)
		framesIn += n
		if err != nil {
			if end == endHandlerError {
				// A handler that fails because the connection did, say
				// on a write timeout, is counted as the connection.
				if ferr := c.Flush(); ferr != nil {
					end = writeEnd(ferr)
				}
			}
			return end, err
		}
	}
}

// serveRun calls h for p and then for every frame after it that is
// buffered whole, in order, and returns how many frames it served, the
// one that failed included. A frame is taken from the buffer only once
// the handler of the one before has returned, so a handler that reads
// from the Conn itself still sees the stream in order. One recover covers
// the run: a handler panic ends the connection, so there is no run to
// go back to. While draining, the run is one frame: serveFrames checks
// the drain point before each.
func (s *Server) serveRun(ctx context.Context, h Handler, sc *serverConn, p []byte) (n int64, end connEnd, err error) {
	c := sc.c
	defer func() {
		if v := recover(); v != nil {
			end, err = endPanic, recovered(s.Logger, v, "remote", c.RemoteAddr())
		}
	}()
	rd := c.rd
	for {
		n++
		if err := h.ServeFrame(ctx, c, p); err != nil {
			if errors.Is(err, ErrUnrouted) {
				return n, endUnrouted, err
			}
			return n, endHandlerError, err
		}
		if sc.drainTo != 0 {
			return n, 0, nil
		}
		var ok bool
		if p, ok = rd.bufferedFrame(); !ok {
			return n, 0, nil
		}
	}
}

// endRun is the step between runs of frames, when the next read may
// block: it sends the replies held, notices Shutdown, and waits idle for
// the next frame's first byte. stop tells the connection to end.
func (s *Server) endRun(sc *serverConn) (end connEnd, err error, stop bool) {
	c := sc.c
	err = c.q.flushUncork(sc.corked)
	sc.corked = false
	if err != nil {
		return writeEnd(err), err, true
	}
	switch sc.load() {
	case connClosed:
		return endClosed, nil, true
	case connDraining:
		sc.startDrain()
		return 0, nil, false
	}
	if c.rd.Buffered() > 0 {
		return 0, nil, false // a frame has begun: read it with FrameTimeout
	}
	// Idle until the next frame's first byte. The deadline is set before
	// the state says idle, so that the one Shutdown sets to wake the
	// connection cannot be overwritten.
	idle, frame := s.IdleTimeout, s.FrameTimeout
	if idle != 0 || frame != 0 {
		if err := c.SetReadDeadline(deadline(idle)); err != nil {
			return endConnError, err, true
		}
	}
	if !sc.cas(connActive, connIdle) {
		return s.endRun(sc) // Shutdown or Close came first
	}
	err = c.waitFrame(0, 0)
	if sc.cas(connIdle, connActive) {
		if err != nil {
			return sc.readEnded(err, true), err, true
		}
		return 0, nil, false
	}
	if sc.load() == connClosed {
		return endClosed, nil, true
	}
	// Shutdown woke it. A byte that had arrived is served; a timeout is
	// only the wake-up.
	sc.startDrain()
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return sc.readEnded(err, true), err, true
	}
	return 0, nil, false
}

// startDrain fixes, once Shutdown has reached the connection, how far it
// is served: every byte received by then, in the read buffer or in the
// socket's receive queue. A frame that begins before that point is read
// whole, within FrameTimeout.
func (sc *serverConn) startDrain() {
	if sc.drainTo != 0 {
		return
	}
	c := sc.c
	sc.wake.Lock()
	// Shutdown's wake-up deadline has been set, if it was to be: replace
	// it with the frame's own.
	c.SetReadDeadline(time.Time{})
	sc.wake.Unlock()
	sc.drainTo = c.in.n.Load() + int64(max(0, receiveQueued(c.nc)))
	if sc.drainTo == 0 {
		sc.drainTo = -1 // nothing ever received: stop at once
	}
}

// readEnded says why a read error ends the connection; idle tells whether
// it came while waiting for a frame's first byte. When Close stopped the
// connection, that is the reason.
func (sc *serverConn) readEnded(err error, idle bool) connEnd {
	if sc.load() == connClosed {
		return endClosed
	}
	return readEnd(err, idle)
}

// readEnd says why a read error ends a connection; idle tells whether it
// came while waiting for a frame's first byte.
func readEnd(err error, idle bool) connEnd {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return endPeerClosed
	case errors.Is(err, ErrFrameTooLarge):
		return endTooLarge
	case errors.Is(err, ErrInvalidLength):
		return endInvalid
	case errors.As(err, &ne) && ne.Timeout():
		if idle {
			return endIdleTimeout
		}
		return endFrameTimeout
	case errors.Is(err, net.ErrClosed):
		return endClosed
	}
	return endConnError
}

// writeEnd says why a write error ends a connection.
func writeEnd(err error) connEnd {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return endWriteTimeout
	case errors.Is(err, net.ErrClosed):
		return endClosed
	}
	return endConnError
}

func (s *Server) count(end connEnd) {
	c := &s.counters
	switch end {
	case endTooLarge:
		c.tooLarge.inc()
	case endInvalid:
		c.invalidLength.inc()
	case endFrameTimeout:
		c.frameTimeouts.inc()
	case endIdleTimeout:
		c.idleTimeouts.inc()
	case endWriteTimeout:
		c.writeTimeouts.inc()
	case endConnError:
		c.connErrors.inc()
	case endHandlerError:
		c.handlerErrors.inc()
	case endPanic:
		c.panics.inc()
	case endUnrouted:
		c.unrouted.inc()
	}
}

// lingerClose sends what is queued on c and a FIN, then discards what the
// peer sends until it closes or lingerTimeout passes, and closes c. It
// reports false when the linger timed out. Closing a TCP socket with
// unread bytes sends a reset, and a reset makes the kernel drop the
// replies it has not sent yet. A connection that cannot half-close still
// sends what is queued before it closes.
func lingerClose(c *Conn) (closedByPeer bool) {
	closedByPeer = true
	err := c.CloseWrite()
	if errors.Is(err, errors.ErrUnsupported) {
		c.Flush()
	}
	if err == nil {
		closedByPeer = false
		end := time.Now().Add(lingerTimeout)
		// Shutdown may set a passed deadline once more after this one:
		// then the read times out early and starts again.
		for time.Now().Before(end) && c.SetReadDeadline(end) == nil {
			_, err := io.Copy(io.Discard, &c.in)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				closedByPeer = true
				break
			}
		}
	}
	c.Close()
	return closedByPeer
}
