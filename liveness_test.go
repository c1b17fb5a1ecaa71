package framed_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
)

// The probe settings of these tests: short, so that the tests are, and
// long against the scheduling delays of a busy machine.
const (
	probeIdle    = 100 * time.Millisecond
	probeTimeout = 100 * time.Millisecond
)

// assertWithin checks that got is want, give or take a fifth.
func assertWithin(t *testing.T, want, got time.Duration, what string) {
	t.Helper()
	lo, hi := want-want/5, want+want/5
	assert.True(t, got >= lo && got <= hi, "%s took %v, want %v (%v to %v)", what, got, want, lo, hi)
	t.Logf("%s took %v (want %v ±20%%)", what, got, want)
}

// closedTimes returns a ConnState hook that sends the time each
// connection closes.
func closedTimes() (func(*framed.Conn, framed.ConnState), <-chan time.Time) {
	ch := make(chan time.Time, 16)
	return func(_ *framed.Conn, st framed.ConnState) {
		if st == framed.StateClosed {
			ch <- time.Now()
		}
	}, ch
}

// proxied returns a Proxy to addr that t's cleanup closes.
func proxied(t *testing.T, addr string) *framedtest.Proxy {
	t.Helper()
	p := framedtest.NewProxy(addr)
	t.Cleanup(p.Close)
	return p
}

// TestServerProbesEndSilentPeer: a peer that goes silent both ways in the
// middle of a connection (the proxy passes nothing on, and the kernel
// still takes the bytes, as for a frozen process) is ended within
// Idle+Timeout, give or take a fifth, with one probe, counted and logged.
func TestServerProbesEndSilentPeer(t *testing.T) {
	hook, closed := closedTimes()
	rec := &levelRecorder{levels: map[string]slog.Level{}}
	s := &framed.Server{
		Probes:    framed.Probes{Idle: probeIdle, Timeout: probeTimeout},
		ConnState: hook,
		Logger:    slog.New(rec),
	}
	r := serve(t, s)
	proxy := proxied(t, r.addr)
	c := dial(t, proxy.Addr)
	roundTrip(t, c, []byte("hello"))
	proxy.Up.Stall()
	proxy.Down.Stall()
	silent := time.Now() // the server's last byte came a little before

	ended := wait(t, closed, "the silent peer's connection to end")
	assertWithin(t, probeIdle+probeTimeout, ended.Sub(silent), "ending a silent peer")
	st := s.Stats()
	assert.EqualValues(t, 1, st.PeersSilent, "PeersSilent")
	assert.EqualValues(t, 1, st.ProbesSent, "ProbesSent")
	assert.EqualValues(t, 0, st.ProbesAnswered, "ProbesAnswered")
	assert.EqualValues(t, 1, st.FramesIn, "FramesIn: the probe is not a frame served")
	assert.Equal(t, slog.LevelDebug, rec.level(t, "framed: probe sent"))
	assert.Equal(t, slog.LevelWarn, rec.level(t, "framed: peer silent; closing"))
}

// TestClientProbesEndSilentServer: a Client with probes on whose server
// stops (silent both ways) fails its pending Request with ErrPeerSilent
// within Idle+Timeout of the last byte it received, and its next Request
// fails at once; over TCP and over TLS (where neither the socket's unread
// bytes nor a non-blocking write are used).
func TestClientProbesEndSilentServer(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			s := &framed.Server{}
			d := framed.Dialer{Probes: framed.Probes{Idle: probeIdle, Timeout: probeTimeout}}
			if useTLS {
				s.TLSConfig, d.TLSConfig = testTLSConfigs(t)
			}
			r := serve(t, s)
			proxy := proxied(t, r.addr)
			ctx := context.Background()
			cl, err := d.Dial(ctx, proxy.Addr)
			require.NoError(t, err)
			t.Cleanup(func() { cl.Close() })
			got, err := cl.Request(ctx, []byte("hello"))
			require.NoError(t, err)
			require.Equal(t, "hello", string(got))

			proxy.Up.Stall()
			proxy.Down.Stall()
			silent := time.Now()
			_, err = cl.Request(ctx, []byte("are you there?"))
			assertWithin(t, probeIdle+probeTimeout, time.Since(silent), "failing a Request to a silent server")
			require.ErrorIs(t, err, framed.ErrPeerSilent)

			start := time.Now()
			_, err = cl.Request(ctx, []byte("and now?"))
			assert.ErrorIs(t, err, framed.ErrPeerSilent, "the next Request")
			assert.Less(t, time.Since(start), probeIdle/10, "the next Request fails at once")
			assert.NoError(t, cl.Close(), "Close after failing for silence")
		})
	}
}

// TestServerProbesSparePeerTrickling: a peer that trickles a frame, at 16
// KiB/s or at one byte every 166 ms (more than Idle, less than
// Idle+Timeout), is probed at most but never ended, and its frame is
// served.
func TestServerProbesSparePeerTrickling(t *testing.T) {
	tests := []struct {
		name      string
		bandwidth int // bytes per second through the proxy
		size      int // the frame's payload
		probed    bool
	}{
		{"16KiB at 16KiB/s", 16 << 10, 16<<10 - 4, false},
		{"a byte per 166ms", 6, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook, closed := closedTimes()
			s := &framed.Server{Probes: framed.Probes{Idle: probeIdle, Timeout: probeTimeout}, ConnState: hook}
			r := serve(t, s)
			proxy := proxied(t, r.addr)
			c := dial(t, proxy.Addr)
			roundTrip(t, c, []byte("hello")) // mid-connection
			proxy.Up.Bandwidth(tt.bandwidth)
			msg := frameOf(1, tt.size)
			start := time.Now()
			require.NoError(t, c.WriteFrame(msg))
			require.NoError(t, c.Flush())
			var got []byte
			for {
				p, err := c.ReadFrame()
				require.NoError(t, err, "the trickling peer's connection is not ended")
				if len(p) > 0 { // probes from the server are empty frames
					got = p
					break
				}
			}
			assert.Equal(t, msg, got, "the trickled frame is served")
			t.Logf("trickled %d bytes in %v", len(msg)+4, time.Since(start))
			st := s.Stats()
			assert.Zero(t, st.PeersSilent, "PeersSilent")
			if tt.probed {
				assert.NotZero(t, st.ProbesSent, "a peer silent for longer than Idle is probed")
			}
			select {
			case <-closed:
				t.Fatal("the trickling peer's connection ended")
			default:
			}
		})
	}
}

// TestServerProbeFlood: a peer sending a probe every millisecond gets at
// most one answer per Idle, is not disconnected, and its requests, sent
// among the probes, are served in order and counted without the probes.
func TestServerProbeFlood(t *testing.T) {
	hook, closed := closedTimes()
	s := &framed.Server{Probes: framed.Probes{Idle: probeIdle, Timeout: probeTimeout}, ConnState: hook}
	r := serve(t, s)
	nc := dialRaw(t, r.addr)
	frames, errc := readConnFrames(t, framed.NewConn(nc, framed.ConnConfig{}))

	const flood = 300 * time.Millisecond
	probe := encoded(t, nil)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	probes, requests := 0, 0
	for time.Since(start) < flood {
		<-tick.C
		b := probe
		if probes%25 == 24 {
			b = append(encoded(t, fmt.Appendf(nil, "request %d", requests)), probe...)
			requests++
		}
		_, err := nc.Write(b)
		require.NoError(t, err)
		probes++
	}
	elapsed := time.Since(start)
	_, err := nc.Write(encoded(t, []byte("end")))
	require.NoError(t, err)

	answers, served := 0, 0
	for {
		var p []byte
		select {
		case p = <-frames:
		case err := <-errc:
			require.NoError(t, err, "the flooding peer is not disconnected")
		}
		if len(p) == 0 {
			answers++
			continue
		}
		if string(p) == "end" {
			break
		}
		assert.Equal(t, fmt.Sprintf("request %d", served), string(p), "requests are served in order")
		served++
	}
	assert.Equal(t, requests, served, "every request is served")
	most := int(elapsed/probeIdle) + 1
	t.Logf("%d probes in %v (%.0f/s): %d answered (at most %d)", probes, elapsed, float64(probes)/elapsed.Seconds(), answers, most)
	assert.LessOrEqual(t, answers, most, "answers: at most one per Idle")
	assert.GreaterOrEqual(t, answers, 1, "answers")
	st := s.Stats()
	assert.EqualValues(t, answers, st.ProbesAnswered, "ProbesAnswered")
	assert.EqualValues(t, requests+1, st.FramesIn, "FramesIn counts no probe")
	assert.Zero(t, st.PeersSilent, "PeersSilent")
	select {
	case <-closed:
		t.Fatal("the flooding peer was disconnected")
	default:
	}
}

// probeSignal is a slog.Handler that signals each probe a Server sends.
type probeSignal struct{ sent chan struct{} }

func (h probeSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h probeSignal) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h probeSignal) WithGroup(string) slog.Handler            { return h }

func (h probeSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "framed: probe sent" {
		select {
		case h.sent <- struct{}{}:
		default:
		}
	}
	return nil
}

// TestClientProbesPipelined: a Client with probes on pipelining 10,000
// Requests to a Server with probes on gets every reply matched, none taken
// for a probe. Now and then the server's handler waits until the server
// has sent a probe, so that probes cross the replies both ways: the
// client, receiving nothing, probes the server, which is busy and answers
// later, and the server, busy, probes the client, which hears from it in
// time.
func TestClientProbesPipelined(t *testing.T) {
	const (
		requests = 10000
		workers  = 64
		pauseAt  = 2000 // every pauseAt-th request waits for a probe
		idle     = 50 * time.Millisecond
	)
	sig := probeSignal{sent: make(chan struct{}, 1)}
	var mu sync.Mutex
	seen := 0
	s := &framed.Server{
		Probes: framed.Probes{Idle: idle, Timeout: 2 * idle},
		Logger: slog.New(sig),
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
			mu.Lock()
			seen++
			pause := seen%pauseAt == 0
			mu.Unlock()
			if pause {
				select {
				case <-sig.sent: // a stale one
				default:
				}
				select {
				case <-sig.sent:
				case <-time.After(testTimeout):
					return errors.New("the busy server did not probe")
				}
			}
			return c.WriteFrame(p)
		}),
	}
	r := serve(t, s)
	d := framed.Dialer{Probes: framed.Probes{Idle: idle, Timeout: 2 * idle}}
	ctx := context.Background()
	cl, err := d.Dial(ctx, r.addr)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })

	start := time.Now()
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < requests; i += workers {
				msg := binary.LittleEndian.AppendUint32(nil, uint32(i))
				got, err := cl.Request(ctx, msg)
				if err == nil && !bytes.Equal(got, msg) {
					err = fmt.Errorf("request %d got the reply %x", i, got)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	st := s.Stats()
	t.Logf("%d Requests in %v; server: %d probes sent, %d answered", requests, time.Since(start), st.ProbesSent, st.ProbesAnswered)
	assert.GreaterOrEqual(t, st.ProbesSent, int64(requests/pauseAt), "the server probed during every pause")
	assert.EqualValues(t, requests, st.FramesIn, "FramesIn counts no probe")
	assert.Zero(t, st.PeersSilent, "PeersSilent")
}

// TestClientReceiveAnswersProbes: a Client used with Receive never returns
// a probe, and answers it.
func TestClientReceiveAnswersProbes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	d := framed.Dialer{Probes: framed.Probes{Idle: time.Hour, Frame: []byte("PING")}}
	ctx := context.Background()
	cl, err := d.Dial(ctx, ln.Addr().String())
	require.NoError(t, err)
	defer cl.Close()
	nc, err := ln.Accept()
	require.NoError(t, err)
	peer := framed.NewConn(nc, framed.ConnConfig{})
	defer peer.Close()

	require.NoError(t, peer.WriteFrame([]byte("PING")))
	require.NoError(t, peer.WriteFrame([]byte("data")))
	require.NoError(t, peer.Flush())
	got, err := cl.Receive(ctx)
	require.NoError(t, err)
	assert.Equal(t, "data", string(got), "Receive skips the probe")
	answer, err := peer.ReadFrame()
	require.NoError(t, err)
	assert.Equal(t, "PING", string(answer), "the probe is answered")
}

// TestProbesConfigChecked: probes that cannot work are refused where work
// starts, by Serve and by Dial.
func TestProbesConfigChecked(t *testing.T) {
	tests := []struct {
		name string
		give framed.Probes
	}{
		{"negative Idle", framed.Probes{Idle: -1}},
		{"negative Timeout", framed.Probes{Idle: time.Second, Timeout: -1}},
		{"Frame too large", framed.Probes{Idle: time.Second, Frame: make([]byte, 65)}},
	}
	f := framed.Format{MaxFrameSize: 64}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			s := &framed.Server{Format: f, Probes: tt.give}
			assert.Error(t, s.Serve(ln), "Serve")
			d := framed.Dialer{Format: f, Probes: tt.give}
			_, err = d.Dial(context.Background(), "127.0.0.1:1")
			assert.ErrorContains(t, err, "Probes", "Dial refuses before connecting")
		})
	}
}

// TestStalledWriterIsNoSilentPeer: a peer that sends a request and then
// neither reads nor writes is a stalled writer: the replies that cannot
// go out end the connection with a *StalledError after WriteTimeout,
// whether the handler writes them itself (the Server does not judge
// silence while it runs) or a goroutine does after the handler returned
// (the probe waits behind the replies, so its timeout never starts). It
// is never counted as a silent peer.
func TestStalledWriterIsNoSilentPeer(t *testing.T) {
	const total = 32 << 20 // more than the kernel's buffers hold
	frame := make([]byte, 60<<10)
	writeAll := func(c *framed.Conn) error {
		for range total / len(frame) {
			if err := c.WriteFrame(frame); err != nil {
				return err
			}
		}
		return c.Flush()
	}
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			hook, closed := closedTimes()
			wrote := make(chan error, 1)
			var wg sync.WaitGroup
			t.Cleanup(wg.Wait)
			s := &framed.Server{
				WriteTimeout: 150 * time.Millisecond,
				Probes:       framed.Probes{Idle: probeIdle, Timeout: probeTimeout},
				ConnState:    hook,
				Handler: framed.HandlerFunc(func(_ context.Context, c *framed.Conn, _ []byte) error {
					if inline {
						err := writeAll(c)
						wrote <- err
						return err
					}
					wg.Go(func() { wrote <- writeAll(c) })
					return nil
				}),
			}
			r := serve(t, s)
			nc := dialRaw(t, r.addr)
			_, err := nc.Write(encoded(t, []byte("send me everything")))
			require.NoError(t, err)

			err = wait(t, wrote, "the replies to stall")
			wait(t, closed, "the connection to end")
			st := s.Stats()
			assert.Zero(t, st.PeersSilent, "PeersSilent")
			var se *framed.StalledError
			if inline {
				assert.ErrorAs(t, err, &se, "the handler's error")
				assert.EqualValues(t, 1, st.WriteTimeouts, "WriteTimeouts")
			} else {
				// The probe went out behind replies the peer never took,
				// so its timeout never started. The write that timed out
				// closed the connection; the goroutine sees its
				// StalledError, or, when the server's loop has seen the
				// connection closed and closed the Conn first, that.
				assert.True(t, errors.As(err, &se) || errors.Is(err, net.ErrClosed),
					"the goroutine's error: %v", err)
				assert.NotZero(t, st.ProbesSent, "ProbesSent")
			}
			t.Logf("probes sent: %d", st.ProbesSent)
		})
	}
}

// TestProbesSpareSlowReader: a Client slowly draining a 64 MiB reply
// (through a proxy passing 64 MiB/s) while the probes of both ends are
// due is never ended, and neither is the server's connection: the
// server's probe waits behind the reply in the buffers, and the Client,
// receiving and sending nothing, probes the server every Idle.
func TestProbesSpareSlowReader(t *testing.T) {
	const size = 64 << 20
	f := framed.Format{MaxFrameSize: size}
	probes := framed.Probes{Idle: probeIdle, Timeout: probeTimeout}
	reply := make([]byte, size)
	s := &framed.Server{
		Format: f,
		Probes: probes,
		Handler: framed.HandlerFunc(func(_ context.Context, c *framed.Conn, p []byte) error {
			if string(p) == "the big one" {
				return c.WriteFrame(reply)
			}
			return c.WriteFrame(p)
		}),
	}
	r := serve(t, s)
	proxy := proxied(t, r.addr)
	proxy.Down.Bandwidth(64 << 20)
	d := framed.Dialer{Format: f, Probes: probes}
	ctx := context.Background()
	cl, err := d.Dial(ctx, proxy.Addr)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })

	start := time.Now()
	got, err := cl.Request(ctx, []byte("the big one"))
	require.NoError(t, err, "the slow reader is not ended")
	assert.Len(t, got, size)
	elapsed := time.Since(start)
	got, err = cl.Request(ctx, []byte("again"))
	require.NoError(t, err, "the connection lives on")
	assert.Equal(t, "again", string(got))
	st := s.Stats()
	t.Logf("64 MiB in %v; server: %d probes sent, %d answered", elapsed, st.ProbesSent, st.ProbesAnswered)
	assert.Greater(t, elapsed, 5*(probeIdle+probeTimeout), "the reply took many times Idle+Timeout")
	assert.Zero(t, st.PeersSilent, "PeersSilent")
}

// TestProbesSpareSlowHandler: a Client with probes waiting on a handler
// that takes more than twice Idle+Timeout is never ended, nor is the
// server's connection: the busy server judges nothing (the Client's
// probes wait unread) and probes the Client instead, every Idle, or every
// half Idle once the Client's probe waits unread, which the Client hears.
// The handler returns once the server has sent ten such probes.
func TestProbesSpareSlowHandler(t *testing.T) {
	const beats = 10
	sig := probeSignal{sent: make(chan struct{}, beats)}
	probes := framed.Probes{Idle: probeIdle, Timeout: probeTimeout}
	s := &framed.Server{
		Probes: probes,
		Logger: slog.New(sig),
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, p []byte) error {
			timeout := time.NewTimer(testTimeout)
			defer timeout.Stop()
			for range beats {
				select {
				case <-sig.sent:
				case <-timeout.C:
					return errors.New("the busy server did not probe")
				}
			}
			return c.WriteFrame(p)
		}),
	}
	r := serve(t, s)
	d := framed.Dialer{Probes: probes}
	ctx := context.Background()
	cl, err := d.Dial(ctx, r.addr)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })

	start := time.Now()
	got, err := cl.Request(ctx, []byte("take your time"))
	elapsed := time.Since(start)
	require.NoError(t, err, "the Client waiting on a slow handler is not ended")
	assert.Equal(t, "take your time", string(got))
	t.Logf("the handler took %v", elapsed)
	assert.Greater(t, elapsed, 2*(probeIdle+probeTimeout), "the handler took longer than Idle+Timeout")
	st := s.Stats()
	assert.Zero(t, st.PeersSilent, "PeersSilent")
	assert.GreaterOrEqual(t, st.ProbesSent, int64(beats), "ProbesSent")
}
