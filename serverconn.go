package framed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// lingerTimeout bounds how long a connection closed gracefully waits for
// its peer to close, discarding what it sends, so that a TCP reset does not
// destroy the replies just written.
const lingerTimeout = 500 * time.Millisecond

// A serverConn's state tells Shutdown what it may do with it.
const (
	connActive   int32 = iota // reading a frame or serving one: left to finish
	connIdle                  // waiting for a frame's first byte: stopped at once
	connStopping              // stopped while idle by Shutdown
	connClosed                // closed by Close
)

// aLongTimeAgo is a read deadline that has passed: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// serverConn is a connection that a Server serves.
type serverConn struct {
	c        *Conn
	cancel   context.CancelFunc
	sem      chan struct{}
	state    atomic.Int32
	framesIn atomic.Int64 // stored after each batch of frames
	out      writeCounts  // guarded by c's write queue
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
	endShutdown                    // stopped by Shutdown, between frames
	endTooLarge                    // FrameTooLargeError
	endInvalid                     // ErrInvalidLength
	endFrameTimeout                // FrameTimeout passed inside a frame
	endIdleTimeout                 // IdleTimeout passed between frames
	endWriteTimeout                // a write timed out
	endConnError                   // another network error
	endHandlerError                // the handler returned an error
	endPanic                       // the handler panicked
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
}

func (e connEnd) String() string { return endNames[e] }

// serveConn serves sc until it ends, closes it, and reports it gone.
func (s *Server) serveConn(ctx context.Context, sc *serverConn) {
	c := sc.c
	if s.ConnState != nil {
		s.ConnState(c, StateNew)
	}
	end, err := s.serveFrames(ctx, sc)
	switch end {
	case endShutdown, endHandlerError:
		lingerClose(c)
	default:
		c.Flush()
		c.Close()
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
// and says why.
func (s *Server) serveFrames(ctx context.Context, sc *serverConn) (end connEnd, err error) {
	c := sc.c
	h := s.Handler
	if h == nil {
		h = EchoHandler{}
	}
	idle, frame := s.IdleTimeout, s.FrameTimeout
	var framesIn int64
	defer func() { sc.framesIn.Store(framesIn) }()
	corked := false
	for {
		if !c.rd.frameBuffered() {
			// The next read may block: send the replies held so far.
			err := c.q.flushUncork(corked)
			corked = false
			if err != nil {
				return sc.ended(writeEnd(err), err)
			}
			sc.framesIn.Store(framesIn)
			if c.rd.Buffered() == 0 {
				// Idle until the next frame's first byte. The deadline is
				// set before the state says idle, so that the one Shutdown
				// sets to wake the connection cannot be overwritten.
				if idle != 0 || frame != 0 {
					if err := c.SetReadDeadline(deadline(idle)); err != nil {
						return sc.ended(endConnError, err)
					}
				}
				if !sc.state.CompareAndSwap(connActive, connIdle) {
					return sc.ended(endClosed, nil)
				}
				if s.shuttingDown() {
					return endShutdown, nil
				}
				err := c.waitFrame(0, 0)
				if !sc.state.CompareAndSwap(connIdle, connActive) {
					return sc.ended(endClosed, nil)
				}
				if err != nil {
					return sc.ended(readEnd(err, true), err)
				}
			}
		}
		p, err := c.readFrameWithin(idle, frame)
		if err != nil {
			return sc.ended(readEnd(err, false), err)
		}
		framesIn++
		if !corked {
			// Hold replies until the frames buffered now are served.
			c.q.setCorked(true)
			corked = true
		}
		if end, err := s.serveFrame(ctx, h, c, p); err != nil {
			if end == endHandlerError {
				// A handler that fails because the connection did, say
				// on a write timeout, is counted as the connection.
				if ferr := c.Flush(); ferr != nil {
					end = writeEnd(ferr)
				}
			}
			return sc.ended(end, err)
		}
		if s.shuttingDown() {
			return endShutdown, nil
		}
	}
}

// ended returns end and err, unless Shutdown or Close stopped the
// connection, which explains err better.
func (sc *serverConn) ended(end connEnd, err error) (connEnd, error) {
	switch sc.state.Load() {
	case connStopping:
		return endShutdown, nil
	case connClosed:
		return endClosed, err
	}
	return end, err
}

// serveFrame calls h, turning a panic into an error.
func (s *Server) serveFrame(ctx context.Context, h Handler, c *Conn, p []byte) (end connEnd, err error) {
	defer func() {
		if v := recover(); v != nil {
			end, err = endPanic, fmt.Errorf("framed: handler panic: %v", v)
			if s.Logger != nil {
				s.Logger.Error("framed: handler panic",
					"remote", c.RemoteAddr(), "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	return endHandlerError, h.ServeFrame(ctx, c, p)
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
		c.tooLarge.Add(1)
	case endInvalid:
		c.invalidLength.Add(1)
	case endFrameTimeout:
		c.frameTimeouts.Add(1)
	case endIdleTimeout:
		c.idleTimeouts.Add(1)
	case endWriteTimeout:
		c.writeTimeouts.Add(1)
	case endConnError:
		c.connErrors.Add(1)
	case endHandlerError:
		c.handlerErrors.Add(1)
	case endPanic:
		c.panics.Add(1)
	}
}

// lingerClose sends what is queued on c and a FIN, then discards what the
// peer sends until it closes or lingerTimeout passes, and closes c.
// Closing a TCP socket with unread bytes sends a reset, and a reset makes
// the kernel drop the replies it has not sent yet. A connection that cannot
// half-close still sends what is queued before it closes.
func lingerClose(c *Conn) {
	err := c.CloseWrite()
	if errors.Is(err, errors.ErrUnsupported) {
		c.Flush()
	}
	if err == nil {
		end := time.Now().Add(lingerTimeout)
		// Shutdown may set a passed deadline once more after this one:
		// then the read times out early and starts again.
		for time.Now().Before(end) && c.SetReadDeadline(end) == nil {
			_, err := io.Copy(io.Discard, &c.in)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				break
			}
		}
	}
	c.Close()
}
