package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/framed-go/framed"
)

// lockedWriter serialises writes, so that lines written from several
// goroutines (and the server's logger) never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logger writes diagnostics to stderr, one line each.
type logger struct {
	w       io.Writer
	verbose bool
}

// print writes a line whatever -v says.
func (l *logger) print(format string, args ...any) {
	fmt.Fprintf(l.w, "framecat: "+format+"\n", args...)
}

// printf writes a line with -v only.
func (l *logger) printf(format string, args ...any) {
	if l.verbose {
		l.print(format, args...)
	}
}

// tooLargeError words a *framed.FrameTooLargeError for the shell,
// "frame too large: 5000000 > 4194304", and still matches it.
type tooLargeError struct{ e *framed.FrameTooLargeError }

func (t tooLargeError) Error() string {
	return fmt.Sprintf("frame too large: %d > %d (-max)", t.e.Size, t.e.Limit)
}

func (t tooLargeError) Unwrap() error { return t.e }

// plain returns err with a frame-too-large cause in the shell's words.
func plain(err error) error {
	var tl *framed.FrameTooLargeError
	if errors.As(err, &tl) {
		return tooLargeError{tl}
	}
	return err
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
