package framed

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// start checks the configuration and starts dialing, once.
func (r *Redialer) start() {
	r.once.Do(func() {
		r.changed = make(chan struct{})
		if err := r.check(); err != nil {
			r.state, r.err = RedialClosed, err
			return
		}
		r.log(RedialConnecting, nil, "") // the zero state, entered now
		ctx, cancel := context.WithCancel(context.Background())
		r.stop = cancel
		r.wg.Add(1)
		go r.run(ctx)
	})
}

// check returns why the configuration cannot work, or nil.
func (r *Redialer) check() error {
	switch {
	case len(r.Addrs) == 0:
		return errors.New("framed: Redialer has no Addrs")
	case r.MinBackoff < 0 || r.MaxBackoff < 0 || r.MaxWaitingBytes < 0:
		return errors.New("framed: Redialer: negative MinBackoff, MaxBackoff or MaxWaitingBytes")
	}
	return r.dialer().Format.check()
}

func (r *Redialer) dialer() *Dialer {
	if r.Dialer == nil {
		return &Dialer{}
	}
	return r.Dialer
}

func (r *Redialer) minBackoff() time.Duration {
	if r.MinBackoff == 0 {
		return DefaultMinBackoff
	}
	return r.MinBackoff
}

func (r *Redialer) maxBackoff() time.Duration {
	if r.MaxBackoff == 0 {
		return max(DefaultMaxBackoff, r.minBackoff())
	}
	return max(r.MaxBackoff, r.minBackoff())
}

func (r *Redialer) maxWaiting() int {
	if r.MaxWaitingBytes == 0 {
		return DefaultMaxWaitingBytes
	}
	return r.MaxWaitingBytes
}

// run is the dialing goroutine: it dials, hands the connection out, waits
// for it to fail, and dials again, until Close.
func (r *Redialer) run(ctx context.Context) {
	defer r.wg.Done()
	backoff := r.minBackoff()
	var pause time.Duration
	var lastErr error
	for {
		if pause > 0 {
			r.setState(RedialBackingOff, lastErr)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		r.setState(RedialConnecting, lastErr)
		c, addr, err := r.dialRound(ctx)
		if ctx.Err() != nil {
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			lastErr = err
			pause = jitter(backoff)
			backoff = min(2*backoff, r.maxBackoff())
			continue
		}
		backoff = r.minBackoff()
		up := time.Now()
		if lastErr = r.serve(ctx, c, addr); ctx.Err() != nil {
			return
		}
		pause = r.minBackoff() - time.Since(up)
	}
}

// serve hands c out until it fails or ctx ends, and returns why it failed.
func (r *Redialer) serve(ctx context.Context, c *Client, addr string) error {
	dead := make(chan struct{})
	var once sync.Once
	c.onFail = func() { once.Do(func() { close(dead) }) }
	if clientMode(r.mode.Load()) == modeRequest {
		c.startRequests() // the reader finds a peer that hangs up at once
	}
	r.mu.Lock()
	if r.state == RedialClosed {
		r.mu.Unlock()
		c.Close()
		return nil
	}
	r.cur.Store(c)
	r.setStateLocked(RedialReady, nil, addr)
	r.mu.Unlock()

	select {
	case <-dead:
	case <-ctx.Done():
	}
	r.mu.Lock()
	r.cur.Store(nil)
	r.mu.Unlock()
	cause := c.failure()
	c.Close()
	return cause
}

// dialRound dials each address once, and returns the first Client made.
func (r *Redialer) dialRound(ctx context.Context) (*Client, string, error) {
	d := r.dialer()
	addrs := r.Addrs
	if r.Shuffle {
		addrs = make([]string, len(r.Addrs))
		for i, j := range rand.Perm(len(addrs)) {
			addrs[i] = r.Addrs[j]
		}
	}
	var errs []error
	for _, addr := range addrs {
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if d.Timeout == 0 {
			dctx, cancel = context.WithTimeout(ctx, DefaultRedialTimeout)
		}
		c, err := d.Dial(dctx, addr)
		cancel()
		if err == nil {
			return c, addr, nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		errs = append(errs, err)
	}
	return nil, "", errors.Join(errs...)
}

// jitter returns d plus or minus up to 20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// setState moves to s, unless closed.
func (r *Redialer) setState(s RedialState, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != RedialClosed {
		r.setStateLocked(s, err, "")
	}
}

// setStateLocked moves to s, wakes those who wait for a change, and logs
// it, under mu so that the log's order is the states' order.
func (r *Redialer) setStateLocked(s RedialState, err error, addr string) {
	if s == r.state && err == r.err {
		return
	}
	r.state, r.err = s, err
	close(r.changed)
	r.changed = make(chan struct{})
	r.log(s, err, addr)
}

func (r *Redialer) log(s RedialState, err error, addr string) {
	if r.Logger == nil {
		return
	}
	attrs := []any{"state", s.String()}
	if addr != "" {
		attrs = append(attrs, "addr", addr)
	}
	if err != nil && s != RedialClosed {
		attrs = append(attrs, "err", err.Error())
	}
	r.Logger.Info("framed: redial", attrs...)
}
