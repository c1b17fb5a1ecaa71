// Command tcp-echo-server is a plain TCP echo server: one goroutine per
// connection, each line it receives is sent back.
//
// Plain TCP has no message boundaries, so this server works in lines: it
// reads up to a newline and echoes what it read. See framed-echo-server for
// binary messages.
//
// Usage:
//
//	go run ./examples/tcp-echo-server -addr 127.0.0.1:8888
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/framed-go/framed/examples/internal/cli"
)

const (
	maxLine     = 64 << 10        // longest line accepted
	idleTimeout = 5 * time.Minute // a connection that sends nothing for this long is closed
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "tcp-echo-server", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tcp-echo-server", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "tcp-echo-server echoes every line it receives over plain TCP.\n\nUsage: go run ./examples/tcp-echo-server [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8888", "address to listen on")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	logger := log.New(stdout, "", 0) // safe for the connections' goroutines
	logger.Printf("listening on %s", ln.Addr())

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = make(map[net.Conn]struct{})
	)
	// When ctx ends (Ctrl-C), stop accepting and close every connection.
	stopAfter := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stopAfter()

	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				logger.Print("server stopped")
				return nil
			}
			return err
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		if ctx.Err() != nil { // ctx ended before c was tracked
			c.Close()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			if err := echoLines(c, logger); err != nil {
				logger.Printf("%s: %v", c.RemoteAddr(), err)
			}
		}()
	}
}

// echoLines sends every line read from c back to c, until c ends.
func echoLines(c net.Conn, logger *log.Logger) error {
	r := bufio.NewReaderSize(c, maxLine)
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if len(line) > 0 {
			logger.Printf("%s: %q", c.RemoteAddr(), line)
			if _, werr := c.Write(line); werr != nil {
				return werr
			}
		}
		if err == io.EOF || errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
