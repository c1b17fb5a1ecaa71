package framed

import (
	"errors"
	"fmt"
)

// What became of a request whose connection failed: the peer cannot have
// seen it, or may have.
var (
	// ErrNotSent matches the error of a request of which no byte reached
	// the network: the peer cannot have seen it, and it is safe to send
	// again. A [Client] returns it, wrapped with the reason, for Requests
	// it fails before their frame went out; a [Redialer] sends such
	// requests on its next connection itself, and returns it when it may
	// not wait for one (FailFast, MaxWaitingBytes) or ctx ends first.
	ErrNotSent = errors.New("framed: request not sent")

	// ErrOutcomeUnknown matches the error of a request some of whose bytes
	// were written when its connection failed: the peer may have served
	// it, once, or not. Neither a [Client] nor a [Redialer] ever sends it
	// again; whether to is the caller's call.
	ErrOutcomeUnknown = errors.New("framed: request outcome unknown")
)

// outcome marks err, which ends a Request whose frame began at the stream
// position start, with what became of the frame: written is how far the
// connection, now closed, got.
func outcome(err error, start, written int64) error {
	if written <= start {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}

// notSent marks err with [ErrNotSent] when it is the reason the Client
// failed: a Request that returns it never queued its frame.
func (c *Client) notSent(err error) error {
	if failed := c.failure(); failed != nil && err == failed {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return err
}
