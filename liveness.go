package framed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrPeerSilent is the error, wrapped, of a connection ended because its
// peer sent no byte within [Probes].Timeout of a probe reaching the socket.
// A [Client] so ended returns it from every pending and later Request.
var ErrPeerSilent = errors.New("framed: peer silent")

// probeSteps is how many times per Probes.Idle a connection with probes on
// looks at its byte count: a probe goes out Idle, give or take an eighth
// of it, after the last byte received.
const probeSteps = 8

// Probes configures liveness probes, for [Server].Probes and
// [Dialer].Probes. The zero value turns them off.
//
// With probes on, a connection that has received no byte for Idle sends a
// probe frame; if no byte at all arrives within Timeout of the probe
// reaching the socket, the connection is ended with an error matching
// [ErrPeerSilent]. Any byte received is proof of life, a partial frame
// included, so a peer slowly sending a large frame is never cut. The
// timeout starts only once the bytes queued before the probe, and the
// probe, have been taken by the network: a probe queued behind a large
// reply is not held against the peer. A peer that does not read at all
// is a stalled writer, reported by WriteTimeout as a [*StalledError].
//
// A frame whose payload equals Frame is a probe: it is answered in the
// read path with Frame, at most once per Idle, and is never passed to a
// Handler nor matched to a Request, nor counted as a frame received. A
// probe that arrives while one of ours awaits its answer is that answer.
// Probes beyond one per Idle are dropped (they are proof of life too);
// probing too often is never a reason to disconnect. Both ends must agree
// on Frame; a peer that knows nothing of probes but echoes frames (an
// [EchoHandler]) answers them anyway.
//
// A Server judges silence only while it reads: while a Handler runs, the
// peer's bytes wait unread. It then sends a probe every Idle instead, so
// that a peer waiting for a slow reply keeps hearing from it. Likewise a
// connection that receives but has sent nothing for half of Idle sends a
// probe, so that a peer pushing a large reply to a slow reader hears from
// it while its own probe still waits behind that reply in the buffers.
// And a connection with bytes received but not yet read (on Linux, where
// the socket tells) is slow to read, not facing a silent peer: it judges
// nothing until it has read them.
type Probes struct {
	// Idle is how long a connection receives nothing before it sends a
	// probe, and the least time between two probes it answers. Zero
	// turns probes off: none are sent, and a frame equal to Frame is an
	// ordinary frame.
	Idle time.Duration

	// Timeout is how long after a probe reaches the socket a byte must
	// arrive. Zero means Idle.
	Timeout time.Duration

	// Frame is the probe's payload, such as a message id that the peer's
	// protocol reserves for heartbeats. Nil means a zero-length frame,
	// which is then no longer an ordinary frame. It must fit the Format.
	Frame []byte
}

// on reports whether probes are on.
func (p Probes) on() bool { return p.Idle > 0 }

// timeout returns the time a probe waits for a byte.
func (p Probes) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return p.Idle
}

// check reports whether p can be used with the Format f.
func (p Probes) check(f Format) error {
	if p.Idle < 0 || p.Timeout < 0 {
		return errors.New("framed: Probes durations must not be negative")
	}
	if !p.on() {
		return nil
	}
	if n := len(p.Frame); n > f.Limit() || n < f.LengthOffset+max(f.LengthAdjust, 0) {
		return fmt.Errorf("framed: Probes.Frame: %w", f.checkWrite(n, f.Limit()))
	}
	return nil
}

// probeCounts is what a server counts of its probes.
type probeCounts struct {
	sent, answered, silent counter
}

// prober watches one connection for silence and answers its peer's probes.
//
// Its goroutine looks at the connection's byte count probeSteps times per
// Idle, so that receiving costs nothing per frame. After Idle with the
// count unchanged it queues a probe, waits for the write queue to say the
// probe has been taken by the network (see writeQueue.sendProbe), and
// then for Timeout: a count still unchanged ends the connection. Probes
// meant only to be heard, with no timeout, go out every Idle while a
// handler runs and every half Idle while the connection only receives.
type prober struct {
	cfg     Probes
	timeout time.Duration
	in      *countingReader
	nc      net.Conn // asked for the bytes it holds unread
	q       *writeQueue
	busy    func() bool     // reports whether the peer's bytes are left unread for now, or nil
	silent  func(err error) // ends the connection
	counts  *probeCounts    // or nil
	log     *slog.Logger    // or nil
	remote  net.Addr
	written chan struct{} // receives when the probe is taken by the network

	awaiting atomic.Bool   // a probe is out and no probe has come since
	ended    atomic.Bool   // the peer was found silent; err says so
	err      error         // set before ended
	answered time.Time     // when the last answer was sent: the reader's alone
	stop     chan struct{} // closed to stop the goroutine
	stopOnce sync.Once
	done     sync.WaitGroup
}

// newProber returns a prober for c as cfg says, or nil when probes are off.
func newProber(c *Conn, cfg Probes, silent func(error)) *prober {
	if !cfg.on() {
		return nil
	}
	cfg.Frame = bytes.Clone(cfg.Frame) // the caller's to change
	return &prober{
		cfg:     cfg,
		timeout: cfg.timeout(),
		in:      &c.in,
		nc:      c.nc,
		q:       &c.q,
		silent:  silent,
		remote:  c.RemoteAddr(),
		written: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
}

// start starts the goroutine; close stops it.
func (p *prober) start() {
	p.done.Add(1)
	go p.run()
}

// halt tells the goroutine to stop, without waiting for it: the goroutine
// itself may be the caller.
func (p *prober) halt() { p.stopOnce.Do(func() { close(p.stop) }) }

// close stops the goroutine and waits for it.
func (p *prober) close() {
	p.halt()
	p.done.Wait()
}

// is reports whether frame is a probe.
func (p *prober) is(frame []byte) bool {
	return len(frame) == len(p.cfg.Frame) && string(frame) == string(p.cfg.Frame)
}

// onProbe handles a probe read from the peer: the answer to ours, or a
// probe to answer, unless one was answered less than Idle ago. Only the
// connection's reader calls it.
func (p *prober) onProbe() {
	if p.awaiting.CompareAndSwap(true, false) {
		return // the answer to ours, or a probe that crossed it
	}
	now := time.Now()
	if !p.answered.IsZero() && now.Sub(p.answered) < p.cfg.Idle {
		return // too soon: dropped, never held against the peer
	}
	p.answered = now
	if p.q.sendProbe(p.cfg.Frame, nil) != nil {
		return // the connection is closing
	}
	if p.counts != nil {
		p.counts.answered.inc()
	}
	if p.log != nil {
		p.log.LogAttrs(context.Background(), slog.LevelDebug, "framed: probe answered", slog.Any("remote", p.remote))
	}
}

// run is the prober's goroutine.
func (p *prober) run() {
	defer p.done.Done()
	step := max(p.cfg.Idle/probeSteps, time.Millisecond)
	t := time.NewTimer(step)
	defer t.Stop()
	wait := func(d time.Duration) bool { // false when stopped
		t.Reset(d)
		select {
		case <-p.stop:
			return false
		case <-t.C:
			return true
		}
	}
	// The last byte came before heard, and after the tick before it: a
	// probe that goes out Idle less a step after heard goes out Idle,
	// give or take a step, after that byte. Times are read once a tick,
	// so that the ticks' delays do not add up.
	seen, _ := p.received()
	heard := time.Now()
	sent, mute := p.q.sent(), 0
	for wait(step) {
		now := time.Now()
		if w := p.q.sent(); w != sent {
			sent, mute = w, 0
		} else {
			mute++
		}
		if n, unread := p.received(); n != seen || unread {
			seen, heard = n, now
			if mute >= probeSteps/2 {
				// We only receive: the peer hears from us twice per
				// Idle, so that its probes, which wait behind what it
				// sends, find us alive however slowly we read.
				mute = 0
				if !p.q.busy() && !p.probe(nil) {
					return
				}
			}
			continue
		}
		if now.Sub(heard) < p.cfg.Idle-step {
			continue
		}
		heard = now // the next probe, if nothing comes, an Idle later
		if p.busy != nil && p.busy() {
			// A handler runs and the peer's bytes wait unread: there is
			// nothing to judge, but a probe tells the peer we live,
			// unless what we write already does.
			if !p.q.busy() && !p.probe(nil) {
				return
			}
			continue
		}
		if !p.probe(p.written) {
			return
		}
		select {
		case <-p.stop:
			return
		case <-p.written:
		}
		if !wait(p.timeout) {
			return
		}
		if n, unread := p.received(); n != seen || unread || (p.busy != nil && p.busy()) {
			seen, heard = n, time.Now()
			continue
		}
		p.end()
		return
	}
}

// received returns how many bytes the connection has received: those
// read, and on Linux those the socket holds that no read has taken yet.
// unread reports whether there are such bytes: then the peer is not
// silent, we are slow to read (a handler runs, a large frame is being
// copied), and there is nothing to judge. A read between the two looks
// makes the sum jump, which is taken for a byte received: a wasted probe
// at worst, when bytes are being read anyway.
func (p *prober) received() (n int64, unread bool) {
	q := receiveQueued(p.nc)
	return p.in.n.Load() + int64(max(0, q)), q > 0
}

// probe sends a probe, and reports false when the connection is closing.
// written is told when the probe is taken by the network, if not nil.
func (p *prober) probe(written chan<- struct{}) bool {
	p.awaiting.Store(true)
	if p.q.sendProbe(p.cfg.Frame, written) != nil {
		return false
	}
	if p.counts != nil {
		p.counts.sent.inc()
	}
	if p.log != nil {
		p.log.LogAttrs(context.Background(), slog.LevelDebug, "framed: probe sent", slog.Any("remote", p.remote))
	}
	return true
}

// end ends the connection of a silent peer.
func (p *prober) end() {
	p.err = fmt.Errorf("%w: no byte received within %v of a probe, after %v idle", ErrPeerSilent, p.timeout, p.cfg.Idle)
	p.ended.Store(true)
	if p.counts != nil {
		p.counts.silent.inc()
	}
	if p.log != nil {
		p.log.LogAttrs(context.Background(), slog.LevelWarn, "framed: peer silent; closing",
			slog.Any("remote", p.remote), slog.Duration("idle", p.cfg.Idle), slog.Duration("timeout", p.timeout))
	}
	p.silent(p.err)
}

// silence returns the error the connection was ended with for silence, or
// nil. It may be called on a nil prober.
func (p *prober) silence() error {
	if p == nil || !p.ended.Load() {
		return nil
	}
	return p.err
}
