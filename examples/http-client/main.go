// Command http-client fetches a URL and prints the body. It gives up after
// -timeout, refuses bodies larger than 10 MiB instead of reading without
// end, and reports a non-2xx status as an error with the start of the
// body.
//
// Usage:
//
//	go run ./examples/http-client http://127.0.0.1:8080/
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framed-go/framed/examples/internal/cli"
	"github.com/framed-go/framed/httpx"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "http-client", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("http-client", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 10*time.Second, "how long the whole request may take")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "http-client fetches a URL and prints its body, with a timeout and a 10 MiB cap.\n\nUsage: go run ./examples/http-client [flags] URL\n")
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef(fs, "need a URL")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	body, err := httpx.Get(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	_, err = stdout.Write(body)
	return err
}
