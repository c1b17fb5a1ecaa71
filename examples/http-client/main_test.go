package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
	var out bytes.Buffer
	assert.Error(t, run(t.Context(), nil, &out))
}
