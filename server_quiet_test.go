package framed_test

import (
	"context"
	"io"
	"log"
	"os"
	"testing"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServerPrintsNothingWithoutLogger checks the promise that the library
// prints nothing unless given a logger: not on a handler panic, a hostile
// header, or shutdown, to standard output, standard error or the log
// package.
func TestServerPrintsNothingWithoutLogger(t *testing.T) {
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	printed := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(pr)
		printed <- b
	}()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = pw, pw
	log.SetOutput(pw)
	restore := func() {
		os.Stdout, os.Stderr = stdout, stderr
		log.SetOutput(os.Stderr)
	}
	defer restore()

	s := &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if string(p) == "panic" {
			panic("handler bug")
		}
		return c.WriteFrame(p)
	})}
	r := serve(t, s)
	good := dial(t, r.addr)
	roundTrip(t, good, []byte("hello"))
	bad := dial(t, r.addr)
	require.NoError(t, bad.WriteFrame([]byte("panic")))
	_, err = bad.ReadFrame()
	assert.Error(t, err, "the panicking handler's connection is closed")
	dialRaw(t, r.addr).Write(rawHeader(-1))
	waitFor(t, testTimeout, "both bad connections to close", func() bool {
		st := s.Stats()
		return st.PanicsRecovered == 1 && st.InvalidLength == 1
	})
	require.NoError(t, s.Shutdown(context.Background()))

	restore()
	pw.Close()
	assert.Empty(t, string(<-printed), "output without a Logger")
}
