package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/framed-go/framed"
)

// connect is connect mode: it sends every input message as a frame while
// it prints every frame received. When the input ends it half-closes the
// connection and prints frames until the peer closes it, -n frames have
// come, or -timeout passes without a frame.
func connect(ctx context.Context, cfg *config, in msgReader, out *msgWriter, log *logger) error {
	tlsCfg, err := cfg.tls.client(log)
	if err != nil {
		return err
	}
	nc, err := dial(ctx, cfg, tlsCfg)
	if err != nil {
		return err
	}
	conn := framed.NewConn(nc, framed.ConnConfig{Format: cfg.format, WriteTimeout: cfg.timeout})
	defer conn.Close()
	log.printf("connected to %s from %s, format %+v", conn.RemoteAddr(), conn.LocalAddr(), cfg.format)

	var inputDone atomic.Bool
	quit := make(chan struct{})
	closeQuit := sync.OnceFunc(func() { close(quit) })
	defer closeQuit()
	msgs := make(chan input)
	go readInput(in, msgs, quit)
	sent := make(chan error, 1)
	go func() { sent <- sendAll(conn, msgs, quit, cfg.timeout, &inputDone, log) }()
	received := make(chan error, 1)
	go func() { received <- receiveAll(conn, out, cfg, &inputDone, log) }()
	// stopSending ends the sender, which never waits on the input itself,
	// and returns its error.
	stopSending := func() error {
		closeQuit()
		conn.Close()
		return <-sent
	}

	select {
	case err := <-received:
		// The peer closed, -n frames came, or reading failed: nothing
		// more to send. A write that failed on the closing connection
		// is no news; a bad input or a frame over -max is.
		var netErr *net.OpError
		if serr := stopSending(); err == nil && serr != nil &&
			!errors.Is(serr, net.ErrClosed) && !errors.As(serr, &netErr) {
			err = serr
		}
		return err
	case err := <-sent:
		if err != nil {
			conn.Close()
			<-received
			return err
		}
		select {
		case err := <-received:
			return err
		case <-ctx.Done():
		}
	case <-ctx.Done():
		stopSending()
	}
	// Ctrl-C: the user ends the session, which is a clean end.
	log.printf("interrupted: closing the connection to %s", cfg.addr)
	conn.Close()
	<-received
	return nil
}

// input is one message of the input, or the error that ended it (io.EOF
// at its end).
type input struct {
	msg []byte
	err error
}

// readInput sends every input message on msgs, and then the error that
// ended the input, until quit is closed. It is the one goroutine that may
// outlive its caller, blocked in a Read of stdin (see run); it touches
// nothing but in and msgs.
func readInput(in msgReader, msgs chan<- input, quit <-chan struct{}) {
	for {
		msg, err := in.next()
		select {
		case msgs <- input{msg, err}:
		case <-quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// dial connects to cfg.addr within -timeout, over TLS when tlsCfg is set.
func dial(ctx context.Context, cfg *config, tlsCfg *tls.Config) (net.Conn, error) {
	nd := &net.Dialer{Timeout: cfg.timeout}
	var nc net.Conn
	var err error
	if tlsCfg != nil {
		nc, err = (&tls.Dialer{NetDialer: nd, Config: tlsCfg}).DialContext(ctx, "tcp", cfg.addr)
	} else {
		nc, err = nd.DialContext(ctx, "tcp", cfg.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.addr, err)
	}
	return nc, nil
}

// sendAll sends every input message as one frame; at the end of the input
// it half-closes the connection and starts the -timeout on reading. It
// returns nil once quit is closed.
func sendAll(conn *framed.Conn, msgs <-chan input, quit <-chan struct{}, timeout time.Duration, inputDone *atomic.Bool, log *logger) error {
	for i := 1; ; i++ {
		var in input
		select {
		case in = <-msgs:
		case <-quit:
			return nil
		}
		if in.err == io.EOF {
			if err := conn.CloseWrite(); err != nil {
				return fmt.Errorf("half-close after the input: %w", err)
			}
			log.printf("input ended after %d messages: half-closed", i-1)
			inputDone.Store(true)
			if timeout > 0 {
				conn.SetReadDeadline(time.Now().Add(timeout))
			}
			return nil
		}
		if in.err != nil {
			return in.err
		}
		if err := conn.WriteFrame(in.msg); err != nil {
			return fmt.Errorf("send message %d: %w", i, plain(err))
		}
		log.printf("sent %d bytes", len(in.msg))
	}
}

// receiveAll prints every frame received until the peer closes the
// connection or -n frames have come.
func receiveAll(conn *framed.Conn, out *msgWriter, cfg *config, inputDone *atomic.Bool, log *logger) error {
	for got := 0; cfg.n == 0 || got < cfg.n; {
		frame, err := conn.ReadFrame()
		switch {
		case err == io.EOF && cfg.n > 0:
			return fmt.Errorf("%s closed the connection after %d of %d frames (-n)", cfg.addr, got, cfg.n)
		case err == io.EOF:
			log.printf("%s closed the connection after %d frames", cfg.addr, got)
			return nil
		case isTimeout(err):
			return fmt.Errorf("no frame from %s within %v (-timeout)", cfg.addr, cfg.timeout)
		case err != nil:
			return fmt.Errorf("read from %s: %w", cfg.addr, plain(err))
		}
		got++
		log.printf("received %d bytes", len(frame))
		if err := out.write(frame); err != nil {
			return err
		}
		if cfg.timeout > 0 && inputDone.Load() {
			conn.SetReadDeadline(time.Now().Add(cfg.timeout))
		}
	}
	return nil
}

// request is -req mode: one message out, one reply printed, all within
// -timeout.
func request(ctx context.Context, cfg *config, in msgReader, out *msgWriter, log *logger) error {
	msg, err := in.next()
	if err == io.EOF {
		return errors.New("no message in the input to send")
	}
	if err != nil {
		return err
	}
	tlsCfg, err := cfg.tls.client(log)
	if err != nil {
		return err
	}
	if cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
	}
	d := &framed.Dialer{TLSConfig: tlsCfg, Format: cfg.format, WriteTimeout: cfg.timeout, Probes: cfg.probes}
	client, err := d.Dial(ctx, cfg.req)
	if err != nil {
		return explainCtx(ctx, cfg, fmt.Errorf("connect to %s: %w", cfg.req, err))
	}
	defer client.Close()
	log.printf("connected to %s, format %+v; sending %d bytes", cfg.req, cfg.format, len(msg))
	reply, err := client.Request(ctx, msg)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && ctx.Err() == nil {
			return fmt.Errorf("%s closed the connection without a reply", cfg.req)
		}
		return explainCtx(ctx, cfg, fmt.Errorf("request to %s: %w", cfg.req, plain(err)))
	}
	log.printf("received %d bytes", len(reply))
	return out.write(reply)
}

// explainCtx words err for a ctx that ended: by -timeout or by Ctrl-C.
func explainCtx(ctx context.Context, cfg *config, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("no reply from %s within %v (-timeout)", cfg.req, cfg.timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted before the reply from %s", cfg.req)
	}
	return err
}
