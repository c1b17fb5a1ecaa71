package main

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
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

// lineEcho serves one connection, echoing bytes, until it ends.
func lineEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func TestSendsLinesUntilQ(t *testing.T) {
	addr := lineEcho(t)
	var out bytes.Buffer
	err := run(t.Context(), []string{"-addr", addr}, strings.NewReader("hello\nworld\nQ\nnot sent\n"), &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "echo: hello\necho: world\nbye\n")
	assert.NotContains(t, out.String(), "not sent")
}

func TestEndOfInputQuits(t *testing.T) {
	addr := lineEcho(t)
	var out bytes.Buffer
	err := run(t.Context(), []string{"-addr", addr}, strings.NewReader("one"), &out)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "echo: one\nbye\n")
}

func TestDialErrorIsReturned(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	err = run(t.Context(), []string{"-addr", addr}, strings.NewReader(""), io.Discard)
	assert.Error(t, err)
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "tcp-echo-client")
}
