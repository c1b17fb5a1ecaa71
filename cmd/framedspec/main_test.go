package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// framedspec runs the command and returns its exit code and stdout.
func framedspec(t *testing.T, args ...string) (int, string) {
	t.Helper()
	code, stdout, _ := framedspecStderr(t, args...)
	return code, stdout
}

// framedspecStderr runs the command and returns its exit code, stdout and
// stderr, as main would leave them.
func framedspecStderr(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = exitCode(run(context.Background(), args, &out, &errOut), &errOut)
	t.Logf("framedspec %q: exit %d\n%s%s", args, code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

var failLine = regexp.MustCompile(`(?m)^FAIL (\S+) `)

func failed(out string) []string {
	ids := []string{}
	for _, m := range failLine.FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// echoServer is a framed echo server as examples/framed-echo-server
// configures one.
func echoServer(t *testing.T, f framed.Format) string {
	t.Helper()
	srv := framedtest.NewFormatServer(f, framed.EchoHandler{})
	t.Cleanup(srv.Close)
	return srv.Addr
}

func TestFramedEchoServerPassesEveryCase(t *testing.T) {
	t.Parallel()
	code, out := framedspec(t, echoServer(t, framed.Format{}))
	assert.Equal(t, 0, code)
	assert.Empty(t, failed(out))
	assert.Regexp(t, `(?m)^PASS 2\.3 a frame sent one byte per write is echoed once, whole$`, out)
	assert.Contains(t, out, "18 cases in")
	assert.Contains(t, out, ": 18 passed, 0 failed (0 required, 0 recommended), 0 skipped")
}

func TestEveryFormatPasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give     []string
		format   framed.Format
		skipped  int
		describe string
	}{
		{give: []string{"-size", "1"}, format: framed.Format{HeaderSize: 1}, skipped: 5, describe: "1-byte little-endian length, limit 255 bytes"},
		{give: []string{"-size", "2", "-be"}, format: framed.Format{HeaderSize: 2, BigEndian: true}, skipped: 4, describe: "2-byte big-endian length, limit 65535 bytes"},
		{give: []string{"-be", "-max", "70000"}, format: framed.Format{BigEndian: true, MaxFrameSize: 70000}, describe: "4-byte big-endian length, limit 70000 bytes"},
		{give: []string{"-size", "8", "-max", "70000"}, format: framed.Format{HeaderSize: 8, MaxFrameSize: 70000}, describe: "8-byte little-endian length"},
		{give: []string{"-varint", "-max", "1000"}, format: framed.Format{Varint: true, MaxFrameSize: 1000}, skipped: 1, describe: "varint length, limit 1000 bytes"},
		{give: []string{"-offset", "4", "-be"}, format: framed.Format{LengthOffset: 4, BigEndian: true},
			describe: "4-byte big-endian length after 4 header bytes, limit 4194304 bytes"}, // zinx's
		{give: []string{"-adjust", "4", "-max", "70004"}, format: framed.Format{LengthAdjust: 4, MaxFrameSize: 70004},
			describe: "4-byte little-endian length, adjusted by +4, limit 70004 bytes"},
		{give: []string{"-size", "3", "-be", "-adjust", "6", "-max", "16390"}, format: framed.Format{HeaderSize: 3, BigEndian: true, LengthAdjust: 6, MaxFrameSize: 16390},
			skipped: 2, describe: "3-byte big-endian length, adjusted by +6, limit 16390 bytes"},
		{give: []string{"-offset", "2", "-size", "2", "-be", "-adjust", "-2"}, format: framed.Format{LengthOffset: 2, HeaderSize: 2, BigEndian: true, LengthAdjust: -2},
			skipped: 3, describe: "2-byte big-endian length after 2 header bytes, adjusted by -2, limit 65535 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.describe, func(t *testing.T) {
			t.Parallel()
			code, out := framedspec(t, append(tt.give, "-skip", "4.2", echoServer(t, tt.format))...)
			assert.Equal(t, 0, code, "flags %q", tt.give)
			assert.Empty(t, failed(out), "flags %q", tt.give)
			assert.Contains(t, out, tt.describe, "flags %q", tt.give)
			assert.Contains(t, out, ", "+strconv.Itoa(tt.skipped)+" skipped", "flags %q", tt.give)
		})
	}
}

func TestBrokenServersFailTheRightCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		serve  func(net.Conn)
		serial bool
		want   []string
	}{
		{name: "answers each read", serve: echoEachRead,
			want: []string{"1.4", "1.5", "2.1", "2.2", "2.3", "3.1", "3.2", "3.3", "3.4", "4.1", "4.3", "5.1", "5.3"}},
		{name: "echoes raw bytes", serve: echoRaw,
			want: []string{"2.3", "3.1", "3.2", "3.3", "3.4", "4.3"}},
		{name: "no size limit", serve: echoNoLimit,
			want: []string{"3.1", "3.2", "3.4", "4.3"}},
		{name: "one connection at a time", serve: echoFramed, serial: true,
			want: []string{"4.3", "5.1", "5.2"}}, // and it closes with unread input: a reset
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := startBroken(t, tt.serve, tt.serial)
			code, out := framedspec(t, "-timeout", "6s", addr)
			assert.Equal(t, 1, code, "a required case fails")
			assert.Equal(t, tt.want, failed(out))
			assert.Contains(t, out, "failed: ")
		})
	}
}

func TestOnlySkipAndJSON(t *testing.T) {
	addr := echoServer(t, framed.Format{})
	path := filepath.Join(t.TempDir(), "results.json")
	code, out := framedspec(t, "-only", "1,2.3,5", "-skip", "1.5,5.3", "-json", path, addr)
	require.Equal(t, 0, code)
	assert.Equal(t, 7, len(regexp.MustCompile(`(?m)^PASS `).FindAllString(out, -1)), "1.1-1.4, 2.3, 5.1, 5.2")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var rep struct {
		Addr    string
		Passed  bool
		Results []struct{ ID, Level, Status, Reason string }
	}
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.True(t, rep.Passed)
	assert.Equal(t, addr, rep.Addr)
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.ID)
		assert.Equal(t, "PASS", r.Status, r.ID)
		assert.Equal(t, "required", r.Level, r.ID)
		assert.NotEmpty(t, r.Reason, r.ID)
	}
	assert.Equal(t, []string{"1.1", "1.2", "1.3", "1.4", "2.3", "5.1", "5.2"}, got)
}

func TestJSONToStdoutFailing(t *testing.T) {
	addr := startBroken(t, echoRaw, false)
	code, out := framedspec(t, "-json", "-", "-only", "2.3,4.3", addr)
	assert.Equal(t, 1, code)
	var rep struct {
		Passed  bool
		Results []struct{ ID, Level, Status, Detail string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "stdout is JSON alone")
	assert.False(t, rep.Passed)
	require.Len(t, rep.Results, 2)
	assert.Equal(t, "FAIL", rep.Results[0].Status)
	assert.Contains(t, rep.Results[0].Detail, "came back before the frame's last byte")
	assert.Equal(t, "recommended", rep.Results[1].Level)
}

func TestRecommendedFailureExitsZero(t *testing.T) {
	addr := startBroken(t, echoNoLimit, false)
	code, out := framedspec(t, "-timeout", "500ms", "-only", "1.1,3.4", addr)
	assert.Equal(t, 0, code)
	assert.Equal(t, []string{"3.4"}, failed(out))
	assert.Contains(t, out, "FAIL 3.4 the header of a frame of limit+1, alone, ends the connection (recommended)")
	assert.Contains(t, out, "1 failed (0 required, 1 recommended)")
}

func TestUsageAndUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	ln.Close()
	tests := []struct {
		give []string
		want int
	}{
		{give: nil, want: 2},
		{give: []string{"-size", "5", "127.0.0.1:1"}, want: 2},
		{give: []string{"-only", "9.9", "127.0.0.1:1"}, want: 2},
		{give: []string{"-timeout", "0s", "127.0.0.1:1"}, want: 2},
		{give: []string{"-nope"}, want: 2},
		{give: []string{"127.0.0.1"}, want: 2},
		{give: []string{"127.0.0.1:"}, want: 2},
		{give: []string{"127.0.0.1:port"}, want: 2},
		{give: []string{"127.0.0.1:0"}, want: 2},
		{give: []string{"127.0.0.1:65536"}, want: 2},
		{give: []string{"[::1"}, want: 2},
		{give: []string{"a:b:c"}, want: 2},
		{give: []string{"127.0.0.1:1", "127.0.0.1:2"}, want: 2},
		{give: []string{closed}, want: 1},
		{give: []string{"-h"}, want: 0},
	}
	for _, tt := range tests {
		code, _ := framedspec(t, tt.give...)
		assert.Equal(t, tt.want, code, "args %q", tt.give)
	}
}

func TestListNamesEveryCaseWithItsLevel(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-list"}, &out, io.Discard))
	for _, c := range framedtest.ConformanceCases() {
		assert.Contains(t, out.String(), c.ID+" "+c.Title+"\n    "+c.Level.String()+": "+c.Reason)
	}
}

// TestUsageErrorsPrintOnce: a usage error is one line on stderr, naming
// the mistake and pointing at -h, not Go's message, the whole usage and a
// line of its own; -h prints the usage once.
func TestUsageErrorsPrintOnce(t *testing.T) {
	tests := []struct {
		give []string
		want string
	}{
		{give: []string{"-nope", "127.0.0.1:1"}, want: "flag provided but not defined: -nope"},
		{give: []string{"-size", "x", "127.0.0.1:1"}, want: `invalid value "x" for flag -size`},
		{give: []string{"-size", "5", "127.0.0.1:1"}, want: "HeaderSize 5"},
		{give: nil, want: "want one HOST:PORT"},
		{give: []string{"localhost"}, want: `address "localhost": want HOST:PORT`},
		{give: []string{"localhost:x1"}, want: `port "x1" is not a port number`},
	}
	for _, tt := range tests {
		code, stdout, stderr := framedspecStderr(t, tt.give...)
		assert.Equal(t, 2, code, "args %q", tt.give)
		assert.Empty(t, stdout, "args %q", tt.give)
		assert.Equal(t, 1, strings.Count(stderr, "\n"), "args %q: one line, not %q", tt.give, stderr)
		assert.True(t, strings.HasPrefix(stderr, "framedspec: "), "args %q: %q", tt.give, stderr)
		assert.Contains(t, stderr, tt.want, "args %q", tt.give)
		assert.Contains(t, stderr, "(framedspec -h for help)", "args %q", tt.give)
		assert.NotContains(t, stderr, "Usage", "args %q", tt.give)
	}

	code, stdout, stderr := framedspecStderr(t, "-h")
	assert.Equal(t, 0, code)
	assert.Empty(t, stdout)
	assert.Equal(t, 1, strings.Count(stderr, "Usage: framedspec"), "the usage once: %q", stderr)
	assert.Contains(t, stderr, "-offset")
}
