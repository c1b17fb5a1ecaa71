// Command http-server is a small HTTP server with the timeouts and limits a
// server on the open internet needs: a bound on the time to send headers
// (against slowloris), on header and body size, and a graceful stop on
// Ctrl-C that lets requests in flight finish.
//
// Usage:
//
//	go run ./examples/http-server -addr 127.0.0.1:8080
//	curl http://127.0.0.1:8080/
//	curl -d 'some text' http://127.0.0.1:8080/echo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/framed-go/framed/examples/internal/cli"
	"github.com/framed-go/framed/httpx"
)

const maxBody = 1 << 20 // largest request body /echo accepts

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "http-server", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("http-server", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "http-server serves GET / and POST /echo with safe timeouts and body limits.\n\nUsage: go run ./examples/http-server [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	srv := httpx.NewServer(*addr, routes())
	if err := httpx.Serve(ctx, srv, ln); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "server stopped")
	return nil
}

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from framed's http-server example")
	})
	// POST /echo returns the request body; bodies over maxBody get 413.
	mux.Handle("POST /echo", httpx.MaxBytes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "could not read body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	}), maxBody))
	return mux
}
