package cli_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/framed-go/framed/examples/internal/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Re-run as the demo program when asked: the exit status of a real
	// process is what a shell sees.
	if args, ok := os.LookupEnv("CLI_TEST_DEMO_ARGS"); ok {
		os.Exit(cli.Exit(os.Stderr, "demo", demo(strings.Fields(args))))
	}
	goleak.VerifyTestMain(m)
}

// demo is a program with one flag and at most maxArgs arguments.
func demo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), "Usage: demo [flags]\n"); fs.PrintDefaults() }
	addr := fs.String("addr", "127.0.0.1:8888", "address")
	n := fs.Int("n", 1, "how many, at least 1")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	if *n < 1 {
		return cli.Usagef(fs, "-n must be at least 1, not %d", *n)
	}
	if *addr == "fail" {
		return errors.New("could not do it")
	}
	return nil
}

func TestExit(t *testing.T) {
	tests := []struct {
		name       string
		give       []string
		wantStatus int
		wantMsg    string // printed exactly once, at the start
		wantUsage  bool
	}{
		{name: "ok", give: nil, wantStatus: 0},
		{name: "help", give: []string{"-h"}, wantStatus: 0, wantUsage: true},
		{name: "bad flag", give: []string{"-bogus"}, wantStatus: 2,
			wantMsg: "demo: flag provided but not defined: -bogus", wantUsage: true},
		{name: "bad value", give: []string{"-n", "x"}, wantStatus: 2,
			wantMsg: `demo: invalid value "x" for flag -n`, wantUsage: true},
		{name: "value out of range", give: []string{"-n", "0"}, wantStatus: 2,
			wantMsg: "demo: -n must be at least 1, not 0", wantUsage: true},
		{name: "stray argument", give: []string{"127.0.0.1:9"}, wantStatus: 2,
			wantMsg: `demo: unexpected argument "127.0.0.1:9": it takes no arguments; give the address with -addr`, wantUsage: true},
		{name: "failure", give: []string{"-addr", "fail"}, wantStatus: 1, wantMsg: "demo: could not do it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			assert.Equal(t, tt.wantStatus, cli.Exit(&stderr, "demo", demo(tt.give)))
			out := stderr.String()
			if tt.wantMsg != "" {
				assert.True(t, strings.HasPrefix(out, tt.wantMsg), "%q starts with the message", out)
				msg := strings.TrimPrefix(tt.wantMsg, "demo: ")
				assert.Equal(t, 1, strings.Count(out, msg), "%q holds the message once", out)
			}
			if tt.wantUsage {
				assert.Contains(t, out, "Usage: demo [flags]\n  -addr string")
			} else {
				assert.NotContains(t, out, "Usage:")
			}
		})
	}
}

// TestExitStatusOfAProcess runs the demo as a process: the status a shell
// sees, and what it printed.
func TestExitStatusOfAProcess(t *testing.T) {
	tests := []struct {
		give       string
		wantStatus int
	}{
		{give: "", wantStatus: 0},
		{give: "-bogus", wantStatus: 2},
		{give: "stray", wantStatus: 2},
		{give: "-addr fail", wantStatus: 1},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "CLI_TEST_DEMO_ARGS="+tt.give)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tt.wantStatus == 0 {
				require.NoError(t, err, "stderr: %s", stderr.String())
			} else {
				var ee *exec.ExitError
				require.ErrorAs(t, err, &ee)
				assert.Equal(t, tt.wantStatus, ee.ExitCode(), "stderr: %s", stderr.String())
				assert.Equal(t, 1, strings.Count(stderr.String(), "demo: "), "one message: %q", stderr.String())
			}
			assert.Empty(t, stdout.String())
		})
	}
}
