package framed_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExchangeUDPIgnoresOtherSources(t *testing.T) {
	peer := listenUDP(t, "udp", "127.0.0.1:0")
	decoy := listenUDP(t, "udp", "127.0.0.1:0")
	require.NoError(t, peer.SetDeadline(time.Now().Add(5*time.Second)))

	answered := make(chan error, 1)
	go func() {
		_, from, err := peer.ReadFrom(make([]byte, 64))
		if err == nil {
			_, err = decoy.WriteTo([]byte("decoy"), from)
		}
		if err == nil {
			_, err = peer.WriteTo([]byte("real"), from)
		}
		answered <- err
	}()
	got := exchange(t, peer.LocalAddr().String(), []byte("ping"))
	require.NoError(t, <-answered)
	assert.Equal(t, "real", string(got))
}

func TestExchangeUDPAddressForms(t *testing.T) {
	var srv framed.UDPServer
	addr := startUDP(t, &srv)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)

	for _, give := range []string{addr, ":" + port, "0.0.0.0:" + port, "localhost:" + port} {
		t.Run(give, func(t *testing.T) {
			assert.Equal(t, give, string(exchange(t, give, []byte(give))))
		})
	}
}

func TestExchangeUDPContextEnds(t *testing.T) {
	tests := []struct {
		name       string
		cancelOnRx bool // cancel once the peer has the request, instead of a deadline
		want       error
	}{
		{name: "deadline", want: context.DeadlineExceeded},
		{name: "cancel", cancelOnRx: true, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			silent := listenUDP(t, "udp", "127.0.0.1:0")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if !tt.cancelOnRx {
				var stop context.CancelFunc
				ctx, stop = context.WithTimeout(ctx, 100*time.Millisecond)
				defer stop()
			}
			received := make(chan struct{})
			go func() {
				defer close(received)
				_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, _, err := silent.ReadFrom(make([]byte, 64)); err == nil && tt.cancelOnRx {
					cancel()
				}
			}()

			start := time.Now()
			got, err := framed.ExchangeUDP(ctx, silent.LocalAddr().String(), []byte("anyone?"))
			elapsed := time.Since(start)
			<-received
			assert.ErrorIs(t, err, tt.want)
			assert.Nil(t, got)
			assert.Less(t, elapsed, 2*time.Second, "the exchange outlived its context")
		})
	}
}

func TestExchangeUDPRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		addr string
		msg  []byte
		want error
	}{
		{name: "message over 65,507 bytes to IPv4", addr: "127.0.0.1:9", msg: make([]byte, 65508), want: framed.ErrDatagramTooLarge},
		{name: "message over 65,527 bytes to IPv6", addr: "[::1]:9", msg: make([]byte, 65528), want: framed.ErrDatagramTooLarge},
		{name: "no port", addr: "127.0.0.1", msg: []byte("x")},
		{name: "bad port", addr: "127.0.0.1:nope", msg: []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			got, err := framed.ExchangeUDP(ctx, tt.addr, tt.msg)
			require.Error(t, err)
			assert.Nil(t, got)
			assert.Contains(t, err.Error(), "framed: exchange with "+tt.addr)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
		})
	}
}

func TestExchangeUDPReportsRefusalAtOnce(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			// A port that was just free: nothing listens on it now.
			host := "127.0.0.1"
			if network == "udp6" {
				host = "::1"
			}
			pc, err := net.ListenPacket(network, net.JoinHostPort(host, "0"))
			if err != nil {
				t.Skipf("no %s loopback here: %v", network, err)
			}
			addr := pc.LocalAddr().String()
			require.NoError(t, pc.Close())

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			got, err := framed.ExchangeUDP(ctx, addr, []byte("anyone?"))
			elapsed := time.Since(start)
			assert.Nil(t, got)
			assert.ErrorIs(t, err, framed.ErrExchangeRefused)
			assert.ErrorIs(t, err, syscall.ECONNREFUSED)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorContains(t, err, "framed: exchange with "+addr)
			assert.Less(t, elapsed, time.Second, "the refusal waited for the timeout")
		})
	}
}
