// Command udp-echo-server answers every UDP datagram with the same bytes.
//
// It reads datagrams whole, up to 65,527 bytes (the most one can carry),
// so none is cut short, and never sends a reply larger than the request,
// so it cannot be used to amplify traffic toward a spoofed address.
//
// Usage:
//
//	go run ./examples/udp-echo-server -addr 127.0.0.1:8888
package main

import (
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "udp-echo-server", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("udp-echo-server", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "udp-echo-server answers every UDP datagram with the same bytes.\n\nUsage: go run ./examples/udp-echo-server [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8888", "UDP address to listen on")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", pc.LocalAddr())

	srv := &framed.UDPServer{} // nil Handler: echo
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc) }()

	select {
	case err := <-done: // the socket failed
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, framed.ErrUDPServerClosed) {
		return err
	}
	st := srv.Stats()
	fmt.Fprintf(stdout, "server stopped after %d datagrams in, %d out\n", st.DatagramsIn, st.DatagramsOut)
	return nil
}
