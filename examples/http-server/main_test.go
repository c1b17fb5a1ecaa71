package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/framed-go/framed/httpx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

func TestRoutes(t *testing.T) {
	srv := exampletest.StartServer(t, run, "-addr", "127.0.0.1:0")
	base := "http://" + srv.Addr
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	body, err := httpx.Get(ctx, base+"/")
	require.NoError(t, err)
	assert.Contains(t, string(body), "hello")

	_, err = httpx.Get(ctx, base+"/missing")
	var se *httpx.StatusError
	require.True(t, errors.As(err, &se), "GET /missing: %v", err)
	assert.Equal(t, http.StatusNotFound, se.StatusCode)

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Post(base+"/echo", "text/plain", strings.NewReader("ping"))
	require.NoError(t, err)
	var got bytes.Buffer
	got.ReadFrom(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ping", got.String())

	resp, err = client.Post(base+"/echo", "text/plain", bytes.NewReader(make([]byte, maxBody+1)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "http-server")
}
