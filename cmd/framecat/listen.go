package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framed-go/framed"
)

// errEnough closes a connection whose frame came after the -n-th.
var errEnough = errors.New("-n frames received")

// shutdownGrace bounds the graceful stop of listen mode before it closes
// what is left.
const shutdownGrace = 5 * time.Second

// listen is listen mode: a framed Server that prints every frame received
// and answers it with the next input message, or with the frame itself
// (-echo), until Ctrl-C or -n frames.
func listen(ctx context.Context, cfg *config, in msgReader, out *msgWriter, log *logger) error {
	tlsCfg, err := cfg.tls.server()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	log.print("listening on %s", ln.Addr())

	var (
		stopping = make(chan struct{})
		stopOnce sync.Once
		failMu   sync.Mutex
		failed   error
	)
	stop := func(err error) {
		if err != nil {
			failMu.Lock()
			if failed == nil {
				failed = err
			}
			failMu.Unlock()
		}
		stopOnce.Do(func() { close(stopping) })
	}

	// The input feeds the answers, in the order frames arrive on any
	// connection; it is closed at the end of the input.
	answers := make(chan []byte)
	if !cfg.echo {
		go func() {
			defer close(answers)
			for {
				msg, err := in.next()
				if err == io.EOF {
					return
				}
				if err != nil {
					stop(err)
					return
				}
				select {
				case answers <- msg:
				case <-stopping:
					return
				}
			}
		}()
	}

	var count atomic.Int64
	handler := func(ctx context.Context, c *framed.Conn, frame []byte) error {
		k := count.Add(1)
		if cfg.n > 0 && k > int64(cfg.n) {
			return errEnough
		}
		log.printf("received %d bytes from %s", len(frame), c.RemoteAddr())
		if err := out.write(frame); err != nil {
			stop(err)
			return err
		}
		answer, ok := frame, cfg.echo
		if !cfg.echo {
			select {
			case answer, ok = <-answers:
			case <-ctx.Done():
				return ctx.Err()
			case <-stopping:
				return nil
			}
		}
		if ok {
			if err := c.WriteFrame(answer); err != nil {
				return err
			}
			log.printf("sent %d bytes to %s", len(answer), c.RemoteAddr())
		}
		if cfg.n > 0 && k == int64(cfg.n) {
			stop(nil)
		}
		return nil
	}

	level := slog.LevelError
	if cfg.verbose {
		level = slog.LevelDebug
	}
	srv := &framed.Server{
		Handler:      framed.HandlerFunc(handler),
		Format:       cfg.format,
		FrameTimeout: cfg.timeout,
		WriteTimeout: cfg.timeout,
		Probes:       cfg.probes,
		TLSConfig:    tlsCfg,
		Logger:       slog.New(slog.NewTextHandler(log.w, &slog.HandlerOptions{Level: level})),
	}
	if cfg.verbose {
		srv.ConnState = func(c *framed.Conn, s framed.ConnState) {
			log.printf("connection from %s: %s", c.RemoteAddr(), s)
		}
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var serveErr error
	select {
	case serveErr = <-served:
	case <-stopping:
	case <-ctx.Done():
		log.printf("interrupted: shutting down")
	}
	stop(nil)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		// Close does not wait for handlers; they return once it cancels
		// their ctx, and none may write to out after run returns.
		srv.Shutdown(context.Background())
	}
	if serveErr == nil {
		serveErr = <-served
	}
	if !errors.Is(serveErr, framed.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	failMu.Lock()
	defer failMu.Unlock()
	return failed
}
