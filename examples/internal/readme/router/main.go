package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/framed-go/framed"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// zinx's packets: msgID u32, length u32, data. A frame is the msgID, then the data.
	zinx := framed.Format{LengthOffset: 4, BigEndian: true}
	mux := &framed.Mux{Key: framed.Key{BigEndian: true}} // route by the msgID: a u32 at offset 0
	mux.HandleFunc(1, func(ctx context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], []byte("pong")) // the request's msgID, a new body
	})
	mux.HandleFunc(2, func(ctx context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrameParts(frame[:4], bytes.ToUpper(frame[4:]))
	})
	// Any other msgID ends the connection once the replies owed are sent.

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &framed.Server{Format: zinx, Handler: mux}
	go srv.Serve(ln)
	defer srv.Shutdown(ctx)

	client, err := (&framed.Dialer{Format: zinx}).Dial(ctx, ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	reply, err := client.Request(ctx, append(binary.BigEndian.AppendUint32(nil, 2), "hello"...))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d %s\n", binary.BigEndian.Uint32(reply), reply[4:]) // 2 HELLO
}
