package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/framed-go/framed"
)

// framedImpl is the library under test through its public API: a
// framed.Server (EchoHandler, or a handler that checks and drops each
// frame) and, on the client side, the streaming API a single goroutine
// uses to pipeline: a framed.Writer (WriteFrame for each frame, Flush when
// the client would otherwise wait) and a framed.Reader for replies.
// framed.Conn's WriteFrame, made for many writers, sends at once instead;
// the 8-writer and Client.Request rows measure it.
func framedImpl() Impl {
	return Impl{
		Name:  "framed",
		Key:   "framed",
		Note:  "framed.Server + framed.NewWriter/NewReader on the client (WriteFrame, Flush, ReadFrame)",
		Serve: serveFramed,
		Dial:  dialFramed,
	}
}

type framedServer struct {
	srv      *framed.Server
	ln       net.Listener
	served   chan error
	closing  sync.Once
	closeErr error
}

func serveFramed(cfg ServerConfig) (Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &framedServer{srv: &framed.Server{}, ln: ln, served: make(chan error, 1)}
	switch cfg.Mode {
	case Echo:
		s.srv.Handler = framed.EchoHandler{}
	case Sink:
		size := cfg.Size
		s.srv.Handler = framed.HandlerFunc(func(_ context.Context, _ *framed.Conn, p []byte) error {
			if size >= 0 && len(p) != size {
				return errBadFrame
			}
			return nil
		})
		// The sink workloads open one connection per server, so the
		// server's own counters are that connection's.
		s.srv.ConnState = func(_ *framed.Conn, st framed.ConnState) {
			if st != framed.StateClosed {
				return
			}
			at := time.Now()
			stats := s.srv.Stats()
			var err error
			if n := stats.HandlerErrors + stats.FramesTooLarge + stats.InvalidLength + stats.ConnErrors; n > 0 {
				err = errors.New("bench: framed sink connection failed")
			}
			cfg.report(SinkDone{Frames: stats.FramesIn, At: at, Err: err})
		}
	}
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *framedServer) Addr() string { return s.ln.Addr().String() }
func (s *framedServer) Active() int  { return int(s.srv.Stats().Active) }

func (s *framedServer) Close() error {
	s.closing.Do(func() {
		s.closeErr = s.srv.Close()
		if err := <-s.served; !errors.Is(err, framed.ErrServerClosed) && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

type framedClient struct {
	nc net.Conn
	rd *framed.Reader
	wr *framed.Writer
}

func dialFramed(addr string) (Client, error) {
	nc, err := dialTCP(addr)
	if err != nil {
		return nil, err
	}
	return framedClient{nc, framed.NewReader(nc, framed.Format{}), framed.NewWriter(nc, framed.Format{})}, nil
}

func (c framedClient) WriteFrame(p []byte) error     { return c.wr.WriteFrame(p) }
func (c framedClient) Flush() error                  { return c.wr.Flush() }
func (c framedClient) ReadFrame() ([]byte, error)    { return c.rd.ReadFrame() }
func (c framedClient) Buffered() int                 { return c.rd.Buffered() }
func (c framedClient) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }
func (c framedClient) Close() error                  { return c.nc.Close() }

func (c framedClient) CloseWrite() error {
	if err := c.wr.Flush(); err != nil {
		return err
	}
	return c.nc.(*net.TCPConn).CloseWrite()
}

// framedServerName is a diagnostic row: framed's server with the raw
// client, which tells the server's share of a framed row from the client's.
const framedServerName = "framed server, raw client"

func framedServerImpl() Impl {
	return Impl{
		Name:  framedServerName,
		Key:   "framed-server",
		Note:  "framed.Server as above, driven by the raw client",
		Serve: serveFramed,
		Dial:  dialRaw,
	}
}
