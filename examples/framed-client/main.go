// Command framed-client sends frames to a framed echo server and checks
// that every echo comes back intact and in order.
//
// The requests are pipelined: -c goroutines share one connection, and the
// replies are matched to them first in, first out.
//
// -addr takes several addresses, comma-separated: the client connects to
// the first that answers, and when the connection ends (a server restarts)
// it dials again with a [framed.Redialer]. A request the server may or may
// not have received ([framed.ErrOutcomeUnknown]) is sent again, since an
// echo does no harm twice; a service that changes state on a request
// would decide otherwise.
//
// Usage:
//
//	go run ./examples/framed-client -addr 127.0.0.1:8888,127.0.0.1:8889 -n 1000 -size 64
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
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
	os.Exit(cli.Exit(os.Stderr, "framed-client", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("framed-client", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "framed-client sends frames to a framed echo server and verifies every echo.\n\nUsage: go run ./examples/framed-client [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8888", "addresses of framed echo servers, comma-separated, tried in order")
	n := fs.Int("n", 100, "number of frames to send")
	size := fs.Int("size", 64, "payload bytes per frame (at least 8)")
	conc := fs.Int("c", 4, "goroutines sending at once on the one connection")
	timeout := fs.Duration("timeout", 30*time.Second, "how long the whole run may take")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	if *n < 0 || *size < 8 || *size > framed.DefaultMaxFrameSize || *conc < 1 {
		return cli.Usagef(fs, "need -n >= 0, 8 <= -size <= %d and -c >= 1", framed.DefaultMaxFrameSize)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	client := &framed.Redialer{Addrs: strings.Split(*addr, ",")}
	defer client.Close()
	var retried atomic.Int64

	start := time.Now()
	g, ctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for i := range *n {
			select {
			case next <- i:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	})
	for range *conc {
		g.Go(func() error {
			msg := make([]byte, *size)
			for i := range next {
				fill(msg, i)
				reply, err := client.Request(ctx, msg)
				for errors.Is(err, framed.ErrOutcomeUnknown) && ctx.Err() == nil {
					retried.Add(1) // an echo may be asked twice
					reply, err = client.Request(ctx, msg)
				}
				if err != nil {
					return fmt.Errorf("frame %d: %w", i, err)
				}
				if !bytes.Equal(reply, msg) {
					return fmt.Errorf("frame %d: echo differs from what was sent", i)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stdout, "%d frames of %d bytes sent to %s, %d echoes verified in %v (%.0f frames/s)\n",
		*n, *size, *addr, *n, elapsed.Round(time.Millisecond), float64(*n)/elapsed.Seconds())
	if n := retried.Load(); n > 0 {
		fmt.Fprintf(stdout, "%d requests sent again after a connection ended\n", n)
	}
	return nil
}

// fill makes msg unique to frame i: its number, then a pattern from it.
func fill(msg []byte, i int) {
	binary.LittleEndian.PutUint64(msg, uint64(i))
	for j := 8; j < len(msg); j++ {
		msg[j] = byte(i + j)
	}
}
