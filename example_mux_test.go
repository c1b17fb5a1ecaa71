package framed_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"

	"github.com/framed-go/framed"
)

// A zinx-style server: each packet is a msgID (u32), the data's length
// (u32) and the data, big-endian. A frame is the msgID followed by the
// data, and the Mux routes it by the msgID. Each reply carries the
// request's msgID and a new body. A msgID with no route ends the
// connection once the replies owed are sent.
func ExampleMux() {
	zinx := framed.Format{LengthOffset: 4, BigEndian: true}
	mux := &framed.Mux{Key: framed.Key{BigEndian: true}} // 4 bytes at offset 0
	mux.HandleFunc(1, func(ctx context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], []byte("pong")) // the request's msgID, a new body
	})
	mux.HandleFunc(2, func(ctx context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], bytes.ToUpper(frame[4:]))
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &framed.Server{Format: zinx, Handler: mux}
	go srv.Serve(ln)

	ctx := context.Background()
	client, err := (&framed.Dialer{Format: zinx}).Dial(ctx, ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []uint32{1, 2, 9} {
		reply, err := client.Request(ctx, append(binary.BigEndian.AppendUint32(nil, id), "hello"...))
		if err != nil {
			fmt.Printf("msgID %d: %v\n", id, err)
			continue
		}
		fmt.Printf("msgID %d: %s\n", binary.BigEndian.Uint32(reply), reply[4:])
	}
	client.Close()
	srv.Shutdown(ctx) // returns once every connection is gone, and counted
	fmt.Println("unrouted:", srv.Stats().Unrouted)
	// Output:
	// msgID 1: pong
	// msgID 2: HELLO
	// msgID 9: framed: request outcome unknown: framed: connection closed by peer: unexpected EOF
	// unrouted: 1
}

// A NotFound handler that answers a msgID with no route with an error of
// the protocol's own, and keeps the connection.
func ExampleMux_notFound() {
	mux := &framed.Mux{Key: framed.Key{BigEndian: true}}
	mux.HandleFunc(1, func(ctx context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], []byte("pong"))
	})
	mux.NotFound = framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
		if len(frame) < 4 {
			return &framed.UnroutedError{NoKey: true, Size: len(frame)} // no msgID to answer with
		}
		return c.WriteFrameParts(frame[:4], fmt.Appendf(nil, "error: no msgID %d", binary.BigEndian.Uint32(frame)))
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	zinx := framed.Format{LengthOffset: 4, BigEndian: true}
	srv := &framed.Server{Format: zinx, Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	client, err := (&framed.Dialer{Format: zinx}).Dial(ctx, ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	for _, id := range []uint32{9, 1} {
		reply, err := client.Request(ctx, binary.BigEndian.AppendUint32(nil, id))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("msgID %d: %s\n", binary.BigEndian.Uint32(reply), reply[4:])
	}
	// Output:
	// msgID 9: error: no msgID 9
	// msgID 1: pong
}

// logKeys is a Middleware that prints the key of every frame it sees.
func logKeys(key framed.Key) framed.Middleware {
	return func(next framed.Handler) framed.Handler {
		return framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			k, _ := key.Read(frame)
			fmt.Println("frame with key", k)
			return next.ServeFrame(ctx, c, frame)
		})
	}
}

// requireBody is a Middleware that refuses a frame with nothing after its
// 1-byte key.
func requireBody(next framed.Handler) framed.Handler {
	return framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
		if len(frame) < 2 {
			return fmt.Errorf("key %d needs a body", frame[0])
		}
		return next.ServeFrame(ctx, c, frame)
	})
}

// Middleware wraps the whole Mux and one route alike. Here the Handler is
// called directly, as a Server calls it for each frame.
func ExampleChain() {
	mux := &framed.Mux{Key: framed.Key{Size: 1}}
	show := func(ctx context.Context, c *framed.Conn, frame []byte) error {
		fmt.Printf("route %d: %q\n", frame[0], frame[1:])
		return nil
	}
	mux.HandleFunc(1, show)
	mux.Handle(2, framed.Chain(requireBody)(framed.HandlerFunc(show)))
	h := framed.Chain(logKeys(mux.Key))(mux) // every frame, whichever route

	for _, frame := range [][]byte{{1}, {2, 'b'}, {2}} {
		if err := h.ServeFrame(context.Background(), nil, frame); err != nil {
			fmt.Println("error:", err)
		}
	}
	// Output:
	// frame with key 1
	// route 1: ""
	// frame with key 2
	// route 2: "b"
	// frame with key 2
	// error: key 2 needs a body
}

func ExampleConn_WriteFrameParts() {
	a, b := net.Pipe() // a stands for the server's connection, b for its peer
	defer b.Close()
	zinx := framed.Format{LengthOffset: 4, BigEndian: true}
	c := framed.NewConn(a, framed.ConnConfig{Format: zinx})
	defer c.Close()

	msgID := []byte{0, 0, 0, 7}
	if err := c.WriteFrameParts(msgID, []byte("body")); err != nil {
		log.Fatal(err)
	}
	wire := make([]byte, 12)
	if _, err := io.ReadFull(b, wire); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x\n", wire) // msgID, then the length field, then the body
	// Output:
	// 00 00 00 07 00 00 00 04 62 6f 64 79
}
