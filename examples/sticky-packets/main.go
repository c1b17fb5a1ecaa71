// Command sticky-packets shows the "sticky packet" problem (粘包) of plain
// TCP and its fix.
//
// A client writes 20 short messages back to back. Over plain TCP the
// server's reads return the bytes merged together: TCP keeps the bytes in
// order but not where one write ended. Over framed TCP every message
// carries its length, and the server reads exactly 20 messages back.
//
// The server here starts reading only once the client has finished
// writing, as a busy server often does; that makes the merge certain
// instead of likely. Nothing else about the two runs differs.
//
// Usage:
//
//	go run ./examples/sticky-packets
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
	os.Exit(cli.Exit(os.Stderr, "sticky-packets", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sticky-packets", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "sticky-packets shows 20 messages merging over plain TCP and arriving whole over frames.\n\nUsage: go run ./examples/sticky-packets [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:0", "loopback address for the demo (port 0: any free port)")
	n := fs.Int("n", 20, "number of messages the client sends")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	if *n < 1 || *n > 10000 {
		return cli.Usagef(fs, "-n must be between 1 and 10000, not %d", *n)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // bounds the whole demo
	defer cancel()

	msgs := make([]string, *n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("message %02d", i+1)
	}
	fmt.Fprintf(stdout, "A client sends %d messages back to back: %q, %q, ...\n\n", len(msgs), msgs[0], msgs[min(1, len(msgs)-1)])

	fmt.Fprintln(stdout, "Plain TCP, one Write per message:")
	chunks, err := exchange(ctx, *addr, sendRaw(msgs), readRaw)
	if err != nil {
		return fmt.Errorf("plain TCP: %w", err)
	}
	for i, c := range chunks {
		fmt.Fprintf(stdout, "  read %d: %d bytes %q\n", i+1, len(c), shorten(c))
	}
	fmt.Fprintf(stdout, "  => %d messages sent, %d read(s) received: the boundaries are lost.\n\n", len(msgs), len(chunks))

	fmt.Fprintln(stdout, "framed TCP, one WriteFrame per message (4-byte length + payload):")
	frames, err := exchange(ctx, *addr, sendFramed(msgs), readFramed)
	if err != nil {
		return fmt.Errorf("framed TCP: %w", err)
	}
	intact := 0
	for i, f := range frames {
		if i < len(msgs) && f == msgs[i] {
			intact++
		}
	}
	fmt.Fprintf(stdout, "  frames: %q ... %q\n", frames[0], frames[len(frames)-1])
	fmt.Fprintf(stdout, "  => %d messages sent, %d messages received, %d intact and in order.\n", len(msgs), len(frames), intact)
	if intact != len(msgs) || len(frames) != len(msgs) {
		return errors.New("framed TCP did not deliver every message intact")
	}
	return nil
}

// exchange runs one client and one server connection over loopback: the
// client sends and half-closes, then the server reads until the end.
func exchange(ctx context.Context, addr string, send func(net.Conn) error, read func(net.Conn) ([]string, error)) ([]string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	client, err := new(net.Dialer).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	defer server.Close()
	if dl, ok := ctx.Deadline(); ok {
		client.SetDeadline(dl)
		server.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { client.Close(); server.Close() })
	defer stop()

	if err := send(client); err != nil {
		return nil, err
	}
	return read(server)
}

func sendRaw(msgs []string) func(net.Conn) error {
	return func(c net.Conn) error {
		for _, m := range msgs {
			if _, err := io.WriteString(c, m); err != nil {
				return err
			}
		}
		return c.(*net.TCPConn).CloseWrite()
	}
}

func readRaw(c net.Conn) ([]string, error) {
	var chunks []string
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			chunks = append(chunks, string(buf[:n]))
		}
		if err == io.EOF {
			return chunks, nil
		}
		if err != nil {
			return chunks, err
		}
	}
}

func sendFramed(msgs []string) func(net.Conn) error {
	return func(c net.Conn) error {
		fc := framed.NewConn(c, framed.ConnConfig{})
		for _, m := range msgs {
			if err := fc.WriteFrame([]byte(m)); err != nil {
				return err
			}
		}
		return fc.CloseWrite()
	}
}

func readFramed(c net.Conn) ([]string, error) {
	fc := framed.NewConn(c, framed.ConnConfig{})
	var frames []string
	for {
		p, err := fc.ReadFrame()
		if err == io.EOF {
			return frames, nil
		}
		if err != nil {
			return frames, err
		}
		frames = append(frames, string(p)) // p is only valid until the next ReadFrame
	}
}

// shorten keeps a long chunk readable on one line.
func shorten(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max/2] + " ... " + s[len(s)-max/2:]
}
