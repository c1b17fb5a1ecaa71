package framed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/framed-go/framed"
)

// A UDPServer with a handler of its own; the zero value would echo.
func ExampleUDPServer() {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &framed.UDPServer{
		Handler: framed.UDPHandlerFunc(func(_ context.Context, req []byte, _ net.Addr) ([]byte, error) {
			return bytes.ToUpper(req), nil
		}),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(conn) }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := framed.ExchangeUDP(ctx, conn.LocalAddr().String(), []byte("hello"))
	fmt.Printf("%s %v\n", reply, err)

	fmt.Println(srv.Shutdown(ctx))
	fmt.Println(<-served)
	// Output:
	// HELLO <nil>
	// <nil>
	// framed: UDP server closed
}

// ExchangeUDP against an echo server; the context bounds the wait, since UDP
// may lose the request or the reply.
func ExampleExchangeUDP() {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	var echo framed.UDPServer
	served := make(chan error, 1)
	go func() { served <- echo.Serve(conn) }()
	defer func() {
		echo.Close()
		<-served
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	reply, err := framed.ExchangeUDP(ctx, conn.LocalAddr().String(), []byte("ping"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", reply)
	// Output: ping
}

// ExchangeUDP with nothing listening: the peer's host answers with an ICMP
// port unreachable, and the exchange ends at once instead of waiting out
// its context.
func ExampleExchangeUDP_refused() {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	addr := conn.LocalAddr().String()
	conn.Close() // now nothing listens at addr

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = framed.ExchangeUDP(ctx, addr, []byte("anyone?"))
	switch {
	case errors.Is(err, framed.ErrExchangeRefused):
		fmt.Println("nothing listens there")
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Println("no reply in time: lost, or the host does not say")
	default:
		fmt.Println(err)
	}
	// Output: nothing listens there
}
