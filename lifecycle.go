package framed

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// aLongTimeAgo is a read deadline that has passed: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// lifecycle is how a [Server] and a [UDPServer] track the goroutines they
// run (Serve loops, connections) and stop: stopping begins once, closing
// done, and then Shutdown and Close wait until every tracked goroutine has
// left, except the one calling them, so that a handler may call them.
type lifecycle struct {
	stopping atomic.Bool

	mu      sync.Mutex
	done    chan struct{} // closed when stopping begins
	running map[*tracked]struct{}
	left    chan struct{} // closed when a goroutine leaves, if someone waits
}

// tracked is one goroutine a lifecycle waits for. Its id is set by the
// goroutine itself once it runs.
type tracked struct{ goid atomic.Uint64 }

// runningHere marks t as run by the calling goroutine.
func (t *tracked) runningHere() { t.goid.Store(goroutineID()) }

// doneChan returns the channel closed when stopping begins.
func (l *lifecycle) doneChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.doneLocked()
}

func (l *lifecycle) doneLocked() chan struct{} {
	if l.done == nil {
		l.done = make(chan struct{})
	}
	return l.done
}

// stop begins stopping; it may be called any number of times.
func (l *lifecycle) stop() {
	l.stopping.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	done := l.doneLocked()
	select {
	case <-done:
	default:
		close(done)
	}
}

// stopped reports whether stopping has begun.
func (l *lifecycle) stopped() bool { return l.stopping.Load() }

// enter tracks t, unless stopping has begun; then it reports false.
func (l *lifecycle) enter(t *tracked) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped() {
		return false
	}
	if l.running == nil {
		l.running = make(map[*tracked]struct{})
	}
	l.running[t] = struct{}{}
	return true
}

// leave stops tracking t.
func (l *lifecycle) leave(t *tracked) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.running, t)
	if l.left != nil {
		close(l.left)
		l.left = nil
	}
}

// wait returns once no tracked goroutine is left but the caller's own, or
// with ctx's error once ctx ends.
func (l *lifecycle) wait(ctx context.Context) error {
	self := goroutineID()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		others := 0
		for t := range l.running {
			if t.goid.Load() != self {
				others++
			}
		}
		if others == 0 {
			return nil
		}
		if l.left == nil {
			l.left = make(chan struct{})
		}
		left := l.left
		l.mu.Unlock()
		select {
		case <-left:
		case <-ctx.Done():
			l.mu.Lock()
			return ctx.Err()
		}
		l.mu.Lock()
	}
}

// goroutineID returns the calling goroutine's id, which wait compares with
// the one running each tracked goroutine, so that a handler calling Close
// or Shutdown does not wait for itself. Go has no API for it; the first
// line of the goroutine's stack trace names it, and golang.org/x/net/http2
// reads it there too. It costs about a microsecond, once per connection.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

// backoff returns how long to wait after a failed accept or read that is
// worth retrying: 5 ms the first time, doubling up to a second, as
// net/http does. prev is the last wait, zero after a success.
func backoff(prev time.Duration) time.Duration {
	return min(max(2*prev, 5*time.Millisecond), time.Second)
}

// sleep waits for d, or less if done is closed first; it reports whether it
// waited the whole time.
func sleep(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// recovered turns a handler panic's value, from recover, into the error
// that ends what the handler served, logging it with its stack at level
// Error when log is not nil.
func recovered(log *slog.Logger, v any, attrs ...any) error {
	if log != nil {
		log.Error("framed: handler panic", append(attrs, "panic", v, "stack", string(debug.Stack()))...)
	}
	return fmt.Errorf("framed: handler panic: %v", v)
}

// counter is a count a server keeps and reports in its stats.
type counter struct{ atomic.Int64 }

func (c *counter) inc() { c.Add(1) }
