// Command server is a zinx-style game server routed by message ID: a
// framed.Mux instead of a hand-written switch on the ID.
//
// Its packets are zinx's: a message ID (u32), the data's length (u32) and
// the data, big-endian, which framed speaks as Format{LengthOffset: 4,
// BigEndian: true}. A frame is the message ID followed by the data, and
// every reply carries the request's message ID:
//
//	msgID 1  ping     any data          → "pong"
//	msgID 2  upper    text              → the text in upper case
//	msgID 3  reverse  up to 256 bytes   → the bytes reversed; more ends the connection
//
// Any other message ID ends the connection once the replies to the
// frames before it are sent: a client that matches replies to requests in
// order would otherwise wait forever, or take the next reply for this
// one. With -v it logs every frame's message ID, through a middleware
// that wraps the whole Mux. On Ctrl-C or SIGTERM it shuts down gracefully
// and prints what it served.
//
// Usage:
//
//	go run ./examples/router/server -addr 127.0.0.1:8888
//	go run ./examples/router/client -addr 127.0.0.1:8888
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/cli"
)

// The message IDs the server routes.
const (
	msgPing    = 1
	msgUpper   = 2
	msgReverse = 3
)

// zinx is zinx v1.2.6's packet: msgID u32, dataLen u32, data, big-endian,
// with at most 64 KiB of data.
var zinx = framed.Format{LengthOffset: 4, BigEndian: true, MaxFrameSize: 4 + 64<<10}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "router-server", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("router-server", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "router-server answers zinx-style packets by message ID: 1 ping, 2 upper, 3 reverse.\n\nUsage: go run ./examples/router/server [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8888", "address to listen on")
	verbose := fs.Bool("v", false, "log every frame's message ID, and why each connection closed")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level}))

	srv := &framed.Server{
		Format:       zinx,
		Handler:      framed.Chain(logFrames(logger))(newMux()), // every route, and frames with none
		FrameTimeout: 10 * time.Second,
		IdleTimeout:  5 * time.Minute,
		WriteTimeout: 10 * time.Second,
		Logger:       logger,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s (msgID 1 ping, 2 upper, 3 reverse)\n", ln.Addr())

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err // Serve failed before any shutdown
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close() // a peer stalled mid-frame: stopping is what was asked for
	}
	if err := <-done; !errors.Is(err, framed.ErrServerClosed) {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(stdout, "stopped: %d connections, %d frames in, %d frames out, %d with no route\n",
		st.Accepted, st.FramesIn, st.FramesOut, st.Unrouted)
	return nil
}

// newMux routes the frames by their first 4 bytes, the message ID.
// Each route replies with the request's message ID and a new body, in one
// frame, with WriteFrameParts: no copy of the two into one slice.
func newMux() *framed.Mux {
	mux := &framed.Mux{Key: framed.Key{BigEndian: true}} // a u32 at offset 0
	mux.HandleFunc(msgPing, func(ctx context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], []byte("pong"))
	})
	mux.HandleFunc(msgUpper, func(ctx context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], bytes.ToUpper(frame[4:]))
	})
	mux.Handle(msgReverse, framed.Chain(maxData(256))(framed.HandlerFunc(
		func(ctx context.Context, c *framed.Conn, frame []byte) error {
			data := slices.Clone(frame[4:])
			slices.Reverse(data)
			return c.WriteFrameParts(frame[:4], data)
		})))
	return mux
}

// errTooMuchData is a route's refusal of a frame with more data than it
// takes: the connection ends, after the replies owed.
var errTooMuchData = errors.New("too much data for this message ID")

// maxData is a middleware for one route: it refuses frames with more than
// n bytes of data.
func maxData(n int) framed.Middleware {
	return func(next framed.Handler) framed.Handler {
		return framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			if len(frame)-4 > n {
				return fmt.Errorf("msgID %d: %d bytes: %w", binary.BigEndian.Uint32(frame), len(frame)-4, errTooMuchData)
			}
			return next.ServeFrame(ctx, c, frame)
		})
	}
}

// logFrames is a middleware for the whole Mux: it logs every frame's
// message ID and how long its route took, at level Debug.
func logFrames(log *slog.Logger) framed.Middleware {
	return func(next framed.Handler) framed.Handler {
		return framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			if !log.Enabled(ctx, slog.LevelDebug) {
				return next.ServeFrame(ctx, c, frame)
			}
			start := time.Now()
			err := next.ServeFrame(ctx, c, frame)
			id, _ := framed.Key{BigEndian: true}.Read(frame)
			log.LogAttrs(ctx, slog.LevelDebug, "frame", slog.Any("remote", c.RemoteAddr()),
				slog.Uint64("msgID", id), slog.Int("data", max(len(frame)-4, 0)),
				slog.Duration("took", time.Since(start)), slog.Any("err", err))
			return err
		})
	}
}
