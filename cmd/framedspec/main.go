// Command framedspec checks that an echo server speaking a length-prefixed
// wire format keeps the contract of one: every split and merge of the byte
// stream, the size edges, the limit enforced from the header, replies
// owed before a bad header still delivered, half-close, backpressure, and
// connections that do not hold each other up. It is to length-prefixed
// framing what h2spec is to HTTP/2: point it at any server, in any
// language, and get a verdict per numbered case.
//
// Usage:
//
//	framedspec [-size N] [-be] [-varint] [-offset N] [-adjust N] [-max N]
//	           [-only IDS] [-skip IDS] [-timeout D] [-json FILE] HOST:PORT
//
// The format flags are framecat's, and describe the server's wire format,
// any that framed speaks; -max is the server's largest frame, counted
// without its length field as [framed.Format] counts it (cases send
// exactly it, and one byte more). The server must echo every frame it
// receives as one frame. With -offset, or a positive -adjust, a frame has
// header fields besides its length (zinx's message ID, HTTP/2's type and
// stream): the cases fill them with a pattern and expect them echoed
// unchanged. Each case prints one line (PASS 2.3 a frame sent one byte per
// write is echoed once, whole); a failure is followed by why. framedspec
// exits 0 when every required case passed, 1 when one failed or the
// server could not be reached, and 2 on a usage error (a bad flag, a
// malformed HOST:PORT), which it reports in one line. Run framedspec -h
// for every flag and -list for the cases.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/framed-go/framed/framedtest"
	"github.com/framed-go/framed/internal/formatflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is an error in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// errFailed is a run in which a required case failed: exit status 1.
var errFailed = errors.New("a required case failed")

// exitCode prints err, if any, as one line on stderr and returns the exit
// status it calls for.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "framedspec: %v (framedspec -h for help)\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "framedspec: %v\n", err)
		return 1
	}
}

// ids splits a comma-separated list of case IDs.
func ids(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// run is framedspec with its arguments and output streams. A usage error
// comes back as a *usageError for exitCode to print: run prints only the
// usage that -h asks for.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("framedspec", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // flag would print the error and the whole usage itself
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "framedspec runs the numbered conformance cases against an echo server of a length-prefixed format.\n\nUsage: framedspec [flags] HOST:PORT\n")
		fs.PrintDefaults()
	}
	formatFlags := formatflag.Register(fs)
	only := fs.String("only", "", "run only these comma-separated case `IDs` or sections (2.3,4)")
	skip := fs.String("skip", "", "leave out these comma-separated case `IDs` or sections")
	timeout := fs.Duration("timeout", framedtest.DefaultCaseTimeout, "time each case may take")
	jsonPath := fs.String("json", "", "also write the results as JSON to `FILE` (- for stdout, instead of the lines)")
	list := fs.Bool("list", false, "list the cases with their levels and reasons, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.Usage()
			return err
		}
		return &usageError{msg: err.Error()}
	}
	if *list {
		for _, c := range framedtest.ConformanceCases() {
			fmt.Fprintf(stdout, "%s %s\n    %s: %s\n", c.ID, c.Title, c.Level, c.Reason)
		}
		return nil
	}
	if fs.NArg() != 1 {
		return &usageError{msg: "want one HOST:PORT"}
	}
	addr := fs.Arg(0)
	if err := checkAddr(addr); err != nil {
		return &usageError{msg: err.Error()}
	}
	f, err := formatFlags.Format()
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	if *timeout <= 0 {
		return &usageError{msg: fmt.Sprintf("-timeout must be positive, not %v", *timeout)}
	}
	opts := framedtest.ConformanceOptions{Format: f, Timeout: *timeout, Only: ids(*only), Skip: ids(*skip)}
	if _, err := framedtest.SelectCases(opts); err != nil {
		return &usageError{msg: err.Error()}
	}

	// A server that is not there is one error, not a failure per case.
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, *timeout)
	c, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return err
	}
	c.Close()

	lines := stdout
	if *jsonPath == "-" {
		lines = io.Discard
	}
	fmt.Fprintf(lines, "framedspec: %s, %s\n", addr, describe(formatFlags, f.Limit()))
	start := time.Now()
	results, err := framedtest.RunConformance(ctx, addr, opts, func(r framedtest.ConformanceResult) {
		printResult(lines, r)
	})
	if err != nil {
		return err
	}
	failedRequired := summarize(lines, results, time.Since(start))
	if *jsonPath != "" {
		if err := writeJSON(*jsonPath, stdout, addr, results); err != nil {
			return err
		}
	}
	if failedRequired > 0 {
		return errFailed
	}
	return nil
}

// checkAddr reports whether addr is a HOST:PORT that can be dialed: a
// port number from 1 to 65535 or a service name, and a host, possibly
// empty (the local system).
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want HOST:PORT (%v)", addr, err)
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil || p == 0 {
		return fmt.Errorf("address %q: port %q is not a port number from 1 to 65535 or a service name", addr, port)
	}
	return nil
}

// describe names the format in the words of its flags.
func describe(fl *formatflag.Flags, limit int) string {
	f, _ := fl.Format()
	var header string
	switch {
	case f.Varint:
		header = "varint length"
	default:
		size := f.HeaderSize
		if size == 0 {
			size = 4
		}
		order := "little-endian"
		if f.BigEndian {
			order = "big-endian"
		}
		header = fmt.Sprintf("%d-byte %s length", size, order)
	}
	if f.LengthOffset != 0 {
		header += fmt.Sprintf(" after %d header bytes", f.LengthOffset)
	}
	if f.LengthAdjust != 0 {
		header += fmt.Sprintf(", adjusted by %+d", f.LengthAdjust)
	}
	return fmt.Sprintf("%s, limit %d bytes", header, limit)
}

func printResult(w io.Writer, r framedtest.ConformanceResult) {
	switch r.Status {
	case framedtest.Fail:
		fmt.Fprintf(w, "FAIL %s %s (%s)\n", r.ID, r.Title, r.Level)
		for line := range strings.SplitSeq(r.Detail, "\n") {
			fmt.Fprintf(w, "       %s\n", line)
		}
	case framedtest.Skip:
		fmt.Fprintf(w, "SKIP %s %s: %s\n", r.ID, r.Title, r.Detail)
	default:
		fmt.Fprintf(w, "%s %s %s\n", r.Status, r.ID, r.Title)
	}
}

// summarize prints the totals and returns how many required cases failed.
func summarize(w io.Writer, results []framedtest.ConformanceResult, took time.Duration) int {
	var passed, skipped, failedReq, failedRec int
	var failedIDs []string
	for _, r := range results {
		switch {
		case r.Status == framedtest.Pass:
			passed++
		case r.Status == framedtest.Skip:
			skipped++
		case r.Level == framedtest.Required:
			failedReq++
			failedIDs = append(failedIDs, r.ID)
		default:
			failedRec++
			failedIDs = append(failedIDs, r.ID+" (recommended)")
		}
	}
	noun := "cases"
	if len(results) == 1 {
		noun = "case"
	}
	fmt.Fprintf(w, "\n%d %s in %.1fs: %d passed, %d failed (%d required, %d recommended), %d skipped\n",
		len(results), noun, took.Seconds(), passed, failedReq+failedRec, failedReq, failedRec, skipped)
	if len(failedIDs) > 0 {
		fmt.Fprintf(w, "failed: %s\n", strings.Join(failedIDs, ", "))
	}
	return failedReq
}

type report struct {
	Addr    string                         `json:"addr"`
	Passed  bool                           `json:"passed"` // every required case passed
	Results []framedtest.ConformanceResult `json:"results"`
}

func writeJSON(path string, stdout io.Writer, addr string, results []framedtest.ConformanceResult) error {
	rep := report{Addr: addr, Passed: true, Results: results}
	for _, r := range results {
		if r.Status == framedtest.Fail && r.Level == framedtest.Required {
			rep.Passed = false
		}
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
