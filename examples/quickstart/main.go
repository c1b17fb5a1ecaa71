// Command quickstart runs a framed server and client in one process over
// loopback, and prints what happens: the whole library in one command.
//
// Usage:
//
//	go run ./examples/quickstart
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/cli"
	"golang.org/x/sync/errgroup"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "quickstart", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "quickstart runs a framed server and client in one process and prints what happens.\n\nUsage: go run ./examples/quickstart [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:0", "loopback address for the server (port 0: any free port)")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // bounds the whole demo
	defer cancel()

	// Both ends use the same Format: the default wire format (a 4-byte
	// little-endian length), with frames of at most 1 KiB.
	format := framed.Format{MaxFrameSize: 1 << 10}

	// The server: every frame is answered with one frame, in upper case.
	srv := &framed.Server{
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			return c.WriteFrame(bytes.ToUpper(frame))
		}),
		Format:       format,
		FrameTimeout: 5 * time.Second,
		IdleTimeout:  time.Minute,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "server: listening on %s, frames up to 1 KiB\n", ln.Addr())

	err = talk(ctx, ln.Addr().String(), format, stdout)

	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		srv.Close()
		err = errors.Join(err, serr)
	}
	if serr := <-served; !errors.Is(serr, framed.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	st := srv.Stats()
	fmt.Fprintf(stdout, "server: shut down after %d connections, %d frames in, %d frames out, %d refused as too large\n",
		st.Accepted, st.FramesIn, st.FramesOut, st.FramesTooLarge)
	return err
}

// talk runs the client side of the demo.
func talk(ctx context.Context, addr string, format framed.Format, stdout io.Writer) error {
	d := &framed.Dialer{Timeout: 5 * time.Second, Format: format}
	client, err := d.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer client.Close()

	// One request, one reply.
	reply, err := client.Request(ctx, []byte("hello, framed"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "client: sent %q, got %q\n", "hello, framed", reply)

	// Many goroutines share the connection; each reply reaches the
	// goroutine that asked for it.
	const workers, each = 8, 25
	g, gctx := errgroup.WithContext(ctx)
	for w := range workers {
		g.Go(func() error {
			for i := range each {
				msg := fmt.Sprintf("worker %d message %d", w, i)
				reply, err := client.Request(gctx, []byte(msg))
				if err != nil {
					return err
				}
				if want := bytes.ToUpper([]byte(msg)); !bytes.Equal(reply, want) {
					return fmt.Errorf("got %q for %q", reply, msg)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "client: %d goroutines sent %d requests on one connection; every reply matched its request\n", workers, workers*each)

	// The client refuses to send a frame the server would refuse.
	_, err = client.Request(ctx, make([]byte, 2<<10))
	if !errors.Is(err, framed.ErrFrameTooLarge) {
		return fmt.Errorf("a 2 KiB request: got %v, want a FrameTooLargeError", err)
	}
	fmt.Fprintf(stdout, "client: a 2 KiB message is refused before sending: %v\n", err)

	// A peer that lies about the length is cut off; the others go on.
	raw, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	raw.Write([]byte{0x00, 0x00, 0x00, 0x40}) // claims 1 GiB
	if _, err := raw.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
		fmt.Fprintln(stdout, "server: closed a connection whose header claimed 1 GiB, before reading or allocating it")
	}
	reply, err = client.Request(ctx, []byte("still here?"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "client: sent %q, got %q\n", "still here?", reply)
	return nil
}
