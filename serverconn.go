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
// Close see it: a phase and, while draining, the stream position to serve
// up to, in one word, so that the connection's goroutine reads it between
// frames without a lock. Only setState changes it.
//
// The phases move from active to idle and back while frames come, from
// either to stopping when Shutdown reaches the connection, from stopping
// to draining once the connection has fixed how far to serve, and from
// any to closed when Close reaches it. Nothing moves back.
type connState int64

const (
	connActive   connState = iota // reading or serving frames
	connIdle                      // waiting for the first byte of a frame
	connStopping                  // Shutdown reached it: it drains once the frames in hand are served
	connDraining                  // serving what had arrived when Shutdown reached it; see draining
	connClosed                    // Close reached it: stop now

	phaseBits = 3 // the low bits of a connState that hold its phase
)

// draining is the state of a connection that serves every frame that
// begins before stream position to, and then stops.
func draining(to int64) connState { return connDraining | connState(to)<<phaseBits }

// phase returns s without its drain target.
func (s connState) phase() connState { return s & (1<<phaseBits - 1) }

// drainTo returns the target of a draining state.
func (s connState) drainTo() int64 { return int64(s >> phaseBits) }

// serverConn is a connection that a Server serves.
type serverConn struct {
	tracked  // by the Server's lifecycle
	srv      *Server
	c        *Conn
	cancel   context.CancelFunc
	sem      chan struct{}
	framesIn atomic.Int64 // stored after each run of frames
	out      writeCounts  // counted by c's write queue
	probe    *prober      // nil when probes are off

	mu    sync.Mutex   // held by setState: orders each move with the read deadline it sets
	state atomic.Int64 // a connState, stored by setState only
}

// load returns sc's state.
func (sc *serverConn) load() connState { return connState(sc.state.Load()) }

// setState moves sc to the state to, if sc's life allows that move, sets
// the read deadline that goes with the move, and returns the state sc is
// in. It is the one place the state changes, and the deadline is set under
// the same lock, so that Shutdown's wake-up and the connection's own
// deadlines never overwrite one another. The moves:
//
//   - active to idle, by the connection between runs of frames: the
//     deadline is IdleTimeout's, set before the state says idle;
//   - idle to active, by the connection once its wait for a byte is over;
//   - active or idle to stopping, by Shutdown: an idle connection is woken
//     by a deadline that has passed;
//   - stopping to draining, by the connection between runs: the wake-up
//     deadline is taken off;
//   - any to closed, by Close, which then closes the connection.
//
// Any other move is refused: a connection that finds Shutdown or Close
// came first stays in the state they left, and so does Shutdown after
// Close.
func (sc *serverConn) setState(to connState) connState {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	from := sc.load()
	switch f := from.phase(); {
	case f == connActive && to == connIdle:
		if s := sc.srv; s.IdleTimeout != 0 || s.FrameTimeout != 0 {
			// An error means a closed connection, which the wait reports.
			sc.c.SetReadDeadline(deadline(s.IdleTimeout))
		}
	case f == connIdle && to == connActive:
	case f == connActive && to == connStopping:
	case f == connIdle && to == connStopping:
		sc.c.SetReadDeadline(aLongTimeAgo)
	case f == connStopping && to.phase() == connDraining:
		sc.c.SetReadDeadline(time.Time{})
	case f != connClosed && to == connClosed:
	default:
		return from
	}
	sc.state.Store(int64(to))
	return to
}

// drainPoint returns how far a connection that Shutdown has reached is
// served: every byte received by then, in the read buffer or in the
// socket's receive queue. A frame that begins before that point is read
// whole, within FrameTimeout. Only the connection's goroutine calls it,
// when it is not reading.
func (sc *serverConn) drainPoint() int64 {
	return sc.c.in.n.Load() + int64(max(0, receiveQueued(sc.c.nc)))
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
	endPeerSilent                  // no byte came within Probes.Timeout of a probe
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
	endPeerSilent:   "peer silent",
}

func (e connEnd) String() string { return endNames[e] }

// discards reports whether a connection that ends this way drops the
// replies still queued: Close, a failed or timed-out write, a broken
// connection (a reset, a failed TLS handshake) and a silent peer, which
// could not carry them anyway. Every other end sends them, then a FIN,
// and lingers (see lingerClose).
func (e connEnd) discards() bool {
	return e == endClosed || e == endWriteTimeout || e == endConnError || e == endPeerSilent
}

// serveConn serves sc until it ends, closes it, and reports it gone. ctx
// is the handler ctx, which names sc for Shutdown.
func (s *Server) serveConn(ctx context.Context, sc *serverConn) {
	c := sc.c
	if s.ConnState != nil {
		s.life.enterUser(&sc.tracked)
		s.ConnState(c, StateNew)
		s.life.leaveUser(&sc.tracked)
	}
	if p := newProber(c, s.Probes, func(error) { c.Close() }); p != nil {
		p.busy, p.counts, p.log = sc.inUser.Load, &s.counters.probes, s.Logger
		sc.probe = p
		p.start()
	}
	end, err := s.serveFrames(ctx, sc)
	if sc.probe != nil {
		sc.probe.close()
		if serr := sc.probe.silence(); serr != nil {
			end, err = endPeerSilent, serr // it closed the connection
		}
	}
	if end.discards() {
		c.Close()
	} else if lingerClose(c) {
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
		s.life.enterUser(&sc.tracked) // until untrackConn: Close need not wait for the rest
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
			if end, err := s.endRun(sc); err != nil {
				return end, err
			}
		}
		switch st := sc.load(); st.phase() {
		case connClosed:
			return endClosed, ErrServerClosed
		case connDraining:
			if c.position() >= st.drainTo() {
				return endShutdown, nil // served all that had arrived
			}
		}
		p, err := c.readFrameWithin(s.IdleTimeout, s.FrameTimeout)
		if err != nil {
			return sc.readEnded(err, false), err
		}
		c.q.cork() // hold replies until the frames buffered now are served
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
// the drain point before each. Once Close has reached the connection, no
// handler is called.
//
// The run is code of the user's for the lifecycle: Close does not wait
// for it, since a handler may be what called Close.
func (s *Server) serveRun(ctx context.Context, h Handler, sc *serverConn, p []byte) (n int64, end connEnd, err error) {
	c := sc.c
	s.life.enterUser(&sc.tracked)
	defer s.life.leaveUser(&sc.tracked)
	defer func() {
		if v := recover(); v != nil {
			end, err = endPanic, recovered(s.Logger, v, "remote", c.RemoteAddr())
		}
	}()
	rd := c.rd
	for {
		// Checked after enterUser: a Close that finds the run not yet
		// marked waits for it, and one that finds it marked has already
		// stored the closed state that this check then sees.
		if sc.load() == connClosed {
			return n, endClosed, ErrServerClosed
		}
		if sc.probe != nil && sc.probe.is(p) {
			sc.probe.onProbe() // answered here, never served nor counted
		} else {
			n++
			if err := h.ServeFrame(ctx, c, p); err != nil {
				if errors.Is(err, ErrUnrouted) {
					return n, endUnrouted, err
				}
				return n, endHandlerError, err
			}
		}
		if sc.load().phase() == connDraining {
			return n, 0, nil
		}
		var ok bool
		if p, ok = rd.bufferedFrame(); !ok {
			return n, 0, nil
		}
	}
}

// endRun is the step between runs of frames, when the next read may
// block: it sends the replies held, notices Shutdown and Close, and waits
// idle for the next frame's first byte. A non-nil error ends the
// connection, for the reason end.
func (s *Server) endRun(sc *serverConn) (end connEnd, err error) {
	c := sc.c
	if err := c.q.uncork(); err != nil {
		return writeEnd(err), err
	}
	st := sc.load()
	if st == connActive && c.rd.Buffered() == 0 {
		// Idle until the next frame's first byte. A frame that has
		// begun is read by serveFrames, within FrameTimeout.
		if st = sc.setState(connIdle); st == connIdle {
			err := c.waitFrame(0, 0)
			if st = sc.setState(connActive); st == connActive {
				if err != nil {
					return sc.readEnded(err, true), err
				}
				return 0, nil
			}
			// Shutdown or Close came while it waited. A byte that had
			// arrived is served; a timeout is only Shutdown's wake-up.
			if err != nil && st != connClosed && !isTimeout(err) {
				return readEnd(err, true), err
			}
		}
	}
	if st == connStopping {
		st = sc.setState(draining(sc.drainPoint()))
	}
	if st == connClosed {
		return endClosed, ErrServerClosed
	}
	return 0, nil
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
// reports whether the linger ran out with the peer still open. Closing a
// TCP socket with unread bytes sends a reset, and a reset makes the kernel
// drop the replies it has not sent yet. A connection that cannot
// half-close (net.Pipe, or a CloseWrite that fails) sends what is queued,
// if it can, and closes at once: there is no FIN to linger after.
//
// Nothing else sets c's read deadline meanwhile: Shutdown sets one only
// on a connection idle between frames, and a connection that has left its
// loop is not.
func lingerClose(c *Conn) (timedOut bool) {
	err := c.CloseWrite()
	if errors.Is(err, errors.ErrUnsupported) {
		c.Flush()
	}
	if err == nil && c.SetReadDeadline(time.Now().Add(lingerTimeout)) == nil {
		_, err := io.Copy(io.Discard, &c.in)
		timedOut = isTimeout(err)
	}
	c.Close()
	return timedOut
}

// isTimeout reports whether err is a timeout, as a read or write whose
// deadline passed reports one.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
