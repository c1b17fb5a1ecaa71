package framed_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
)

// TestServerBadHeaderAfterPipelinedFrames: a peer pipelines 5,000 valid
// frames and then a header the server refuses, and reads only once the
// server has given up on it. Every reply must arrive, then EOF: the close
// must not reset the replies away.
func TestServerBadHeaderAfterPipelinedFrames(t *testing.T) {
	const frames = 5000
	tests := []struct {
		name   string
		header []byte
		count  func(framed.ServerStats) int64
	}{
		{"too large", rawHeader(framed.DefaultMaxFrameSize + 1), func(st framed.ServerStats) int64 { return st.FramesTooLarge }},
		{"negative", rawHeader(-1), func(st framed.ServerStats) int64 { return st.InvalidLength }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &framed.Server{}
			r := serve(t, s)
			nc := dialRaw(t, r.addr)
			var stream []byte
			for i := range frames {
				msg := binary.LittleEndian.AppendUint32(nil, uint32(i))
				var err error
				stream, err = framed.AppendFrame(stream, msg)
				require.NoError(t, err)
			}
			stream = append(stream, tt.header...)
			stream = append(stream, make([]byte, 1000)...) // more that nobody reads
			_, err := nc.Write(stream)
			require.NoError(t, err)

			// Read nothing until the server has closed the connection.
			waitFor(t, testTimeout, "the refused header to be counted", func() bool { return tt.count(s.Stats()) == 1 })
			c := framed.NewConn(nc, framed.ConnConfig{})
			for i := range frames {
				p, err := c.ReadFrame()
				require.NoError(t, err, "reply %d of %d", i, frames)
				require.Equal(t, uint32(i), binary.LittleEndian.Uint32(p), "reply %d", i)
			}
			_, err = c.ReadFrame()
			assert.Equal(t, io.EOF, err, "after the last reply")
			st := s.Stats()
			assert.EqualValues(t, frames, st.FramesOut, "FramesOut")
			assert.EqualValues(t, 1, tt.count(st), "counted")
			// The peer neither closed nor stopped reading from its end
			// during the half second the server lingered.
			assert.EqualValues(t, 1, st.LingerTimeouts, "LingerTimeouts")
		})
	}
}

// TestServerCloseFromHandler: a handler that calls Close makes Close stop
// everything else and return; its own connection ends when it returns.
func TestServerCloseFromHandler(t *testing.T) {
	closed := make(chan error, 1)
	var s *framed.Server
	s = &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if string(p) == "close" {
			closed <- s.Close()
			return nil
		}
		return c.WriteFrame(p)
	})}
	r := serve(t, s)
	other := dial(t, r.addr)
	roundTrip(t, other, []byte("hello"))
	c := dial(t, r.addr)
	require.NoError(t, c.WriteFrame([]byte("close")))
	require.NoError(t, c.Flush())
	assert.NoError(t, wait(t, closed, "Close called from a handler to return"))
	assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
	_, err := other.ReadFrame()
	assert.Error(t, err, "the other connection is closed")
	waitFor(t, testTimeout, "the handler's own connection to end", func() bool { return s.Stats().Active == 0 })
}

// TestServerShutdownFromHandler: a handler that calls Shutdown waits for
// every other connection, and its own connection drains after it returns:
// its reply arrives, then EOF.
func TestServerShutdownFromHandler(t *testing.T) {
	done := make(chan error, 1)
	var s *framed.Server
	s = &framed.Server{Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
		if err := c.WriteFrame(p); err != nil {
			return err
		}
		if string(p) == "shutdown" {
			sctx, cancel := context.WithTimeout(ctx, testTimeout)
			defer cancel()
			done <- s.Shutdown(sctx)
		}
		return nil
	})}
	r := serve(t, s)
	idle := dial(t, r.addr)
	roundTrip(t, idle, []byte("hello"))
	c := dial(t, r.addr)
	require.NoError(t, c.WriteFrame([]byte("shutdown")))
	require.NoError(t, wait(t, done, "Shutdown called from a handler to return"))
	got, err := c.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "shutdown", string(got))
	_, err = c.ReadFrame()
	assert.Equal(t, io.EOF, err, "the handler's connection ends after its reply")
	_, err = idle.ReadFrame()
	assert.Equal(t, io.EOF, err, "the idle connection was stopped")
	assert.ErrorIs(t, r.serveErr(), framed.ErrServerClosed)
}

// TestServerShutdownStalledMidFrame: a peer stalled inside a frame keeps
// Shutdown waiting no longer than FrameTimeout (plus the linger), and with
// no FrameTimeout no longer than Shutdown's ctx.
func TestServerShutdownStalledMidFrame(t *testing.T) {
	t.Run("FrameTimeout", func(t *testing.T) {
		s := &framed.Server{FrameTimeout: 200 * time.Millisecond}
		r := serve(t, s)
		nc := dialRaw(t, r.addr)
		_, err := nc.Write(append(rawHeader(100), "half"...))
		require.NoError(t, err)
		waitFor(t, testTimeout, "the frame to begin", func() bool { return s.Stats().BytesIn == 8 })
		start := time.Now()
		require.NoError(t, s.Shutdown(t.Context()))
		took := time.Since(start)
		t.Logf("Shutdown took %v", took)
		assert.Less(t, took, 2*time.Second, "bounded by FrameTimeout and the linger")
		assert.EqualValues(t, 1, s.Stats().FrameTimeouts)
		_, err = bufio.NewReader(nc).ReadByte()
		assert.Equal(t, io.EOF, err, "the peer sees the end")
	})
	t.Run("ctx", func(t *testing.T) {
		s := &framed.Server{}
		r := serve(t, s)
		nc := dialRaw(t, r.addr)
		_, err := nc.Write(append(rawHeader(100), "half"...))
		require.NoError(t, err)
		waitFor(t, testTimeout, "the frame to begin", func() bool { return s.Stats().BytesIn == 8 })
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = s.Shutdown(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 2*time.Second, "bounded by ctx")
		assert.EqualValues(t, 1, s.Stats().Active, "the stalled connection is still open")
		require.NoError(t, s.Close())
		_, err = bufio.NewReader(nc).ReadByte()
		var ne net.Error
		assert.True(t, err != nil && !(errors.As(err, &ne) && ne.Timeout()), "closed by Close: %v", err)
	})
}
