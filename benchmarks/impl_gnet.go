package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// gnetDirectWrite is the payload size from which the gnet echo writes a
// frame straight from gnet's inbound buffer instead of copying it into the
// connection's batch of replies.
const gnetDirectWrite = 64 << 10

// gnetImpl is github.com/panjf2000/gnet/v2, an event-loop server
// (WithMulticore: one loop per CPU). OnTraffic decodes with Peek and
// Discard, appends every complete frame's reply to a per-connection batch
// and writes the batch once, when no complete frame is left. gnet is a
// server-side library, so its rows use the raw client.
func gnetImpl() Impl {
	return Impl{
		Name:  "gnet",
		Key:   "gnet",
		Note:  "panjf2000/gnet/v2 v2.9.7 event loops, multicore; Peek/Discard in OnTraffic, one Write per OnTraffic; raw client",
		Serve: serveGnet,
		Dial:  dialRaw,
	}
}

type gnetServer struct {
	gnet.BuiltinEventEngine
	cfg    ServerConfig
	addr   string
	eng    gnet.Engine
	booted chan struct{}
	ran    chan error // receives Run's result
	active atomic.Int64

	closing  sync.Once
	closeErr error
}

// gnetConn is a connection's state, kept in its Context.
type gnetConn struct {
	out    []byte // replies decoded in this OnTraffic, written at its end
	frames int64
	err    error
}

func serveGnet(cfg ServerConfig) (Server, error) {
	var err error
	for range 5 {
		var s *gnetServer
		if s, err = startGnet(cfg); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// startGnet runs an engine on a port that was free a moment ago: gnet
// listens by itself and does not report the port it got for port 0.
func startGnet(cfg ServerConfig) (*gnetServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &gnetServer{
		cfg:    cfg,
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		booted: make(chan struct{}),
		ran:    make(chan error, 1),
	}
	go func() {
		s.ran <- gnet.Run(s, "tcp://"+s.addr,
			gnet.WithMulticore(true),
			gnet.WithLogger(quietLogger{}))
	}()
	select {
	case <-s.booted:
	case err := <-s.ran:
		return nil, fmt.Errorf("bench: gnet.Run: %w", err)
	}
	return s, nil
}

func (s *gnetServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

func (s *gnetServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&gnetConn{})
	s.active.Add(1)
	return nil, gnet.None
}

func (s *gnetServer) OnClose(c gnet.Conn, err error) gnet.Action {
	s.active.Add(-1)
	if st, ok := c.Context().(*gnetConn); ok && s.cfg.Mode == Sink {
		if st.err != nil {
			err = st.err
		} else if errors.Is(err, io.EOF) {
			err = nil
		}
		s.cfg.report(SinkDone{Frames: st.frames, At: time.Now(), Err: err})
	}
	return gnet.None
}

func (s *gnetServer) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*gnetConn)
	for {
		h, err := c.Peek(headerSize)
		if err != nil {
			break // less than a header buffered
		}
		n, err := parseHeader(h)
		if err == nil && s.cfg.Mode == Sink && s.cfg.Size >= 0 && n != s.cfg.Size {
			err = errBadFrame
		}
		if err != nil {
			st.err = err
			return gnet.Close
		}
		if c.InboundBuffered() < headerSize+n {
			break // the rest of the frame has not arrived
		}
		if s.cfg.Mode == Echo {
			f, _ := c.Peek(headerSize + n)
			if n >= gnetDirectWrite {
				if len(st.out) > 0 {
					c.Write(st.out)
					st.out = st.out[:0]
				}
				c.Write(f) // copied by gnet if the socket does not take it all
			} else {
				st.out = append(st.out, f...)
			}
		}
		c.Discard(headerSize + n)
		st.frames++
	}
	if len(st.out) > 0 {
		c.Write(st.out)
		st.out = st.out[:0]
	}
	return gnet.None
}

func (s *gnetServer) Addr() string { return s.addr }
func (s *gnetServer) Active() int  { return int(s.active.Load()) }

// Close stops the engine and waits until Run has returned, by which time
// gnet has closed every connection and its event loops have exited.
// Engine.Stop polls for that every 500 ms; its context is cancelled as soon
// as Run returns, so Close does not wait out the poll.
func (s *gnetServer) Close() error {
	s.closing.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- s.eng.Stop(ctx) }()
		var runErr error
		select {
		case runErr = <-s.ran:
		case <-time.After(30 * time.Second):
			runErr = errors.New("bench: gnet engine did not stop within 30s")
		}
		cancel()
		if err := <-stopped; err != nil && !errors.Is(err, context.Canceled) {
			s.closeErr = err
		}
		if runErr != nil && s.closeErr == nil {
			s.closeErr = runErr
		}
	})
	return s.closeErr
}

// quietLogger drops gnet's log lines: its start-up line would land in the
// middle of the results table.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(string, ...any) {}
