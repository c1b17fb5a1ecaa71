// Command tcp-echo-client sends each line typed on standard input to a TCP
// echo server and prints the reply. A line "q" (in any case), or the end of
// standard input, quits; so it works with a pipe as well as a terminal.
//
// Usage:
//
//	go run ./examples/tcp-echo-client -addr 127.0.0.1:8888
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/framed-go/framed/examples/internal/cli"
)

const replyTimeout = 10 * time.Second // how long to wait for each echo

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "tcp-echo-client", err))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("tcp-echo-client", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "tcp-echo-client sends each line of standard input to a TCP echo server; q quits.\n\nUsage: go run ./examples/tcp-echo-client [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8888", "address of the echo server")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	var d net.Dialer
	dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialContext(dialCtx, "tcp", *addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stopAfter := context.AfterFunc(ctx, func() { c.Close() }) // Ctrl-C unblocks a pending read
	defer stopAfter()

	fmt.Fprintf(stdout, "connected to %s; type a line, q to quit\n", c.RemoteAddr())
	lines := bufio.NewScanner(stdin)
	replies := bufio.NewReader(c)
	for lines.Scan() {
		line := lines.Text()
		if strings.EqualFold(strings.TrimSpace(line), "q") {
			break
		}
		// The server echoes lines, so the newline marks where the reply ends.
		if _, err := io.WriteString(c, line+"\n"); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(replyTimeout))
		reply, err := replies.ReadString('\n')
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read reply: %w", err)
		}
		fmt.Fprintf(stdout, "echo: %s", reply)
	}
	if err := lines.Err(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "bye")
	return nil
}
