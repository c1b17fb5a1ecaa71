package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/framed-go/framed/examples/internal/cli"
	"github.com/framed-go/framed/examples/internal/exampletest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	exampletest.RunMainIfAsked(main)
	goleak.VerifyTestMain(m)
}

func TestPrintsBody(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer ts.Close()

	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{ts.URL}, &out))
	assert.Equal(t, "hello", out.String())

	err := run(t.Context(), []string{ts.URL + "/missing"}, &out)
	assert.ErrorContains(t, err, "404")
}

func TestNeedsOneURL(t *testing.T) {
	var out, stderr bytes.Buffer
	err := run(t.Context(), nil, &out)
	assert.Equal(t, 2, cli.Exit(&stderr, "http-client", err), "a missing URL is a usage error")
	assert.True(t, strings.HasPrefix(stderr.String(), "http-client: need a URL\nhttp-client fetches"), stderr.String())
}

func TestUsageErrors(t *testing.T) {
	exampletest.CheckUsageErrors(t, "http-client", "http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
}
