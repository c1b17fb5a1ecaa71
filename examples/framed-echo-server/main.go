// Command framed-echo-server is a framed TCP echo server: every frame a
// client sends comes back as one frame.
//
// It sets the limits a server facing unknown peers needs: a largest frame
// (-max-frame), a time for each frame to arrive once begun (so a peer that
// trickles bytes is cut off), an idle time between frames, and a bound on
// connections. On Ctrl-C or SIGTERM it shuts down gracefully: it stops
// accepting, lets frames in progress finish and their echoes go out, and
// exits 0. The graceful part is bounded by -grace (5 s): a peer stalled in
// the middle of a frame does not hold the server for its whole
// -frame-timeout, and the server has exited within about a second of the
// grace ending.
//
// Usage:
//
//	go run ./examples/framed-echo-server -addr 127.0.0.1:8888 -max-frame 1048576
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "framed-echo-server", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("framed-echo-server", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "framed-echo-server echoes every frame it receives, with limits on frame size, time and connections.\n\nUsage: go run ./examples/framed-echo-server [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8888", "address to listen on")
	maxFrame := fs.Int("max-frame", framed.DefaultMaxFrameSize, "largest frame accepted, in bytes")
	maxConns := fs.Int("max-conns", 10000, "most connections served at once")
	frameTimeout := fs.Duration("frame-timeout", 10*time.Second, "time a frame may take to arrive once begun")
	idleTimeout := fs.Duration("idle-timeout", 5*time.Minute, "time a connection may stay silent between frames")
	grace := fs.Duration("grace", 5*time.Second, "on Ctrl-C or SIGTERM, how long frames in progress may take to finish before their connections are closed")
	probeIdle := fs.Duration("probe-idle", 0, "send a probe frame (an empty one) to a client silent for this long, and close the connection if no byte follows within -probe-timeout; 0: no probes")
	probeTimeout := fs.Duration("probe-timeout", 0, "with -probe-idle: how long a probed client may stay silent; 0: -probe-idle")
	verbose := fs.Bool("v", false, "log why each connection closed, and each probe")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	if *maxFrame <= 0 {
		return cli.Usagef(fs, "-max-frame must be positive, not %d", *maxFrame)
	}
	if *grace <= 0 {
		return cli.Usagef(fs, "-grace must be positive, not %v", *grace)
	}
	if *probeIdle < 0 || *probeTimeout < 0 {
		return cli.Usagef(fs, "-probe-idle and -probe-timeout must not be negative")
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	srv := &framed.Server{
		Handler:      framed.EchoHandler{},
		Format:       framed.Format{MaxFrameSize: *maxFrame},
		MaxConns:     *maxConns,
		FrameTimeout: *frameTimeout,
		IdleTimeout:  *idleTimeout,
		WriteTimeout: 10 * time.Second,
		Probes:       framed.Probes{Idle: *probeIdle, Timeout: *probeTimeout},
		Logger:       slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level})),
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s (frames up to %d bytes)\n", ln.Addr(), *maxFrame)

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err // Serve failed before any shutdown
	case <-ctx.Done():
	}

	fmt.Fprintf(stdout, "shutting down: finishing frames in progress (for at most %v)\n", *grace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// The grace is over: a peer is stalled mid-frame, or a handler is
		// slow. Stopping is what was asked for, so this is no failure.
		fmt.Fprintf(stdout, "grace of %v over: closing %d connections still open\n", *grace, srv.Stats().Active)
		srv.Close()
	}
	if err := <-done; !errors.Is(err, framed.ErrServerClosed) {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(stdout, "stopped: %d connections, %d frames in, %d frames out, %d refused as too large, %d with an invalid length\n",
		st.Accepted, st.FramesIn, st.FramesOut, st.FramesTooLarge, st.InvalidLength)
	if *probeIdle > 0 {
		fmt.Fprintf(stdout, "probes: %d sent, %d answered, %d silent peers closed\n", st.ProbesSent, st.ProbesAnswered, st.PeersSilent)
	}
	return nil
}
