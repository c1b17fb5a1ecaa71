package framed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrRedialed is returned, saying why the last connection ended, by
	// the first [Redialer.Receive] on a new connection: frames the old one
	// had not delivered are lost. The next Receive reads from the new one.
	ErrRedialed = errors.New("framed: redialed")

	errRedialerClosed = fmt.Errorf("framed: Redialer closed: %w", net.ErrClosed)
)

// Defaults of a [Redialer] whose fields are zero.
const (
	DefaultMinBackoff      = 100 * time.Millisecond
	DefaultMaxBackoff      = 5 * time.Second
	DefaultRedialTimeout   = 5 * time.Second
	DefaultMaxWaitingBytes = 1 << 20
)

// RedialState is where a [Redialer] is: connecting, ready, backing off
// between rounds of dialing, or closed.
type RedialState int

const (
	// RedialConnecting is dialing the addresses, one after the other.
	RedialConnecting RedialState = iota
	// RedialReady has a connection: requests go out on it.
	RedialReady
	// RedialBackingOff waits before the next round of dialing, since
	// every address failed in the last one.
	RedialBackingOff
	// RedialClosed is after Close, or after a configuration error: for
	// good.
	RedialClosed
)

// String returns the state's name in lower case: "connecting", "ready",
// "backing off" or "closed".
func (s RedialState) String() string {
	switch s {
	case RedialConnecting:
		return "connecting"
	case RedialReady:
		return "ready"
	case RedialBackingOff:
		return "backing off"
	case RedialClosed:
		return "closed"
	}
	return "RedialState(" + strconv.Itoa(int(s)) + ")"
}

// Redialer is a [Client] that survives its connection: when it ends, the
// Redialer dials again, and goes on dialing until Close. Its zero value
// with Addrs set is ready to use; fields may not change after first use.
// It dials on the first call of any method but Close, and a Redialer must
// not be copied after that.
//
// # Dialing
//
// Each round tries Addrs in order (shuffled each round with Shuffle),
// resolving names at every dial, and stops at the first that connects.
// A round in which every address fails is followed by a pause that starts
// at MinBackoff and doubles up to MaxBackoff, each time ±20% at random;
// it starts over at MinBackoff once a connection is made. A connection
// that ends is dialed again at once, unless it lasted less than
// MinBackoff: then when MinBackoff has passed since it was made, so that
// a peer that accepts and hangs up costs one dial per MinBackoff. The
// Redialer never gives up by itself.
//
// # At most once
//
// A Request is sent at most once. One whose frame has not reached the
// network when its connection fails waits for the next connection and
// goes out on it. One some of whose bytes were written fails at once with
// an error matching [ErrOutcomeUnknown], and is never sent again. While
// there is no connection, Requests and Sends wait for one until their ctx
// ends; with FailFast they fail at once while backing off. Those that
// fail without being sent match [ErrNotSent]. A connection that fails is
// found by the Request reader as soon as the peer closes or resets it; a
// peer that goes silent is found by the next write that fails, or by the
// ctx of the Requests waiting on it.
//
// # Send and Receive
//
// Send is as [Client.Send]: a Send that returns nil has queued its frame,
// which is lost if the connection ends before writing it; one that cannot
// queue it because the connection failed goes to the next connection.
// Receive reads the current connection; when it ends, the next Receive
// waits for a new one and returns [ErrRedialed] once, after which
// Receives read the new connection. As on a Client, Request and Receive
// are not used together.
//
// # Concurrency
//
// All methods may be called by any number of goroutines at once.
type Redialer struct {
	// Dialer dials each connection; nil means the zero Dialer. A zero
	// Timeout is taken as DefaultRedialTimeout here, so that an address
	// that never answers costs a bounded wait in each round.
	Dialer *Dialer

	// Addrs are the TCP addresses to dial, host:port; at least one.
	Addrs []string

	// Shuffle tries Addrs in a new random order each round, spreading
	// clients over several servers, instead of in order.
	Shuffle bool

	// MinBackoff is the first pause after a round in which every address
	// failed, and the shortest life of a connection redialed at once.
	// Zero means DefaultMinBackoff.
	MinBackoff time.Duration

	// MaxBackoff caps the pause between rounds. Zero means
	// DefaultMaxBackoff; it is raised to MinBackoff if below it.
	MaxBackoff time.Duration

	// FailFast makes Requests and Sends fail at once with [ErrNotSent]
	// while the Redialer backs off, instead of waiting for a connection.
	// While it connects, they wait either way, and Receive always waits.
	FailFast bool

	// MaxWaitingBytes bounds the bytes of the Requests and Sends that
	// wait for a connection; one that would go beyond fails at once with
	// [ErrNotSent]. Zero means DefaultMaxWaitingBytes.
	MaxWaitingBytes int

	// Logger, if not nil, logs each change of state at Info, in order,
	// with the address connected to or the error that caused it. It is
	// called with the Redialer's lock held: its handler must not call the
	// Redialer.
	Logger *slog.Logger

	once  sync.Once
	cur   atomic.Pointer[Client] // the Client of the connection that is up, or nil
	mode  atomic.Int32           // a clientMode, set once
	recvM sync.Mutex             // one Receive at a time, which keeps last
	last  *Client                // the Client the last Receive read from

	mu      sync.Mutex
	state   RedialState
	err     error         // why the last connection or round failed, or why closed
	changed chan struct{} // closed and replaced at each change of state
	waiting int           // bytes of Requests and Sends waiting for a connection
	stop    context.CancelFunc
	wg      sync.WaitGroup // the dialing goroutine
}

// client returns the Client of the connection that is up, other than old,
// waiting for one as the configuration says. n is the bytes that wait;
// failFast is whether FailFast applies.
func (r *Redialer) client(ctx context.Context, old *Client, n int, failFast bool) (*Client, error) {
	r.start()
	r.mu.Lock()
	defer r.mu.Unlock()
	counted := false
	for {
		if r.state == RedialClosed {
			if counted {
				r.waiting -= n
			}
			return nil, r.err
		}
		if c := r.cur.Load(); c != nil && c != old {
			if counted {
				r.waiting -= n
			}
			return c, nil
		}
		if failFast && r.state == RedialBackingOff {
			if counted {
				r.waiting -= n
			}
			return nil, fmt.Errorf("%w: no connection: %w", ErrNotSent, r.err)
		}
		if !counted {
			if r.waiting+n > r.maxWaiting() {
				return nil, fmt.Errorf("%w: %d bytes already wait for a connection", ErrNotSent, r.waiting)
			}
			r.waiting += n
			counted = true
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
			r.mu.Lock()
		case <-ctx.Done():
			r.mu.Lock()
			r.waiting -= n
			return nil, fmt.Errorf("%w: %w", ErrNotSent, ctx.Err())
		}
	}
}

// setMode records whether the Redialer serves Requests or Receives.
func (r *Redialer) setMode(m clientMode) error {
	if r.mode.CompareAndSwap(int32(modeUnset), int32(m)) || r.mode.Load() == int32(m) {
		return nil
	}
	return ErrReceiveWithRequest
}

// Request sends msg as one frame on the current connection and returns
// the peer's reply, as [Client.Request] does, waiting for a connection
// when none is up. A request not sent when its connection fails goes out
// on the next one; errors are as the [Redialer] doc says.
func (r *Redialer) Request(ctx context.Context, msg []byte) ([]byte, error) {
	if r.mode.Load() != int32(modeRequest) {
		if err := r.setMode(modeRequest); err != nil {
			return nil, err
		}
	}
	c := r.cur.Load()
	var failed *Client
	for {
		if c == nil {
			var err error
			if c, err = r.client(ctx, failed, len(msg), r.FailFast); err != nil {
				return nil, err
			}
		}
		reply, err := c.Request(ctx, msg)
		if err == nil || !errors.Is(err, ErrNotSent) || ctx.Err() != nil {
			return reply, err
		}
		// c failed before the frame went out: on to the next connection.
		failed, c = c, nil
	}
}

// Send sends msg as one frame on the current connection, as [Client.Send]
// does, waiting for a connection when none is up. A frame that cannot be
// queued because the connection failed goes to the next one.
func (r *Redialer) Send(ctx context.Context, msg []byte) error {
	c := r.cur.Load()
	var failed *Client
	for {
		if c == nil {
			var err error
			if c, err = r.client(ctx, failed, len(msg), r.FailFast); err != nil {
				return err
			}
		}
		err := c.Send(ctx, msg)
		if err == nil || c.failure() == nil || ctx.Err() != nil {
			return err
		}
		failed, c = c, nil // nothing was queued
	}
}

// Receive returns the next frame from the current connection, as
// [Client.Receive] does, waiting for a connection when none is up. When
// the connection it read from has ended, it returns [ErrRedialed] once a
// new one is up, with why the old one ended in its message (not wrapped:
// it never matches [io.EOF]); the next Receive reads the new one.
func (r *Redialer) Receive(ctx context.Context) ([]byte, error) {
	if err := r.setMode(modeReceive); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.recvM.Lock()
	defer r.recvM.Unlock()
	var ended *Client
	for {
		c, err := r.client(ctx, ended, 0, false)
		if err != nil {
			return nil, err
		}
		if r.last != nil && c != r.last {
			cause := r.last.failure()
			if cause == nil {
				cause = errPeerClosed
			}
			r.last = c
			// The cause as text only: a loop that stops at io.EOF must
			// not stop here.
			return nil, fmt.Errorf("%w: the last connection ended: %v", ErrRedialed, cause)
		}
		r.last = c
		p, err := c.Receive(ctx)
		if err == nil || ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return p, err
		}
		c.fail(err) // the connection is done with
		ended = c
	}
}

// State returns the Redialer's state and the last error: why the last
// connection or round of dialing failed (nil when ready), or why it is
// closed.
func (r *Redialer) State() (RedialState, error) {
	r.start()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.err
}

// WaitForStateChange waits until the state is other than from, and
// reports true, or until ctx ends, and reports false.
func (r *Redialer) WaitForStateChange(ctx context.Context, from RedialState) bool {
	r.start()
	r.mu.Lock()
	for r.state == from {
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
		r.mu.Lock()
	}
	r.mu.Unlock()
	return true
}

// Close stops dialing, closes the connection, and waits for the
// Redialer's goroutines. Pending Requests fail as on [Client.Close], and
// those waiting for a connection, and every later call, return an error
// matching [net.ErrClosed]. Later Closes return such an error too.
func (r *Redialer) Close() error {
	r.once.Do(func() { r.changed = make(chan struct{}) }) // never started
	r.mu.Lock()
	if r.state == RedialClosed && errors.Is(r.err, net.ErrClosed) {
		r.mu.Unlock()
		r.wg.Wait()
		return errRedialerClosed
	}
	r.setStateLocked(RedialClosed, errRedialerClosed, "")
	stop := r.stop
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	r.wg.Wait()
	return nil
}
