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

// layouts are the Formats of other protocols' layouts, with header fields
// before the length, after it, or a length that counts itself, each with a
// limit that keeps the cases quick.
var layouts = []struct {
	name string
	f    framed.Format
}{
	{"zinx", framed.Format{LengthOffset: 4, BigEndian: true, MaxFrameSize: 70004}},
	{"easytcp", framed.Format{LengthAdjust: 4, MaxFrameSize: 70004}},
	{"gRPC", framed.Format{LengthOffset: 1, BigEndian: true, MaxFrameSize: 70001}},
	{"HTTP/2", framed.Format{HeaderSize: 3, BigEndian: true, LengthAdjust: 6, MaxFrameSize: 16384 + 6}},
	{"MySQL", framed.Format{HeaderSize: 3, LengthAdjust: 1, MaxFrameSize: 70001}},
	{"TLS", framed.Format{LengthOffset: 3, HeaderSize: 2, BigEndian: true}},
	{"length counts itself", framed.Format{BigEndian: true, LengthAdjust: -4, MaxFrameSize: 70000}},
	{"1-byte length counts itself", framed.Format{HeaderSize: 1, LengthAdjust: -1}},
	{"Netty (2, 3, -5)", framed.Format{LengthOffset: 2, HeaderSize: 3, BigEndian: true, LengthAdjust: -5, MaxFrameSize: 70002}},
	{"varint after a byte", framed.Format{Varint: true, LengthOffset: 1, MaxFrameSize: 1000}},
}

// TestConformanceOfEveryLayout: framed's echo server passes every case in
// every layout, header fields echoed included.
func TestConformanceOfEveryLayout(t *testing.T) {
	for _, tt := range layouts {
		t.Run(tt.name, func(t *testing.T) {
			srv := framedtest.NewFormatServer(tt.f, nil)
			defer srv.Close()
			framedtest.Conformance(t, srv.Addr, framedtest.ConformanceOptions{Format: tt.f, Skip: []string{"4.2"}})
		})
	}
}

// TestConformanceChecksTheHeaderFields: a server that echoes the payload
// but not the header fields it got fails, and the case says so.
func TestConformanceChecksTheHeaderFields(t *testing.T) {
	zinx := framed.Format{LengthOffset: 4, BigEndian: true}
	srv := framedtest.NewFormatServer(zinx, framed.HandlerFunc(func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts([]byte{0, 0, 0, 1}, frame[4:]) // always msgID 1
	}))
	defer srv.Close()
	results, err := framedtest.RunConformance(t.Context(), srv.Addr, framedtest.ConformanceOptions{Format: zinx, Only: []string{"1.2", "2.1"}}, nil)
	require.NoError(t, err)
	require.Len(t, results, 2)
	for _, r := range results {
		assert.Equal(t, framedtest.Fail, r.Status, r.ID)
		assert.Contains(t, r.Detail, "header fields are not those of the frame sent", r.ID)
	}
}

// TestConformanceOfLayoutsSkipsWhatTheyCannotSay: a length that
// LengthAdjust makes negative is an invalid header in any width, so 3.2
// runs for an unsigned 2-byte length that counts itself, and is skipped
// for a plain one.
func TestConformanceOfLayoutsSkipsWhatTheyCannotSay(t *testing.T) {
	tests := []struct {
		f    framed.Format
		want framedtest.Status
	}{
		{f: framed.Format{HeaderSize: 2, LengthAdjust: -2}, want: framedtest.Pass},
		{f: framed.Format{HeaderSize: 2, LengthOffset: 1}, want: framedtest.Skip},
	}
	for _, tt := range tests {
		srv := framedtest.NewFormatServer(tt.f, nil)
		results, err := framedtest.RunConformance(t.Context(), srv.Addr, framedtest.ConformanceOptions{Format: tt.f, Only: []string{"3.2"}}, nil)
		srv.Close()
		require.NoError(t, err, "%+v", tt.f)
		require.Len(t, results, 1)
		assert.Equal(t, tt.want, results[0].Status, "%+v: %s", tt.f, results[0].Detail)
	}
}
