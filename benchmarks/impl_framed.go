package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/framed-go/framed"
)

// framedImpl is the library under test through the API a user writes: a
// framed.Server (EchoHandler, or a handler that checks and drops each
// frame) and, on the client side, a framed.Conn on the dialed connection:
// WriteFrame for each frame, Flush where the client would otherwise wait,
// ReadFrame for replies.
func framedImpl() Impl {
	return Impl{
		Name:  "framed",
		Key:   "framed",
		Note:  "framed.Server + framed.NewConn on the client (Conn.WriteFrame per frame, Flush where it would wait, ReadFrame)",
		Serve: serveFramed,
		Dial:  dialFramed,
	}
}

// framedWriterName is the secondary framed row: the buffered streaming
// codec a single goroutine can pipeline with, instead of a Conn.
const framedWriterName = "framed Writer/Reader"

func framedWriterImpl() Impl {
	return Impl{
		Name:  framedWriterName,
		Key:   "framed-writer",
		Note:  "framed.Server + framed.NewWriter/NewReader on the client (WriteFrame, Flush, ReadFrame)",
		Serve: serveFramed,
		Dial:  dialFramedWriter,
	}
}

// framedSendName is the one-way row of framed's Client.
const framedSendName = "framed Client.Send"

// framedSendImpl sends with Client.Send in a loop. Its client only sends:
// it fits the one-way workloads.
func framedSendImpl() Impl {
	return Impl{
		Name:  framedSendName,
		Key:   "framed-send",
		Note:  "framed.Server + framed.NewClient(framed.NewConn(...)) on the client, Client.Send per frame; the Conn's CloseWrite at the end",
		Serve: serveFramed,
		Dial:  dialFramedSend,
	}
}

type framedServer struct {
	srv      *framed.Server
	ln       net.Listener
	served   chan error
	closing  sync.Once
	closeErr error
}

func serveFramed(cfg ServerConfig) (Server, error) { return serveFramedRouted(cfg, false) }

// framedMuxName is the server-only row routed by a Mux.
const framedMuxName = "framed Mux"

// muxRoutes is how many routes the Mux row's Mux holds; the server-only
// feeder's frames take their keys in turn.
const muxRoutes = 16

// framedMuxImpl is framed's sink server with its handler behind a
// framed.Mux of muxRoutes routes keyed by a 4-byte little-endian ID at
// the start of each frame: what routing costs per frame.
func framedMuxImpl() Impl {
	return Impl{
		Name: framedMuxName,
		Key:  "framed-mux",
		Note: "framed.Server whose handler is a framed.Mux of 16 routes keyed by the frame's first 4 bytes (little-endian); each route checks the frame's size and drops it",
		Serve: func(cfg ServerConfig) (Server, error) {
			if cfg.Mode != Sink {
				return nil, errors.New("bench: the Mux row is a sink")
			}
			return serveFramedRouted(cfg, true)
		},
	}
}

// serveFramedRouted starts framed's server; with routed, its sink handler
// serves muxRoutes routes of a Mux.
func serveFramedRouted(cfg ServerConfig, routed bool) (Server, error) {
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
		if routed {
			mux := &framed.Mux{}
			for key := range muxRoutes {
				mux.Handle(uint64(key), s.srv.Handler)
			}
			s.srv.Handler = mux
		}
		// The sink workloads open one connection per server, so the
		// server's own counters are that connection's.
		s.srv.ConnState = func(_ *framed.Conn, st framed.ConnState) {
			if st != framed.StateClosed {
				return
			}
			at := time.Now()
			stats := s.srv.Stats()
			var err error
			if n := stats.HandlerErrors + stats.Unrouted + stats.FramesTooLarge + stats.InvalidLength + stats.ConnErrors; n > 0 {
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

// framedConnClient is framedImpl's client: a framed.Conn.
type framedConnClient struct{ *framed.Conn }

func dialFramed(addr string) (Client, error) {
	nc, err := dialTCP(addr)
	if err != nil {
		return nil, err
	}
	return framedConnClient{framed.NewConn(nc, framed.ConnConfig{})}, nil
}

type framedClient struct {
	nc net.Conn
	rd *framed.Reader
	wr *framed.Writer
}

func dialFramedWriter(addr string) (Client, error) {
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

// errSendOnly is what the Client.Send row returns when asked to read.
var errSendOnly = errors.New("bench: the Client.Send row only sends")

// framedSendClient writes every frame with framed.Client.Send. The Conn
// under the Client gives the half-close at the end, which a Client does
// not offer: CloseWrite sends every queued frame, then a FIN.
type framedSendClient struct {
	cl *framed.Client
	fc *framed.Conn
}

func dialFramedSend(addr string) (Client, error) {
	nc, err := dialTCP(addr)
	if err != nil {
		return nil, err
	}
	fc := framed.NewConn(nc, framed.ConnConfig{})
	return framedSendClient{cl: framed.NewClient(fc), fc: fc}, nil
}

// WriteFrame calls Send with a context that never ends: the connection's
// deadline bounds a Send waiting for room.
func (c framedSendClient) WriteFrame(p []byte) error     { return c.cl.Send(context.Background(), p) }
func (c framedSendClient) Flush() error                  { return c.fc.Flush() }
func (c framedSendClient) ReadFrame() ([]byte, error)    { return nil, errSendOnly }
func (c framedSendClient) Buffered() int                 { return 0 }
func (c framedSendClient) SetDeadline(t time.Time) error { return c.fc.SetDeadline(t) }
func (c framedSendClient) CloseWrite() error             { return c.fc.CloseWrite() }
func (c framedSendClient) Close() error                  { return c.cl.Close() }

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
