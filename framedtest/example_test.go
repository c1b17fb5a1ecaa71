package framedtest_test

import (
	"bytes"
	"context"
	"fmt"
	"net"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/framedtest"
)

func ExampleNewServer() {
	srv := framedtest.NewServer(framed.HandlerFunc(func(_ context.Context, c *framed.Conn, frame []byte) error {
		return c.WriteFrame(bytes.ToUpper(frame))
	}))
	defer srv.Close()

	ctx := context.Background()
	client, err := srv.Dial(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	reply, err := client.Request(ctx, []byte("hello"))
	fmt.Println(string(reply), err)
	// Output: HELLO <nil>
}

func ExampleNewFormatServer() {
	// zinx's layout: msgID u32, length u32, data, big-endian. A frame is
	// the msgID followed by the data.
	zinx := framed.Format{LengthOffset: 4, BigEndian: true}
	srv := framedtest.NewFormatServer(zinx, nil) // nil: echo
	defer srv.Close()

	ctx := context.Background()
	client, err := srv.Dial(ctx) // speaks the server's Format
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	reply, err := client.Request(ctx, []byte("\x00\x00\x00\x01ping"))
	fmt.Printf("%q %v\n", reply, err)
	// Output: "\x00\x00\x00\x01ping" <nil>
}

func ExampleListener() {
	srv := framedtest.NewUnstartedServer(nil) // nil: echo
	srv.Listener = framedtest.NewListener(0)  // in memory: no port
	srv.Start()
	defer srv.Close()

	ctx := context.Background()
	client, err := srv.Dial(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	reply, err := client.Request(ctx, []byte("no network"))
	fmt.Println(string(reply), err)
	// Output: no network <nil>
}

func ExampleNewProxy() {
	srv := framedtest.NewServer(nil)
	defer srv.Close()
	proxy := framedtest.NewProxy(srv.Addr)
	defer proxy.Close()
	proxy.Up.Slice(1)         // the server reads requests one byte at a time
	proxy.Down.SliceRandom(3) // replies come back in pieces of 1 to 3 bytes

	ctx := context.Background()
	client, err := proxy.Dial(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	for _, msg := range []string{"sticky", "packets"} {
		reply, err := client.Request(ctx, []byte(msg))
		fmt.Println(string(reply), err)
	}
	// Output:
	// sticky <nil>
	// packets <nil>
}

func ExampleWrapConn() {
	a, b := net.Pipe()
	fc := framedtest.WrapConn(a)
	fc.In.Slice(2) // every Read returns at most 2 bytes
	defer fc.Close()
	defer b.Close()

	go b.Write([]byte("abcde"))
	buf := make([]byte, 10)
	for range 3 {
		n, _ := fc.Read(buf)
		fmt.Printf("%q\n", buf[:n])
	}
	// Output:
	// "ab"
	// "cd"
	// "e"
}
