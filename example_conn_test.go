package framed_test

import (
	"fmt"
	"net"

	"github.com/framed-go/framed"
)

// A client and an echo server on the two ends of an in-memory connection.
// However the bytes are cut on the way, each ReadFrame returns one whole
// message, empty ones included.
func ExampleConn() {
	c1, c2 := net.Pipe()
	client := framed.NewConn(c1, framed.ConnConfig{})
	server := framed.NewConn(c2, framed.ConnConfig{})

	done := make(chan error, 1)
	go func() {
		defer server.Close()
		for {
			msg, err := server.ReadFrame()
			if err != nil {
				done <- err // io.EOF: the client closed between frames
				return
			}
			// msg is valid until the next ReadFrame; WriteFrame has
			// copied or written it by the time it returns.
			if err := server.WriteFrame(msg); err != nil {
				done <- err
				return
			}
		}
	}()

	for _, msg := range []string{"hello", "", "world"} {
		if err := client.WriteFrame([]byte(msg)); err != nil {
			fmt.Println("write:", err)
			return
		}
		reply, err := client.ReadFrame()
		if err != nil {
			fmt.Println("read:", err)
			return
		}
		fmt.Printf("%q\n", reply)
	}
	client.Close()
	fmt.Println("server stopped:", <-done)
	// Output:
	// "hello"
	// ""
	// "world"
	// server stopped: EOF
}
