package framedtest

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Faults is what happens to the bytes going one way through a [FaultConn]
// or a [Proxy], after Toxiproxy's toxics and testing/iotest: they can be
// re-cut into small pieces or gathered into large ones, delayed, slowed to a
// bandwidth, held back, or let through up to a count before the connection
// is closed or reset.
//
// The zero value passes bytes through unchanged. Every method may be called
// at any time, from any goroutine, also while bytes flow; a change applies to
// the bytes that have not been passed on yet. Faults combine: bytes are
// gathered (Coalesce), held while stalled, delayed (Latency), cut (Slice),
// counted (Limit, ResetAfter) and paced (Bandwidth), in that order.
type Faults struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a setting changes
	rng     *rand.Rand

	slice       int
	sliceRandom bool
	coalesceN   int
	coalesceD   time.Duration
	latency     time.Duration
	jitter      time.Duration
	bandwidth   int
	stalled     bool
	limit       int64 // bytes to pass before ending; <0 means no limit
	limitReset  bool  // end with a reset rather than a close
	limitGen    int   // changes with every Limit or ResetAfter call
	slowClose   time.Duration
}

// settings is a copy of a Faults' settings, taken under its lock.
type settings struct {
	slice       int
	sliceRandom bool
	coalesceN   int
	coalesceD   time.Duration
	latency     time.Duration
	jitter      time.Duration
	bandwidth   int
	stalled     bool
	hasLimit    bool
	limit       int64
	limitReset  bool
	limitGen    int
	slowClose   time.Duration
	changed     <-chan struct{}
}

// update runs set under the lock and wakes whoever waits on the settings.
func (f *Faults) update(set func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	set()
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
}

func (f *Faults) get() settings {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return settings{
		slice: f.slice, sliceRandom: f.sliceRandom,
		coalesceN: f.coalesceN, coalesceD: f.coalesceD,
		latency: f.latency, jitter: f.jitter,
		bandwidth: f.bandwidth, stalled: f.stalled,
		hasLimit: f.limitGen > 0 && f.limit >= 0, limit: f.limit, limitReset: f.limitReset, limitGen: f.limitGen,
		slowClose: f.slowClose,
		changed:   f.changed,
	}
}

// intN returns a random int in [0, n), n > 0.
func (f *Faults) intN(n int) int { return int(f.int64N(int64(n))) }

// int64N returns a random int64 in [0, n), n > 0.
func (f *Faults) int64N(n int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng == nil {
		f.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return f.rng.Int64N(n)
}

// Slice cuts the bytes into pieces of at most n bytes, each passed on in a
// write of its own; n of 1 sends one byte per write. Zero or less turns
// slicing off. Through a [FaultConn], a read of sliced incoming bytes
// returns at most one piece.
func (f *Faults) Slice(n int) {
	f.update(func() { f.slice, f.sliceRandom = max(n, 0), false })
}

// SliceRandom cuts the bytes into pieces of random sizes from 1 to n bytes,
// as Slice does. Zero or less turns slicing off.
func (f *Faults) SliceRandom(n int) {
	f.update(func() { f.slice, f.sliceRandom = max(n, 0), n > 0 })
}

// Coalesce gathers bytes until n of them have arrived or d has passed since
// the first, and passes them on in one write, so that small writes reach
// the peer merged. Zero d means no time bound: bytes wait for n or the end
// of the stream. Zero or negative n turns coalescing off.
func (f *Faults) Coalesce(n int, d time.Duration) {
	f.update(func() { f.coalesceN, f.coalesceD = max(n, 0), max(d, 0) })
}

// Latency delays every chunk of bytes by d plus a random duration from zero
// up to jitter. Zero turns it off.
func (f *Faults) Latency(d, jitter time.Duration) {
	f.update(func() { f.latency, f.jitter = max(d, 0), max(jitter, 0) })
}

// Bandwidth limits the bytes passed on to bytesPerSecond, in pieces of at
// most a fiftieth of it. Zero or less means no limit.
func (f *Faults) Bandwidth(bytesPerSecond int) {
	f.update(func() { f.bandwidth = max(bytesPerSecond, 0) })
}

// Stall holds back every byte that has not been passed on yet until
// Release. Bytes keep arriving, and the sender blocks once the buffers fill,
// as it would with a peer that stopped reading.
func (f *Faults) Stall() { f.update(func() { f.stalled = true }) }

// Release ends a Stall: the bytes held back go on.
func (f *Faults) Release() { f.update(func() { f.stalled = false }) }

// Limit lets n more bytes through, on each connection, counted from this
// call (or from the connection's start, for a connection made later), and
// then closes the connection both ways, as a peer that closes does. A
// negative n removes the limit.
func (f *Faults) Limit(n int64) {
	f.update(func() { f.limit, f.limitReset, f.limitGen = n, false, f.limitGen+1 })
}

// ResetAfter lets n more bytes through, as Limit does, and then resets the
// connection both ways: a TCP RST (SO_LINGER 0), so peers read
// ECONNRESET. A negative n removes the limit.
func (f *Faults) ResetAfter(n int64) {
	f.update(func() { f.limit, f.limitReset, f.limitGen = n, true, f.limitGen+1 })
}

// SlowClose delays passing on the end of the stream (a FIN) by d, after
// the last byte.
func (f *Faults) SlowClose(d time.Duration) {
	f.update(func() { f.slowClose = max(d, 0) })
}

// Clear removes every fault and releases a stall.
func (f *Faults) Clear() {
	f.update(func() {
		f.slice, f.sliceRandom = 0, false
		f.coalesceN, f.coalesceD = 0, 0
		f.latency, f.jitter = 0, 0
		f.bandwidth = 0
		f.stalled = false
		f.limit, f.limitReset, f.limitGen = -1, false, f.limitGen+1
		f.slowClose = 0
	})
}

// pump moves bytes one way, from src to dst, through f.
type pump struct {
	src, dst net.Conn
	f        *Faults
	stop     <-chan struct{} // closed to end every wait at once
	unstall  <-chan struct{} // closed to end a stall (the bytes are dropped)
	end      func(reset bool)
	eof      func()

	gen    int
	passed int64
}

// sleep waits for d or until stop is closed; it reports whether d passed.
func (p *pump) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stop:
		return false
	}
}

// run pumps until src ends or fails, or a fault ends the connection.
func (p *pump) run() {
	buf := make([]byte, 32<<10)
	var acc []byte
	for {
		n, err := p.src.Read(buf)
		chunk := buf[:n]
		if s := p.f.get(); n > 0 && err == nil && s.coalesceN > 0 {
			acc, err = p.gather(append(acc[:0], chunk...), buf, s)
			chunk = acc
		}
		if len(chunk) > 0 && !p.deliver(chunk) {
			return
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			if p.sleep(p.f.get().slowClose) {
				p.eof()
			}
			return
		case isReset(err):
			p.end(true)
			return
		default: // closed here, or failed: end the connection if it has not ended
			p.end(false)
			return
		}
	}
}

// gather reads more into acc until s.coalesceN bytes have arrived or
// s.coalesceD has passed.
func (p *pump) gather(acc, buf []byte, s settings) ([]byte, error) {
	if s.coalesceD > 0 {
		p.src.SetReadDeadline(time.Now().Add(s.coalesceD))
		defer p.src.SetReadDeadline(time.Time{})
	}
	for len(acc) < s.coalesceN {
		n, err := p.src.Read(buf)
		acc = append(acc, buf[:n]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return acc, nil
		}
		if err != nil {
			return acc, err
		}
	}
	return acc, nil
}

// deliver passes chunk on to dst through the faults; it reports false when
// the pump must stop.
func (p *pump) deliver(chunk []byte) bool {
	delayed := false
	for len(chunk) > 0 {
		s := p.f.get()
		if s.stalled {
			select {
			case <-s.changed:
				continue
			case <-p.unstall:
				return false
			case <-p.stop:
				return false
			}
		}
		if !delayed {
			delayed = true
			d := s.latency
			if s.jitter > 0 {
				d += time.Duration(p.f.int64N(int64(s.jitter) + 1))
			}
			if !p.sleep(d) {
				return false
			}
			continue // the settings may have changed meanwhile
		}
		k := len(chunk)
		if s.slice > 0 {
			k = min(k, s.slice)
			if s.sliceRandom {
				k = 1 + p.f.intN(k)
			}
		}
		if s.bandwidth > 0 {
			k = min(k, max(1, s.bandwidth/50))
		}
		if s.limitGen != p.gen {
			p.gen, p.passed = s.limitGen, 0
		}
		if s.hasLimit {
			left := s.limit - p.passed
			if left <= 0 {
				p.end(s.limitReset)
				return false
			}
			k = int(min(int64(k), left))
		}
		if _, err := p.dst.Write(chunk[:k]); err != nil {
			return false
		}
		chunk = chunk[k:]
		p.passed += int64(k)
		if s.hasLimit && p.passed >= s.limit {
			p.end(s.limitReset)
			return false
		}
		if s.slice > 0 {
			if mc, ok := p.dst.(*memConn); ok && !mc.waitDrained(p.stop) {
				return false
			}
		}
		if s.bandwidth > 0 && !p.sleep(time.Duration(k)*time.Second/time.Duration(s.bandwidth)) {
			return false
		}
	}
	return true
}

// resetConn closes c with a TCP RST when it is a TCP connection (SO_LINGER
// 0), and closes it otherwise.
func resetConn(c net.Conn) {
	switch c := c.(type) {
	case *net.TCPConn:
		c.SetLinger(0)
	case *memConn:
		c.reset()
	}
	c.Close()
}

// isReset reports whether err is a connection reset.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}
