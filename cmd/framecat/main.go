// Command framecat is a command-line peer for any length-prefixed TCP
// protocol: nc that knows frames. It sends each message of its input as one
// frame and prints each frame it receives as one message, in the wire
// format that its flags describe (by default framed's: a 4-byte
// little-endian length, then the payload).
//
// Usage:
//
//	framecat [flags] HOST:PORT        connect: send the input, print what comes back
//	framecat [flags] -req HOST:PORT   send one message, print one reply, exit
//	framecat [flags] -l ADDR          listen: print every frame received and
//	                                  answer it with the next input message, or
//	                                  with itself (-echo)
//
// Messages are read from stdin (or -f FILE) and written to stdout in one of
// five encodings: text, hex, base64 or JSON lines, or raw frames. Only data
// goes to stdout; diagnostics go to stderr. framecat exits 0 on success, 1
// on a network, protocol or input error, with a one-line message naming the
// cause, and 2 on a usage error. Run framecat -h for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C ends the work cleanly; a second one, should that
	// hang, kills the program as usual.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is an error in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode prints err, if any, as one line on stderr and returns the exit
// status it calls for: 0 for none or -h, 2 for a usage error, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "framecat: %v (framecat -h for help)\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "framecat: %v\n", err)
		return 1
	}
}

// run is framecat with its arguments and standard streams, until ctx ends
// (Ctrl-C), the work is done, or an error stops it.
//
// The input is read on a goroutine of its own. A message read that cannot
// be delivered any more is dropped; when run returns early, that goroutine
// may be left in a Read of stdin that nothing can interrupt, and it ends
// with that Read (or with the program).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr}
	cfg, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	log := &logger{w: stderr, verbose: cfg.verbose}

	input := stdin
	if cfg.file != "" && cfg.file != "-" {
		f, err := os.Open(cfg.file)
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		defer f.Close()
		input = f
	}
	in := newMsgReader(cfg.in, input, cfg.format)
	out := newMsgWriter(cfg.out, stdout, cfg.format)

	switch {
	case cfg.listen != "":
		return listen(ctx, cfg, in, out, log)
	case cfg.req != "":
		return request(ctx, cfg, in, out, log)
	default:
		return connect(ctx, cfg, in, out, log)
	}
}
