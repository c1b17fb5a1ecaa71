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

func TestShowsMergeAndFix(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), nil, &out))
	s := out.String()
	// Plain TCP: the server read fewer chunks than the 20 messages sent.
	assert.Regexp(t, `20 messages sent, ([1-9]|1[0-9]) read\(s\) received`, s)
	assert.Contains(t, s, "20 messages sent, 20 messages received, 20 intact and in order.")
}

func TestMessageCountFlag(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-n", "3"}, &out))
	assert.Contains(t, out.String(), "3 messages sent, 3 messages received, 3 intact and in order.")
	assert.Error(t, run(t.Context(), []string{"-n", "0"}, &out))
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "sticky-packets")
}
