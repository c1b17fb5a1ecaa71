package framedtest_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConformanceOfAVarintServer(t *testing.T) {
	f := framed.Format{Varint: true, MaxFrameSize: 300}
	srv := framedtest.NewFormatServer(f, nil)
	defer srv.Close()
	framedtest.Conformance(t, srv.Addr, framedtest.ConformanceOptions{Format: f, Skip: []string{"4.2"}})
}

func TestConformanceCasesAreNumberedAndExplained(t *testing.T) {
	seen := map[string]bool{}
	levels := map[framedtest.Level]int{}
	for _, c := range framedtest.ConformanceCases() {
		assert.Regexp(t, `^[1-9]\.[1-9]$`, c.ID)
		assert.False(t, seen[c.ID], "case %s is numbered once", c.ID)
		seen[c.ID] = true
		assert.NotEmpty(t, c.Title, c.ID)
		assert.NotEmpty(t, c.Reason, c.ID)
		levels[c.Level]++
	}
	assert.Positive(t, levels[framedtest.Required])
	assert.Positive(t, levels[framedtest.Recommended])
	assert.Len(t, levels, 2, "every case is required or recommended")
}

func TestSelectCases(t *testing.T) {
	ids := func(opts framedtest.ConformanceOptions) []string {
		cs, err := framedtest.SelectCases(opts)
		require.NoError(t, err)
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	assert.Equal(t, []string{"2.1", "2.2", "2.3", "4.1"}, ids(framedtest.ConformanceOptions{Only: []string{"2", "4.1"}}))
	assert.Equal(t, []string{"2.1", "2.3"}, ids(framedtest.ConformanceOptions{Only: []string{"2"}, Skip: []string{"2.2"}}))
	assert.Len(t, ids(framedtest.ConformanceOptions{}), len(framedtest.ConformanceCases()))
	for _, bad := range []string{"9", "2.9", "2.", ""} {
		_, err := framedtest.SelectCases(framedtest.ConformanceOptions{Skip: []string{bad}})
		assert.Error(t, err, "skip %q", bad)
	}
}

// rawEcho echoes bytes as they come, with no framing: it returns what a
// server must refuse.
func rawEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(c, c); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestRunConformanceReportsFailures(t *testing.T) {
	addr := rawEcho(t)
	var reported []string
	results, err := framedtest.RunConformance(t.Context(), addr,
		framedtest.ConformanceOptions{Only: []string{"1.2", "2.3", "3", "4.3"}, Timeout: 5 * time.Second},
		func(r framedtest.ConformanceResult) { reported = append(reported, r.ID) })
	require.NoError(t, err)
	want := map[string]framedtest.Status{
		"1.2": framedtest.Pass, "2.3": framedtest.Fail, "3.1": framedtest.Fail, "3.2": framedtest.Fail,
		"3.3": framedtest.Fail, "3.4": framedtest.Fail, "4.3": framedtest.Fail,
	}
	require.Len(t, results, len(want))
	for i, r := range results {
		assert.Equal(t, want[r.ID], r.Status, "case %s: %s", r.ID, r.Detail)
		assert.Equal(t, r.ID, reported[i], "reported as it ran")
		if r.Status == framedtest.Fail {
			assert.NotEmpty(t, r.Detail, r.ID)
		}
	}
	assert.Contains(t, results[2].Detail, "a reply whose header no conforming server sends", "3.1")
	assert.Contains(t, results[4].Detail, "part of a reply arrived", "3.3")
}

func TestRunConformanceSkipsWhatTheFormatCannotSay(t *testing.T) {
	f := framed.Format{HeaderSize: 2}
	srv := framedtest.NewFormatServer(f, nil)
	defer srv.Close()
	results, err := framedtest.RunConformance(t.Context(), srv.Addr,
		framedtest.ConformanceOptions{Format: f, Only: []string{"1.4", "3.1", "3.2"}}, nil)
	require.NoError(t, err)
	require.Len(t, results, 3)
	assert.Equal(t, framedtest.Pass, results[0].Status, "65535 fits; 65536 is left out")
	assert.Contains(t, results[0].Detail, "left out")
	assert.Equal(t, framedtest.Skip, results[1].Status, "a 2-byte header cannot say 65536")
	assert.Equal(t, framedtest.Skip, results[2].Status, "a 2-byte length is unsigned")
}

func TestRunConformanceRefusesABadFormat(t *testing.T) {
	_, err := framedtest.RunConformance(context.Background(), "127.0.0.1:1",
		framedtest.ConformanceOptions{Format: framed.Format{HeaderSize: 5}}, nil)
	assert.ErrorIs(t, err, framed.ErrInvalidFormat)
}

func TestRunConformanceRefusesLayouts(t *testing.T) {
	_, err := framedtest.RunConformance(context.Background(), "127.0.0.1:1",
		framedtest.ConformanceOptions{Format: framed.Format{LengthOffset: 4}}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LengthOffset 4")
}
