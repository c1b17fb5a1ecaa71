package framed

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// aLongTimeAgo is a read deadline that has passed: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// lifecycle is how a [Server] and a [UDPServer] track the goroutines they
// run (Serve loops, connections) and stop them: stopping begins once,
// closing done, and then Close and Shutdown wait for the goroutines to
// leave. Neither waits for the goroutine that calls it, which they cannot
// tell apart from others by looking at it:
//
//   - Close waits for each goroutine until it leaves or is running code
//     of the user's (a handler, a hook), which may be what called Close.
//     Code of the library's returns soon once Close has closed the
//     sockets, so this wait is short.
//   - Shutdown waits for each goroutine until it leaves, but the caller's
//     own, which it knows from the ctx the caller was given (see
//     withCaller), and those of other Shutdown calls in progress, which
//     wait for it as it would wait for them.
type lifecycle struct {
	stopping atomic.Bool
	waiters  atomic.Int32 // goroutines in wait

	mu      sync.Mutex
	done    chan struct{} // closed when stopping begins
	running map[*tracked]struct{}
	changed chan struct{} // closed when a goroutine leaves or begins code of the user's, if someone waits
}

// tracked is one goroutine a lifecycle waits for.
type tracked struct {
	inUser    atomic.Bool  // running code of the user's: Close does not wait for it
	shutdowns atomic.Int32 // Shutdown calls in progress whose ctx names it: Shutdown does not wait for it
}

// callerKey is the key of the context value that names the tracked
// goroutine serving a handler, for the lifecycle l.
type callerKey struct{ l *lifecycle }

// withCaller returns ctx with t as the goroutine its holder is served by,
// so that Shutdown, given ctx or a context derived from it, does not wait
// for t.
func (l *lifecycle) withCaller(ctx context.Context, t *tracked) context.Context {
	return context.WithValue(ctx, callerKey{l}, t)
}

// caller returns the goroutine that ctx names, or nil.
func (l *lifecycle) caller(ctx context.Context) *tracked {
	t, _ := ctx.Value(callerKey{l}).(*tracked)
	return t
}

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
	l.changedLocked()
}

// enterUser marks t as running code of the user's until leaveUser, and
// tells a waiting Close, which stops waiting for it.
func (l *lifecycle) enterUser(t *tracked) {
	t.inUser.Store(true)
	l.marked()
}

// leaveUser marks t as running code of the library's again.
func (l *lifecycle) leaveUser(t *tracked) { t.inUser.Store(false) }

// marked wakes the goroutines in wait, if any, after a mark that may let
// them skip a goroutine. A goroutine that stores a mark and then finds no
// waiter is seen by a waiter that comes later: both sides write before
// they read.
func (l *lifecycle) marked() {
	if l.waiters.Load() > 0 {
		l.mu.Lock()
		l.changedLocked()
		l.mu.Unlock()
	}
}

// changedLocked wakes the goroutines in wait.
func (l *lifecycle) changedLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// waitClose waits, for Close, until every tracked goroutine has left or
// is running code of the user's.
func (l *lifecycle) waitClose() {
	l.wait(context.Background(), func(t *tracked) bool { return t.inUser.Load() })
}

// waitShutdown waits, for Shutdown, until every tracked goroutine has
// left but the one ctx names and those named by the ctx of another
// waitShutdown in progress, or until ctx ends, and then returns ctx's
// error.
func (l *lifecycle) waitShutdown(ctx context.Context) error {
	if self := l.caller(ctx); self != nil {
		self.shutdowns.Add(1)
		defer self.shutdowns.Add(-1)
		l.marked()
	}
	return l.wait(ctx, func(t *tracked) bool { return t.shutdowns.Load() > 0 })
}

// wait returns once every tracked goroutine has left or is one that skip
// accepts, or with ctx's error once ctx ends.
func (l *lifecycle) wait(ctx context.Context, skip func(*tracked) bool) error {
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		waiting := false
		for t := range l.running {
			if !skip(t) {
				waiting = true
				break
			}
		}
		if !waiting {
			return nil
		}
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			l.mu.Lock()
			return ctx.Err()
		}
		l.mu.Lock()
	}
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
