package framedtest_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests below are the ones README.md shows under "Testing your
// service", so that they compile and pass as shown.
// TestREADMEShowsTheseTests keeps the two in step.

func TestUpper(t *testing.T) {
	srv := framedtest.NewServer(framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrame(bytes.ToUpper(frame))
	}))
	defer srv.Close() // closes every connection and waits for the handlers
	client, err := srv.Dial(t.Context())
	require.NoError(t, err)
	defer client.Close()
	reply, err := client.Request(t.Context(), []byte("hello"))
	require.NoError(t, err)
	assert.Equal(t, "HELLO", string(reply))
}

func TestBadHeaderClosesAfterReplies(t *testing.T) {
	srv := framedtest.NewServer(nil) // nil: echo
	defer srv.Close()
	framedtest.NewScript().
		Send([]byte("ping")).
		Expect([]byte("ping")).
		SendRaw([]byte{2, 0}, []byte{0, 0, 'o'}, []byte{'k'}). // one frame in three writes
		Expect([]byte("ok")).
		SendRaw([]byte{0xff, 0xff, 0xff, 0xff}). // a negative length
		ExpectClosed(time.Second).
		RunAddr(t, srv.Addr)
}

func TestOneBytePerRead(t *testing.T) {
	srv := framedtest.NewServer(nil)
	defer srv.Close()
	proxy := framedtest.NewProxy(srv.Addr)
	defer proxy.Close()
	proxy.Up.Slice(1)         // the server gets every request one byte at a time
	proxy.Down.SliceRandom(3) // and its replies come back in pieces of 1 to 3 bytes
	client, err := proxy.Dial(t.Context())
	require.NoError(t, err)
	defer client.Close()
	reply, err := client.Request(t.Context(), []byte("whole"))
	require.NoError(t, err)
	assert.Equal(t, "whole", string(reply))
}

func TestEchoConforms(t *testing.T) {
	srv := framedtest.NewFormatServer(framed.Format{MaxFrameSize: 64 << 10}, framed.EchoHandler{})
	defer srv.Close()
	framedtest.Conformance(t, srv.Addr, framedtest.ConformanceOptions{Format: srv.Config.Format})
}

// TestREADMEShowsTheseTests checks every Go snippet of README's "Testing
// your service" section is in this file word for word.
func TestREADMEShowsTheseTests(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	self, err := os.ReadFile("readme_test.go")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n## Testing your service\n")
	require.True(t, ok, "README has the section")
	section, _, _ = strings.Cut(section, "\n## ")
	snippets := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(section, -1)
	require.Len(t, snippets, 4)
	for _, m := range snippets {
		assert.Contains(t, string(self), m[1])
	}
}
