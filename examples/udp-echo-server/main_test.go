package main

import (
	"context"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

func TestEchoesDatagrams(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0")
	for _, give := range []string{"", "hello", string(make([]byte, 1400))} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		got, err := framed.ExchangeUDP(ctx, srv.Addr, []byte(give))
		cancel()
		require.NoError(t, err, "datagram of %d bytes", len(give))
		assert.Equal(t, give, string(got), "datagram of %d bytes", len(give))
	}
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "udp-echo-server")
}
