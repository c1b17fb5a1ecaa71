package framedtest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB that records failures instead of failing the
// test, so the failure path of a Script can be checked. Fatalf ends the
// goroutine, as testing's does.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	fatals []string
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// runRecorded runs s against addr with a recorder, on a goroutine of its
// own since Fatalf ends it, and returns the recorder once it is done.
func runRecorded(t *testing.T, s *framedtest.Script, addr string) *recorder {
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.RunAddr(rec, addr)
	}()
	<-done
	return rec
}

func TestScriptPassesAgainstEcho(t *testing.T) {
	srv := framedtest.NewServer(nil)
	defer srv.Close()
	s := framedtest.NewScript().
		Send([]byte("hello")).
		Expect([]byte("hello")).
		SendRaw([]byte{3, 0}, []byte{0, 0, 'a'}, []byte("bc")). // one frame, header split
		ExpectRaw([]byte{3, 0, 0, 0, 'a', 'b', 'c'}).
		Send(nil).
		Expect([]byte{}).
		Wait(time.Millisecond).
		CloseWrite().
		ExpectEOF()
	rec := runRecorded(t, s, srv.Addr)
	assert.Empty(t, rec.fatals)
	assert.Empty(t, rec.errors)
}

// TestScriptFailsOnMismatch runs scripts that must fail against an echo
// server, and checks each fails once, at the right step, saying why.
func TestScriptFailsOnMismatch(t *testing.T) {
	srv := framedtest.NewServer(nil)
	defer srv.Close()
	tests := []struct {
		name string
		give *framedtest.Script
		want []string
	}{
		{
			name: "frame differs",
			give: framedtest.NewScript().Send([]byte("hello")).Expect([]byte("help!")).Send([]byte("never")),
			want: []string{"step 1 (expect frame of 5 bytes)", "first difference at byte 3", "68 65 6c 6c 6f", "68 65 6c 70 21"},
		},
		{
			name: "frame longer than expected",
			give: framedtest.NewScript().Send([]byte("hello")).Expect([]byte("hell")),
			want: []string{"step 1", "got 5 bytes, want 4"},
		},
		{
			name: "raw bytes differ",
			give: framedtest.NewScript().Send([]byte{9}).ExpectRaw([]byte{1, 0, 0, 0, 8}),
			want: []string{"step 1 (expect 5 raw bytes)", "first difference at byte 4"},
		},
		{
			name: "bytes where EOF was expected",
			give: framedtest.NewScript().Send([]byte("x")).ExpectEOF(),
			want: []string{"step 1 (expect EOF)", "5 unexpected bytes"},
		},
		{
			name: "no close within the time",
			give: framedtest.NewScript().ExpectClosed(50 * time.Millisecond),
			want: []string{"step 0 (expect the connection closed within 50ms)", "did not end", "timeout"},
		},
		{
			name: "a frame that never comes",
			give: (&framedtest.Script{Timeout: 50 * time.Millisecond}).Send([]byte("a")).Expect([]byte("a")).Expect([]byte("b")),
			want: []string{"step 2 (expect frame of 1 bytes)", "timeout"},
		},
		{
			name: "the connection ends before the frame",
			give: framedtest.NewScript().SendRaw([]byte{0xff, 0xff, 0xff, 0xff}).Expect([]byte("a")),
			want: []string{"step 1", "read frame", "EOF"},
		},
		{
			name: "a frame too large to send",
			give: framedtest.NewFormatScript(framed.Format{HeaderSize: 1}).Send(make([]byte, 256)),
			want: []string{"step 0 (send frame of 256 bytes)", "exceeds limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := runRecorded(t, tt.give, srv.Addr)
			require.Len(t, rec.fatals, 1, "one failure, then the script stops")
			for _, w := range tt.want {
				assert.Contains(t, rec.fatals[0], w)
			}
		})
	}
}

func TestScriptExpectClosedAfterBadHeader(t *testing.T) {
	srv := framedtest.NewServer(nil)
	defer srv.Close()
	framedtest.NewScript().
		SendRaw([]byte{1, 0, 0, 0, 'k', 0xff, 0xff}, []byte{0xff, 0xff}).
		Expect([]byte("k")).
		ExpectClosed(5*time.Second).
		RunAddr(t, srv.Addr)
}

func TestScriptRunAddrDialFailure(t *testing.T) {
	srv := framedtest.NewServer(nil)
	addr := srv.Addr
	srv.Close()
	rec := runRecorded(t, framedtest.NewScript(), addr)
	require.Len(t, rec.fatals, 1)
	assert.Contains(t, rec.fatals[0], "dial")
}

func TestScriptOnMemoryConn(t *testing.T) {
	srv := framedtest.NewUnstartedServer(nil)
	srv.Listener = framedtest.NewListener(0)
	srv.Start()
	defer srv.Close()
	c, err := srv.DialConn(context.Background())
	require.NoError(t, err)
	defer c.Close()
	framedtest.NewScript().Send([]byte("m")).Expect([]byte("m")).CloseWrite().ExpectEOF().Run(t, c)
}

func TestHexDiff(t *testing.T) {
	assert.Equal(t, "no difference", framedtest.HexDiff([]byte("a"), []byte("a")))
	long := make([]byte, 1000)
	other := append([]byte(nil), long...)
	other[500] = 1
	d := framedtest.HexDiff(long, other)
	assert.Contains(t, d, "first difference at byte 500")
	assert.Contains(t, d, "bytes 464 to 560 of 1000")
	assert.Less(t, strings.Count(d, "\n"), 20, "only a window around the difference")
}
