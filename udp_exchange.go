package framed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrExchangeRefused is returned by [ExchangeUDP] when the peer's host
// answered that nothing listens on the port: an ICMP port unreachable,
// which the system reports on the exchange's socket as ECONNREFUSED. The
// error matches both ErrExchangeRefused and [syscall.ECONNREFUSED]. It
// comes as soon as the ICMP message does, long before the exchange's
// timeout; a host that sends no such message (or a firewall that drops
// it) leaves the exchange to end with its ctx.
var ErrExchangeRefused = errors.New("framed: exchange refused (port unreachable)")

// ErrDatagramTooLarge is returned by [ExchangeUDP] for a message or a reply
// larger than a UDP datagram can carry: 65,507 bytes over IPv4, 65,527 over
// IPv6.
var ErrDatagramTooLarge = errors.New("framed: datagram too large")

// DefaultExchangeTimeout bounds [ExchangeUDP] when its ctx has no deadline:
// UDP may lose the request or the reply, and waiting for ever is never what
// a caller wants.
const DefaultExchangeTimeout = 5 * time.Second

// ExchangeUDP sends msg as one datagram to addr ("host:port") and returns the
// first reply that comes back from that address. Datagrams from any other
// address are ignored. It sends once and never retries: UDP may lose either
// datagram, so the caller decides whether to try again.
//
// The exchange is bounded by ctx, or by DefaultExchangeTimeout if ctx has no
// deadline; when ctx ends, the error matches ctx.Err(). When the peer's host
// reports that nothing listens at addr, the exchange ends at once with
// [ErrExchangeRefused]. A message or reply larger than a datagram can carry
// is [ErrDatagramTooLarge]. An empty host
// or an unspecified address (0.0.0.0, ::) means this host's loopback, as for
// [net.Dial]; a name is resolved with ctx and its first IPv4 address
// preferred.
//
// Each call uses its own socket and a receive buffer that holds any
// datagram, and may run concurrently with others.
func ExchangeUDP(ctx context.Context, addr string, msg []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultExchangeTimeout)
		defer cancel()
	}
	reply, err := exchangeUDP(ctx, addr, msg)
	switch {
	case err == nil:
		return reply, nil
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("framed: exchange with %s: %w: %w", addr, ErrExchangeRefused, syscall.ECONNREFUSED)
	}
	return nil, fmt.Errorf("framed: exchange with %s: %w", addr, err)
}

func exchangeUDP(ctx context.Context, addr string, msg []byte) ([]byte, error) {
	to, err := resolveUDP(ctx, addr)
	if err != nil {
		return nil, err
	}
	network, limit := "udp4", maxDatagramIPv4
	if to.Addr().Is6() {
		network, limit = "udp6", maxDatagram
	}
	if len(msg) > limit {
		return nil, fmt.Errorf("message of %d bytes: %w", len(msg), ErrDatagramTooLarge)
	}
	// A connected socket: the kernel passes on only datagrams from the
	// peer, and reports an ICMP port unreachable from its host as
	// ECONNREFUSED instead of leaving the read to wait for ctx.
	conn, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	expired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0)) // unblocks the read at once
		close(expired)
	})
	defer func() {
		if !stop() {
			<-expired
		}
	}()

	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, maxDatagram+1)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	if n > maxDatagram {
		return nil, ErrDatagramTooLarge
	}
	return bytes.Clone(buf[:n]), nil
}

// resolveUDP turns "host:port" into the address ExchangeUDP sends to.
func resolveUDP(ctx context.Context, addr string) (netip.AddrPort, error) {
	host, service, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, "udp", service)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case host == "":
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case err != nil:
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return netip.AddrPort{}, err
		}
		if len(ips) == 0 {
			return netip.AddrPort{}, fmt.Errorf("no address for %s", host)
		}
		ip = ips[0]
		for _, a := range ips {
			if a.Unmap().Is4() {
				ip = a
				break
			}
		}
	}
	ip = ip.Unmap()
	switch {
	case ip.IsUnspecified() && ip.Is4():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case ip.IsUnspecified():
		ip = netip.IPv6Loopback()
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}
