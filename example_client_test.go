package framed_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/framed-go/framed"
)

func ExampleClient_Request() {
	// A peer that echoes frames, on a loopback port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoOne(ln)

	ctx := context.Background()
	c, err := framed.Dial(ctx, ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for _, msg := range []string{"hello", "world"} {
		reply, err := c.Request(ctx, []byte(msg))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", reply)
	}
	// Output:
	// hello
	// world
}

// echoOne accepts one connection and echoes its frames until it closes.
func echoOne(ln net.Listener) {
	nc, err := ln.Accept()
	if err != nil {
		return
	}
	c := framed.NewConn(nc, framed.ConnConfig{})
	defer c.Close()
	for {
		frame, err := c.ReadFrame()
		if err != nil {
			return
		}
		if err := c.WriteFrame(frame); err != nil {
			return
		}
	}
}

// Sending many messages to a peer that answers each one: receive on
// another goroutine while sending. Sending all of them first and
// receiving afterwards deadlocks once the peer's replies fill the
// buffers, since the peer then stops reading.
func ExampleClient_Send() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go echoOne(ln)

	ctx := context.Background()
	c, err := framed.Dial(ctx, ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	const n = 10000
	received := make(chan int)
	go func() {
		total := 0
		for range n {
			reply, err := c.Receive(ctx)
			if err != nil {
				break
			}
			total += len(reply)
		}
		received <- total
	}()
	msg := make([]byte, 1024)
	for range n {
		if err := c.Send(ctx, msg); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(<-received, "bytes echoed")
	// Output:
	// 10240000 bytes echoed
}
