package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rawFrames(t *testing.T, f framed.Format, msgs ...string) string {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		b, err = f.AppendFrame(b, []byte(m))
		require.NoError(t, err)
	}
	return string(b)
}

// TestEncodingsRoundTrip sends messages in each encoding to a framed echo
// Server: the server must receive the messages the input spells, and the
// output must spell the echoes the same way.
func TestEncodingsRoundTrip(t *testing.T) {
	want := []string{"hello", "", "\x00\xff\n"}
	tests := []struct {
		name       string
		args       []string
		give, want string
		frames     []string // what the server receives; default want
	}{
		{
			name: "text", args: []string{"-enc", "text"},
			give: "hello\n\r\nworld\r\nlast line",
			want: "hello\n\nworld\nlast line\n", frames: []string{"hello", "", "world", "last line"},
		},
		{
			name: "hex", args: []string{"-enc", "hex"},
			give: "68656c6c6f\n\n00 ff 0A\n",
			want: "68656c6c6f\n\n00ff0a\n",
		},
		{
			name: "base64", args: []string{"-enc", "base64"},
			give: "aGVsbG8=\n\nAP8K\n",
			want: "aGVsbG8=\n\nAP8K\n",
		},
		{
			name: "json", args: []string{"-enc", "json"},
			give: `{"len":5,"data":"aGVsbG8="}` + "\n\n" + `{"data":""}` + "\n" + `{"data":"AP8K"}`,
			want: `{"len":5,"data":"aGVsbG8="}` + "\n" + `{"len":0,"data":""}` + "\n" + `{"len":3,"data":"AP8K"}` + "\n",
		},
		{
			name: "raw", args: []string{"-enc", "raw"},
			give: rawFrames(t, framed.Format{}, want...),
			want: rawFrames(t, framed.Format{}, want...),
		},
		{
			name: "text in, hex out", args: []string{"-in", "text", "-out", "hex"},
			give: "hi\n", want: "6869\n", frames: []string{"hi"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			addr := serve(t, &framed.Server{Handler: rec})
			r := fc(t, tt.give, append(tt.args, addr)...)
			require.NoError(t, r.err, "stderr: %s", r.stderr)
			assert.Equal(t, tt.want, r.stdout)
			assert.Empty(t, r.stderr, "stderr without -v")
			frames := tt.frames
			if frames == nil {
				frames = want
			}
			var got []string
			for _, f := range rec.got() {
				got = append(got, string(f))
			}
			assert.Equal(t, frames, got, "frames the server received")
		})
	}
}

func TestBadInputIsAnErrorNamingTheLine(t *testing.T) {
	tests := []struct {
		args []string
		give string
		want string
	}{
		{args: []string{"-enc", "hex"}, give: "6869\nzz\n", want: "input line 2: hex:"},
		{args: []string{"-enc", "base64"}, give: "!!\n", want: "input line 1: base64:"},
		{args: []string{"-enc", "json"}, give: `{"len":3,"data":"aGk="}`, want: `input line 1: json: "len" is 3 but "data" holds 2 bytes`},
		{args: []string{"-enc", "json"}, give: `{"len":2}`, want: `input line 1: json: no "data"`},
		{args: []string{"-enc", "raw"}, give: "\x05\x00\x00\x00hi", want: "read input: unexpected EOF"},
	}
	for _, tt := range tests {
		addr := serve(t, &framed.Server{})
		r := fc(t, tt.give, append(tt.args, addr)...)
		require.Error(t, r.err, "input %q", tt.give)
		assert.Contains(t, r.err.Error(), tt.want, "input %q", tt.give)
		assert.Equal(t, 1, exitCode(r.err, io.Discard), "input %q", tt.give)
	}
}

func TestInputFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "in.txt")
	require.NoError(t, os.WriteFile(file, []byte("from\nfile\n"), 0o600))
	addr := serve(t, &framed.Server{})
	r := fc(t, "not this\n", "-f", file, addr)
	require.NoError(t, r.err)
	assert.Equal(t, "from\nfile\n", r.stdout)

	r = fc(t, "", "-f", filepath.Join(t.TempDir(), "missing"), addr)
	assert.ErrorIs(t, r.err, os.ErrNotExist)
}

// TestEveryFormat talks to a Server of each Format with the flags that
// describe it, including frames at the limit of a 1-byte header.
func TestEveryFormat(t *testing.T) {
	long := strings.Repeat("x", 255)
	tests := []struct {
		args []string
		f    framed.Format
	}{
		{args: nil, f: framed.Format{}},
		{args: []string{"-size", "1"}, f: framed.Format{HeaderSize: 1}},
		{args: []string{"-size", "2"}, f: framed.Format{HeaderSize: 2}},
		{args: []string{"-size", "2", "-be"}, f: framed.Format{HeaderSize: 2, BigEndian: true}},
		{args: []string{"-size", "4", "-be"}, f: framed.Format{HeaderSize: 4, BigEndian: true}},
		{args: []string{"-size", "8"}, f: framed.Format{HeaderSize: 8}},
		{args: []string{"-size", "8", "-be"}, f: framed.Format{HeaderSize: 8, BigEndian: true}},
		{args: []string{"-varint"}, f: framed.Format{Varint: true}},
		{args: []string{"-varint", "-max", "300"}, f: framed.Format{Varint: true, MaxFrameSize: 300}},
		{args: []string{"-size", "3", "-be", "-adjust", "0"}, f: framed.Format{HeaderSize: 3, BigEndian: true}},
		{args: []string{"-offset", "1", "-be"}, f: framed.Format{LengthOffset: 1, BigEndian: true}},
		{args: []string{"-adjust", "-4"}, f: framed.Format{LengthAdjust: -4}},
	}
	for _, tt := range tests {
		rec := &recorder{}
		addr := serve(t, &framed.Server{Handler: rec, Format: tt.f})
		in := "hello\n\n" + long + "\n"
		if tt.f.LengthOffset > 0 {
			in = "hello\nhi\n" + long + "\n" // no empty frame: the first byte goes before the length
		}
		r := fc(t, in, append(tt.args, addr)...)
		require.NoError(t, r.err, "flags %q", tt.args)
		assert.Equal(t, in, r.stdout, "flags %q", tt.args)
		assert.Len(t, rec.got(), 3, "frames received with flags %q", tt.args)
	}
}

// TestFormatBytesOnTheWire checks the exact bytes framecat sends for
// "hello" with each format flag, against a plain TCP listener.
func TestFormatBytesOnTheWire(t *testing.T) {
	tests := []struct {
		args []string
		want string // header in hex
	}{
		{args: nil, want: "05000000"},
		{args: []string{"-size", "1"}, want: "05"},
		{args: []string{"-size", "2", "-be"}, want: "0005"},
		{args: []string{"-size", "4", "-be"}, want: "00000005"},
		{args: []string{"-size", "8"}, want: "0500000000000000"},
		{args: []string{"-varint"}, want: "05"},
		{args: []string{"-size", "3"}, want: "050000"},
		{args: []string{"-adjust", "-4"}, want: "09000000"}, // a length that counts its own 4 bytes
	}
	for _, tt := range tests {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		got := make(chan []byte, 1)
		go func() {
			defer ln.Close()
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			b, _ := io.ReadAll(c) // framecat half-closes after its input
			got <- b
		}()
		r := fc(t, "hello\n", append(tt.args, ln.Addr().String())...)
		require.NoError(t, r.err, "flags %q", tt.args)
		assert.Equal(t, tt.want+"68656c6c6f", fmt.Sprintf("%x", <-got), "flags %q", tt.args)
	}
}

// TestFrameOverMax: a frame above -max, received or to be sent, is the
// library's typed error, worded for the shell, and exit status 1.
func TestFrameOverMax(t *testing.T) {
	big := framed.HandlerFunc(func(_ context.Context, c *framed.Conn, _ []byte) error {
		return c.WriteFrame(make([]byte, 17))
	})
	for _, mode := range []string{"connect", "req"} {
		addr := serve(t, &framed.Server{Handler: big})
		args := []string{"-max", "16", addr}
		if mode == "req" {
			args = []string{"-max", "16", "-req", addr}
		}
		r := fc(t, "x\n", args...)
		var tl *framed.FrameTooLargeError
		require.ErrorAs(t, r.err, &tl, "%s mode", mode)
		assert.Equal(t, framed.FrameTooLargeError{Size: 17, Limit: 16}, *tl, "%s mode", mode)
		assert.Contains(t, r.err.Error(), "frame too large: 17 > 16", "%s mode", mode)
		assert.Empty(t, r.stdout, "%s mode", mode)
		assert.Equal(t, 1, exitCode(r.err, io.Discard), "%s mode", mode)
	}

	// Sending: nothing goes out, and the error names the message.
	rec := &recorder{}
	addr := serve(t, &framed.Server{Handler: rec})
	r := fc(t, "short\n"+strings.Repeat("y", 17)+"\n", "-max", "16", addr)
	var tl *framed.FrameTooLargeError
	require.ErrorAs(t, r.err, &tl)
	assert.Equal(t, "send message 2: frame too large: 17 > 16 (-max)", r.err.Error())
	for _, f := range rec.got() {
		assert.LessOrEqual(t, len(f), 16, "the server got a frame over -max")
	}
}

// TestSilentServerHitsTimeout: a server that never answers nor closes
// ends framecat after -timeout, with exit status 1.
func TestSilentServerHitsTimeout(t *testing.T) {
	addr := silentServer(t)
	tests := []struct {
		args []string
		want string
	}{
		{args: []string{"-timeout", "200ms", "-req", addr}, want: "no reply from " + addr + " within 200ms (-timeout)"},
		{args: []string{"-timeout", "200ms", addr}, want: "no frame from " + addr + " within 200ms (-timeout)"},
	}
	for _, tt := range tests {
		start := time.Now()
		r := fc(t, "x\n", tt.args...)
		require.Error(t, r.err, "flags %q", tt.args)
		assert.Equal(t, tt.want, r.err.Error(), "flags %q", tt.args)
		assert.Equal(t, 1, exitCode(r.err, io.Discard))
		assert.Less(t, time.Since(start), 5*time.Second, "flags %q", tt.args)
	}
}

// TestProbesFindSilentServer: with -probe-idle, -req gives up on a server
// that stays silent after a probe, long before -timeout.
func TestProbesFindSilentServer(t *testing.T) {
	addr := silentServer(t)
	start := time.Now()
	r := fc(t, "x\n", "-timeout", "10s", "-probe-idle", "100ms", "-probe-timeout", "100ms", "-probe-frame", "ff 00", "-req", addr)
	require.ErrorIs(t, r.err, framed.ErrPeerSilent)
	assert.ErrorIs(t, r.err, framed.ErrOutcomeUnknown, "the request went out before the server fell silent")
	assert.Equal(t, "request to "+addr+": framed: request outcome unknown: framed: peer silent: no byte received within 100ms of a probe, after 100ms idle", r.err.Error())
	assert.Less(t, time.Since(start), 2*time.Second, "long before -timeout")
}

// TestListenAnswersProbes: framecat -l with -probe-idle answers a
// client's probe without printing it, and the client's requests are
// served.
func TestListenAnswersProbes(t *testing.T) {
	var stdout lockedBuffer
	addr, done, _ := listening(t, strings.NewReader(""), &stdout, "-l", "127.0.0.1:0", "-echo", "-n", "1", "-probe-idle", "1h", "-probe-frame", "5049", "-enc", "hex")
	framedtest.NewScript().Send([]byte("PI")).Expect([]byte("PI")).Send([]byte("hi")).Expect([]byte("hi")).RunAddr(t, addr)
	select {
	case err := <-done:
		require.NoError(t, err, "-n 1 ends listen mode cleanly")
	case <-time.After(5 * time.Second):
		t.Fatal("framecat -l -n 1 did not stop after 1 frame")
	}
	assert.Equal(t, "6869\n", stdout.String(), "the probe is not printed")
}

func TestRequestPrintsOneReply(t *testing.T) {
	rec := &recorder{}
	addr := serve(t, &framed.Server{Handler: rec})
	r := fc(t, "first\nsecond\n", "-req", addr)
	require.NoError(t, r.err)
	assert.Equal(t, "first\n", r.stdout)
	assert.Equal(t, [][]byte{[]byte("first")}, rec.got(), "only the first message is sent")

	r = fc(t, "", "-req", addr)
	assert.EqualError(t, r.err, "no message in the input to send")

	closer := framed.HandlerFunc(func(context.Context, *framed.Conn, []byte) error { return errors.New("no") })
	r = fc(t, "x\n", "-req", serve(t, &framed.Server{Handler: closer}))
	assert.ErrorContains(t, r.err, "closed the connection without a reply")
}

// TestStopAfterN: -n stops after N frames though more come, and is an
// error when the peer closes before N.
func TestStopAfterN(t *testing.T) {
	five := framed.HandlerFunc(func(_ context.Context, c *framed.Conn, frame []byte) error {
		for i := range 5 {
			if err := c.WriteFrame([]byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	})
	addr := serve(t, &framed.Server{Handler: five})
	r := fc(t, "x\n", "-n", "3", addr)
	require.NoError(t, r.err)
	assert.Equal(t, "0\n1\n2\n", r.stdout)

	r = fc(t, "x\n", "-n", "6", addr)
	assert.EqualError(t, r.err, addr+" closed the connection after 5 of 6 frames (-n)")
	assert.Equal(t, "0\n1\n2\n3\n4\n", r.stdout)
}

func TestVerboseLogsConnectionsAndSizes(t *testing.T) {
	addr := serve(t, &framed.Server{})
	r := fc(t, "hello\n", "-v", addr)
	require.NoError(t, r.err)
	assert.Equal(t, "hello\n", r.stdout, "stdout carries only data")
	assert.Contains(t, r.stderr, "framecat: connected to "+addr)
	assert.Contains(t, r.stderr, "framecat: sent 5 bytes")
	assert.Contains(t, r.stderr, "framecat: received 5 bytes")
}

func TestInterruptEndsConnectCleanly(t *testing.T) {
	addr := silentServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	defer pw.Close()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-v", addr}, pr, io.Discard, &stderr) }()
	_, err := pw.Write([]byte("hi\n"))
	require.NoError(t, err) // framecat has taken the message: it is connected
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "Ctrl-C is a clean end")
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return within 5 s of Ctrl-C")
	}
}

func TestListenEchoesToFramedClient(t *testing.T) {
	var stdout lockedBuffer
	addr, done, _ := listening(t, strings.NewReader(""), &stdout, "-l", "127.0.0.1:0", "-echo", "-n", "3", "-enc", "hex")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	client, err := framed.Dial(ctx, addr)
	require.NoError(t, err)
	defer client.Close()
	for _, msg := range []string{"a", "", "\x00\x01"} {
		reply, err := client.Request(ctx, []byte(msg))
		require.NoError(t, err, "request %q", msg)
		assert.Equal(t, msg, string(reply), "echo of %q", msg)
	}
	select {
	case err := <-done:
		require.NoError(t, err, "-n 3 ends listen mode cleanly")
	case <-ctx.Done():
		t.Fatal("framecat -l -n 3 did not stop after 3 frames")
	}
	assert.Equal(t, "61\n\n0001\n", stdout.String())
}

// TestListenAnswersWithInput: without -echo, every frame gets the next
// input message, and none once the input has ended.
func TestListenAnswersWithInput(t *testing.T) {
	var stdout lockedBuffer
	addr, done, _ := listening(t, strings.NewReader("one\ntwo\n"), &stdout, "-l", "127.0.0.1:0", "-n", "3")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	client, err := framed.Dial(ctx, addr)
	require.NoError(t, err)
	defer client.Close()
	for _, want := range []string{"one", "two"} {
		require.NoError(t, client.Send(t.Context(), []byte("q-"+want)))
		reply, err := client.Receive(t.Context())
		require.NoError(t, err)
		assert.Equal(t, want, string(reply))
	}
	require.NoError(t, client.Send(t.Context(), []byte("q-3")))
	_, err = client.Receive(t.Context())
	assert.ErrorIs(t, err, io.EOF, "no answer once the input ended; -n 3 then closes")
	require.NoError(t, <-done)
	assert.Equal(t, "q-one\nq-two\nq-3\n", stdout.String())
}

// TestListenPythonPeer answers testdata/peer.py, a peer that packs its
// lengths with Python's struct.pack('<i'): it sends a greeting, then
// echoes every frame it gets until framecat closes.
func TestListenPythonPeer(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: skipping the test against a Python peer")
	}
	var stdout lockedBuffer
	addr, done, stderr := listening(t, strings.NewReader("a\nbb\nccc\n"), &stdout, "-l", "127.0.0.1:0", "-n", "4")
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "../../testdata/peer.py", port).CombinedOutput()
	require.NoError(t, err, "the Python peer exits cleanly: %s", out)
	require.NoError(t, <-done, "stderr: %s", stderr)
	assert.Equal(t, "hello from python\na\nbb\nccc\n", stdout.String())
}

func TestTLS(t *testing.T) {
	certFile, keyFile, cert, pool := certFiles(t)
	addr := serve(t, &framed.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})

	r := fc(t, "secret\n", "-tls", "-cacert", certFile, addr)
	require.NoError(t, r.err, "stderr: %s", r.stderr)
	assert.Equal(t, "secret\n", r.stdout)

	r = fc(t, "secret\n", "-tls", "-cacert", certFile, "-req", addr)
	require.NoError(t, r.err)
	assert.Equal(t, "secret\n", r.stdout)

	r = fc(t, "secret\n", "-tls", "-cacert", certFile, "-servername", "framecat.test", addr)
	require.NoError(t, r.err, "the certificate names framecat.test")

	r = fc(t, "secret\n", "-tls", "-cacert", certFile, "-servername", "other.test", addr)
	assert.ErrorContains(t, r.err, "other.test", "a name the certificate lacks")

	r = fc(t, "secret\n", "-tls", addr)
	assert.ErrorContains(t, r.err, "certificate", "the system roots do not know the test CA")
	assert.Equal(t, 1, exitCode(r.err, io.Discard))

	r = fc(t, "secret\n", "-tls", "-insecure", addr)
	require.NoError(t, r.err)
	assert.Equal(t, "secret\n", r.stdout)
	assert.Contains(t, r.stderr, "warning: -insecure")

	// Listening with TLS, and requiring client certificates with -cacert.
	var stdout lockedBuffer
	laddr, done, _ := listening(t, strings.NewReader(""), &stdout,
		"-l", "127.0.0.1:0", "-echo", "-n", "1", "-tls", "-cert", certFile, "-key", keyFile, "-cacert", certFile)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	d := &framed.Dialer{TLSConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	client, err := d.Dial(ctx, laddr)
	require.NoError(t, err)
	defer client.Close()
	reply, err := client.Request(ctx, []byte("over tls"))
	require.NoError(t, err)
	assert.Equal(t, "over tls", string(reply))
	require.NoError(t, <-done)
	assert.Equal(t, "over tls\n", stdout.String())
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		give []string
		want string
	}{
		{give: nil, want: "need HOST:PORT, -req HOST:PORT or -l ADDR"},
		{give: []string{"a:1", "b:2"}, want: `unexpected argument "b:2"`},
		{give: []string{"-l", ":0", "a:1"}, want: `unexpected argument "a:1" with -l or -req`},
		{give: []string{"-l", ":0", "-req", "a:1"}, want: "-l and -req cannot be used together"},
		{give: []string{"-echo", "a:1"}, want: "-echo is for listen mode (-l)"},
		{give: []string{"-n", "-1", "a:1"}, want: "-n must not be negative"},
		{give: []string{"-n", "2", "-req", "a:1"}, want: "-req prints one reply; -n is for the other modes"},
		{give: []string{"-timeout", "-1s", "a:1"}, want: "-timeout must not be negative"},
		{give: []string{"-probe-idle", "-1s", "-l", ":0"}, want: "-probe-idle and -probe-timeout must not be negative"},
		{give: []string{"-probe-idle", "1s", "a:1"}, want: "-probe-idle is for -l and -req"},
		{give: []string{"-probe-frame", "00", "-req", "a:1"}, want: "-probe-timeout and -probe-frame need -probe-idle"},
		{give: []string{"-probe-idle", "1s", "-probe-frame", "zz", "-req", "a:1"}, want: "-probe-frame: encoding/hex"},
		{give: []string{"-enc", "yaml", "a:1"}, want: `unknown encoding "yaml"`},
		{give: []string{"-out", "bin", "a:1"}, want: `unknown encoding "bin"`},
		{give: []string{"-size", "5", "a:1"}, want: "framed: invalid Format: HeaderSize 5"},
		{give: []string{"-varint", "-size", "2", "a:1"}, want: "framed: invalid Format: Varint with HeaderSize 2"},
		{give: []string{"-max", "-1", "a:1"}, want: "framed: invalid Format: MaxFrameSize -1"},
		{give: []string{"-bogus", "a:1"}, want: "flag provided but not defined: -bogus"},
		{give: []string{"-cacert", "x", "a:1"}, want: "need -tls"},
		{give: []string{"-tls", "-cert", "x", "a:1"}, want: "-cert and -key go together"},
		{give: []string{"-tls", "-l", ":0"}, want: "-l with -tls needs -cert and -key"},
		{give: []string{"-tls", "-insecure", "-l", ":0", "-cert", "c", "-key", "k"}, want: "-insecure and -servername are for connecting"},
	}
	for _, tt := range tests {
		r := fc(t, "", tt.give...)
		var ue *usageError
		require.ErrorAs(t, r.err, &ue, "args %q", tt.give)
		assert.Contains(t, r.err.Error(), tt.want, "args %q", tt.give)
		assert.Empty(t, r.stderr, "run prints nothing itself for args %q", tt.give)
		var stderr bytes.Buffer
		assert.Equal(t, 2, exitCode(r.err, &stderr), "args %q", tt.give)
		assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line for args %q: %s", tt.give, &stderr)
	}
}

func TestFlagsAfterTheAddress(t *testing.T) {
	addr := serve(t, &framed.Server{})
	r := fc(t, "hi\n", addr, "-out", "hex")
	require.NoError(t, r.err)
	assert.Equal(t, "6869\n", r.stdout)
}

func TestHelp(t *testing.T) {
	r := fc(t, "", "-h")
	require.ErrorIs(t, r.err, flag.ErrHelp)
	assert.Equal(t, 0, exitCode(r.err, io.Discard))
	assert.Empty(t, r.stdout)
	for _, want := range []string{"framecat [flags] HOST:PORT", "-req HOST:PORT", "-l ADDR", "text", "hex", "base64", "json", "raw", "-size", "-varint", "-insecure", "Exit status"} {
		assert.Contains(t, r.stderr, want)
	}
}

// TestPeerClosingEarlyIsACleanEnd: a peer that answers once and closes
// while input remains ends framecat with status 0, as nc does, and the
// one reply printed.
func TestPeerClosingEarlyIsACleanEnd(t *testing.T) {
	once := framed.HandlerFunc(func(_ context.Context, c *framed.Conn, frame []byte) error {
		if err := c.WriteFrame(frame); err != nil {
			return err
		}
		return errors.New("one is enough")
	})
	addr := serve(t, &framed.Server{Handler: once})
	line := strings.Repeat("z", 1000) + "\n"
	r := fc(t, strings.Repeat(line, 500), addr)
	require.NoError(t, r.err)
	assert.Equal(t, line, r.stdout)
}
