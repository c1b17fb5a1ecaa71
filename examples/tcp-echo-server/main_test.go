package main

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

func TestEchoesLines(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0")

	c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))

	// Two lines in one write come back as two lines.
	_, err = c.Write([]byte("hello\nworld\n"))
	require.NoError(t, err)
	r := bufio.NewReader(c)
	for _, want := range []string{"hello\n", "world\n"} {
		got, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
}

func TestStopsWithOpenConnection(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0")
	c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	// The cleanup cancels the server's ctx with this connection idle: run
	// must close it and return nil.
}

func TestRejectsBadFlag(t *testing.T) {
	err := run(t.Context(), []string{"-nope"}, nil)
	assert.Error(t, err)
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "tcp-echo-server")
}
