// Package exampletest runs the example programs in-process for their smoke
// tests.
package exampletest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// RunFunc is the shape of an example server's run function.
type RunFunc func(ctx context.Context, args []string, stdout io.Writer) error

// Server is an example server running in-process.
type Server struct {
	Addr string // the address it printed after "listening on ", up to a space

	mu  sync.Mutex
	out bytes.Buffer

	stop func()
}

// Stop ends the server's ctx, as Ctrl-C does, and waits for it to return.
// The test fails if it returns an error or takes more than 10 s. Stop may
// be called more than once; the test's cleanup calls it too.
func (s *Server) Stop() { s.stop() }

// Output returns what the server has printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// StartServer starts run with args and waits until it prints
// "listening on ADDR". The server is stopped, and checked to return nil,
// when the test ends.
func StartServer(t *testing.T, run RunFunc, args ...string) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw)
		pw.CloseWithError(io.EOF)
		done <- err
	}()

	s := &Server{}
	lines := bufio.NewScanner(pr)
	addrc := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer pr.Close()
		for lines.Scan() {
			line := lines.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
			if a, ok := strings.CutPrefix(line, "listening on "); ok {
				select {
				case addrc <- strings.Fields(a)[0]:
				default:
				}
			}
		}
	}()
	s.stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("server did not stop within 10s of its ctx ending")
		}
		<-copied
	})
	t.Cleanup(s.Stop)
	select {
	case s.Addr = <-addrc:
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("server returned before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("server did not start listening within 10s")
	}
	return s
}

// runMainEnv, set to 1, makes a test binary run the program's main instead
// of its tests, with the arguments that follow "--".
const runMainEnv = "EXAMPLETEST_RUN_MAIN"

// RunMainIfAsked, called first in an example's TestMain, runs main instead
// of the tests when [CheckUsageErrors] started the test binary to play the
// program: so that it checks what main does, exit status included.
func RunMainIfAsked(main func()) {
	if os.Getenv(runMainEnv) != "1" {
		return
	}
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Args = append(os.Args[:1], args...)
	main()
	os.Exit(0)
}

// CheckUsageErrors checks how a program answers a command-line mistake: a
// bad flag, and the stray arguments given (a lone address when none is
// given), each end with exit status 2 and the mistake reported exactly
// once on standard error, before anything runs. It runs the program's
// real main in a process of its own (the test binary, through
// [RunMainIfAsked]), so main's handling of the error is checked too.
func CheckUsageErrors(t *testing.T, name string, stray ...string) {
	t.Helper()
	if len(stray) == 0 {
		stray = []string{"127.0.0.1:9"}
	}
	tests := []struct {
		name    string
		give    []string
		wantMsg string
	}{
		{name: "bad flag", give: []string{"-no-such-flag"}, wantMsg: "flag provided but not defined: -no-such-flag"},
		{name: "stray argument", give: stray, wantMsg: "unexpected argument " + strconv.Quote(stray[len(stray)-1])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--"}, tt.give...)...)
			cmd.Env = append(os.Environ(), runMainEnv+"=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if assert.ErrorAs(t, err, &ee, "%s %q: stderr %q", name, tt.give, stderr.String()) {
				assert.Equal(t, 2, ee.ExitCode(), "exit status of %s %q", name, tt.give)
			}
			out := stderr.String()
			assert.True(t, strings.HasPrefix(out, name+": "+tt.wantMsg), "%q starts with %q", out, tt.wantMsg)
			assert.Equal(t, 1, strings.Count(out, tt.wantMsg), "the message once in %q", out)
			assert.Contains(t, out, "Usage:")
			assert.Empty(t, stdout.String(), "nothing on standard output")
		})
	}
}
