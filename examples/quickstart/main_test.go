package main

import (
	"bytes"
	"testing"

	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

func TestShowsTheLibrary(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), nil, &out))
	s := out.String()
	for _, want := range []string{
		`client: sent "hello, framed", got "HELLO, FRAMED"`,
		"8 goroutines sent 200 requests on one connection; every reply matched its request",
		"a 2 KiB message is refused before sending",
		"closed a connection whose header claimed 1 GiB",
		`client: sent "still here?", got "STILL HERE?"`,
		"server: shut down after 2 connections, 202 frames in, 202 frames out, 1 refused as too large",
	} {
		assert.Contains(t, s, want)
	}
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "quickstart")
}
