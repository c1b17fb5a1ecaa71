package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/framed-go/framed"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0") // port 0: any free port
	if err != nil {
		log.Fatal(err)
	}
	srv := &framed.Server{
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			return c.WriteFrame(bytes.ToUpper(frame)) // frame is valid during this call only
		}),
		FrameTimeout: 10 * time.Second, // a frame must arrive within 10 s of its first byte
		IdleTimeout:  5 * time.Minute,  // and the next one must start within 5 minutes
	}
	go srv.Serve(ln) // returns framed.ErrServerClosed after Shutdown or Close
	defer srv.Shutdown(ctx)

	client, err := framed.Dial(ctx, ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	reply, err := client.Request(ctx, []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", reply) // HELLO
}
