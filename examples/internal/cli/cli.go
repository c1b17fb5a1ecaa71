// Package cli gives the example programs one way to read their command line
// and to end, the way Unix tools and Go's flag package do: a mistake in the
// command line is reported once, followed by the usage, and exits with
// status 2; -h prints the usage and exits 0; any other error is reported
// once and exits 1.
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
)

// UsageError is a mistake in the command line: an unknown or malformed
// flag, a stray argument, or a value out of range. [Exit] reports it with
// the program's usage and returns 2.
type UsageError struct {
	Err   error  // what is wrong; flag.ErrHelp for -h
	Usage string // the program's usage, as its FlagSet prints it
}

// Error returns what is wrong with the command line.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *UsageError) Unwrap() error { return e.Err }

// Parse parses args with fs and allows at most maxArgs positional
// arguments. It prints nothing: every mistake, and -h, comes back as a
// [*UsageError] for [Exit] to report, so that the message is printed once.
func Parse(fs *flag.FlagSet, args []string, maxArgs int) error {
	fs.SetOutput(io.Discard) // flag would print the error and the usage itself
	if err := fs.Parse(args); err != nil {
		return newUsageError(fs, err)
	}
	if fs.NArg() > maxArgs {
		hint := "it takes no arguments"
		if maxArgs > 0 {
			hint = fmt.Sprintf("it takes at most %d", maxArgs)
		}
		if fs.Lookup("addr") != nil {
			hint += "; give the address with -addr"
		}
		return newUsageError(fs, fmt.Errorf("unexpected argument %q: %s", fs.Arg(maxArgs), hint))
	}
	return nil
}

// Usagef returns a [*UsageError] for a command line that parsed but makes
// no sense, such as a value out of range.
func Usagef(fs *flag.FlagSet, format string, a ...any) error {
	return newUsageError(fs, fmt.Errorf(format, a...))
}

func newUsageError(fs *flag.FlagSet, err error) *UsageError {
	var usage bytes.Buffer
	out := fs.Output()
	fs.SetOutput(&usage)
	if fs.Usage != nil {
		fs.Usage()
	} else {
		fs.PrintDefaults()
	}
	fs.SetOutput(out)
	return &UsageError{Err: err, Usage: usage.String()}
}

// Exit reports err on stderr, prefixed with the program's name, and
// returns the exit status for it: 0 for nil and for -h (whose usage it
// prints), 2 for a [*UsageError], 1 for any other error.
func Exit(stderr io.Writer, name string, err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue) && errors.Is(ue.Err, flag.ErrHelp):
		fmt.Fprint(stderr, ue.Usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\n%s", name, ue.Err, ue.Usage)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}
