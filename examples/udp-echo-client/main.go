// Command udp-echo-client sends each line typed on standard input to a UDP
// echo server as one datagram and prints the reply. A line "q" (in any
// case), or the end of standard input, quits.
//
// UDP may lose a datagram: each exchange waits at most -timeout for the
// reply, then reports the loss and goes on with the next line. When the
// server's host reports that nothing listens at -addr (an ICMP port
// unreachable), it stops at once. It exits 1 if no reply ever came.
//
// Usage:
//
//	go run ./examples/udp-echo-client -addr 127.0.0.1:8888
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "udp-echo-client", err))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("udp-echo-client", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "udp-echo-client sends each line of standard input as a UDP datagram; q quits.\n\nUsage: go run ./examples/udp-echo-client [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8888", "UDP address of the echo server")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for each reply")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sending to %s; type a line, q to quit\n", *addr)
	lines := bufio.NewScanner(stdin)
	sent, answered := 0, 0
	for lines.Scan() {
		line := lines.Text()
		if strings.EqualFold(strings.TrimSpace(line), "q") {
			break
		}
		exCtx, cancel := context.WithTimeout(ctx, *timeout)
		reply, err := framed.ExchangeUDP(exCtx, *addr, []byte(line))
		cancel()
		sent++
		switch {
		case ctx.Err() != nil: // Ctrl-C
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Fprintf(stdout, "no reply within %v (UDP can lose datagrams)\n", *timeout)
		case errors.Is(err, framed.ErrExchangeRefused): // no use sending more
			return fmt.Errorf("nothing listens at %s: %w", *addr, framed.ErrExchangeRefused)
		case err != nil:
			return err
		default:
			answered++
			fmt.Fprintf(stdout, "echo: %s\n", reply)
		}
	}
	if err := lines.Err(); err != nil {
		return err
	}
	if sent > 0 && answered == 0 {
		return fmt.Errorf("no reply from %s to any of %d datagrams", *addr, sent)
	}
	fmt.Fprintln(stdout, "bye")
	return nil
}
