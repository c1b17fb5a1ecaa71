package main

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/cli"
	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

// routerServer serves the protocol of examples/router/server, with
// notFound as its Mux's NotFound (nil: end the connection).
func routerServer(t *testing.T, notFound framed.Handler) string {
	t.Helper()
	mux := &framed.Mux{Key: framed.Key{BigEndian: true}, NotFound: notFound}
	mux.HandleFunc(1, func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], []byte("pong"))
	})
	mux.HandleFunc(2, func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], bytes.ToUpper(frame[4:]))
	})
	mux.HandleFunc(3, func(_ context.Context, c *framed.Conn, frame []byte) error {
		data := slices.Clone(frame[4:])
		slices.Reverse(data)
		return c.WriteFrameParts(frame[:4], data)
	})
	srv := framedtest.NewFormatServer(zinx, mux)
	t.Cleanup(srv.Close)
	return srv.Addr
}

func TestPrintsEveryRoutesReply(t *testing.T) {
	addr := routerServer(t, nil)
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-addr", addr}, &out))
	assert.Equal(t, `msgID 1 "ping" -> msgID 1 "pong"
msgID 2 "hello, router" -> msgID 2 "HELLO, ROUTER"
msgID 3 "stressed" -> msgID 3 "desserts"
msgID 99 "anyone?" -> no reply: the server has no route for it and closed the connection
`, out.String())
}

func TestFailsWhenTheUnknownIDIsAnswered(t *testing.T) {
	addr := routerServer(t, framed.HandlerFunc(func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], []byte("?"))
	}))
	err := run(t.Context(), []string{"-addr", addr, "-timeout", "5s"}, &bytes.Buffer{})
	assert.ErrorIs(t, err, errAnswered)
}

func TestRejectsBadValues(t *testing.T) {
	var ue *cli.UsageError
	assert.ErrorAs(t, run(t.Context(), []string{"-timeout", "0s"}, &bytes.Buffer{}), &ue)
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "router-client")
}
