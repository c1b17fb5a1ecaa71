package framed

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProbeTimedFromTheSocket: a probe queued behind a frame the peer has
// not taken yet is not reported written, so its timeout has not started;
// it is reported once the network has taken its last byte.
func TestProbeTimedFromTheSocket(t *testing.T) {
	a, b := net.Pipe() // a write returns only once the peer has read it all
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	c := NewConn(a, ConnConfig{})
	t.Cleanup(func() { c.Close() })
	big := make([]byte, 4096)
	require.NoError(t, c.WriteFrame(big))
	written := make(chan struct{}, 1)
	require.NoError(t, c.q.sendProbe(nil, written))
	select {
	case <-written:
		t.Fatal("the probe was reported written while the frame before it was not taken")
	default:
	}

	rd := NewReader(b, Format{})
	got, err := rd.ReadFrame()
	require.NoError(t, err)
	assert.Len(t, got, len(big), "the frame before the probe")
	got, err = rd.ReadFrame()
	require.NoError(t, err)
	assert.Empty(t, got, "the probe, a zero-length frame")
	select {
	case <-written:
	case <-time.After(20 * time.Second):
		t.Fatal("the probe was never reported written")
	}

	// A failed queue admits no probe, and says why.
	require.NoError(t, c.Close())
	assert.True(t, errors.Is(c.q.sendProbe(nil, written), net.ErrClosed), "a probe after Close")
}

// TestProbeIs: only a frame equal to the probe frame is a probe; a nil
// Frame makes the empty frame the probe.
func TestProbeIs(t *testing.T) {
	tests := []struct {
		frame, give []byte
		want        bool
	}{
		{nil, nil, true},
		{nil, []byte{}, true},
		{nil, []byte{0}, false},
		{[]byte("PING"), []byte("PING"), true},
		{[]byte("PING"), []byte("PINGS"), false},
		{[]byte("PING"), nil, false},
	}
	for _, tt := range tests {
		p := &prober{cfg: Probes{Idle: 1, Frame: tt.frame}}
		assert.Equal(t, tt.want, p.is(tt.give), "Frame %q, frame %q", tt.frame, tt.give)
	}
}
