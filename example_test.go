package framed_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/framed-go/framed"
)

func ExampleEncode() {
	frame, err := framed.Encode([]byte("hello"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", frame)
	// Output:
	// 05 00 00 00 68 65 6c 6c 6f
}

func ExampleDecode() {
	// Two frames that arrived in one read: framed splits them again.
	stream := []byte("\x05\x00\x00\x00hello\x05\x00\x00\x00world")
	r := bufio.NewReader(bytes.NewReader(stream))
	for {
		msg, err := framed.Decode(r)
		if err == io.EOF {
			break // the stream ended between frames
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s\n", msg)
	}
	// Output:
	// hello
	// world
}

func ExampleDecode_errors() {
	for _, stream := range []string{
		"\x05\x00\x00\x00hel",  // cut inside the payload
		"\xff\xff\xff\xff",     // a negative length
		"\x01\x00\x40\x00data", // 4 MiB + 1, above the default limit
	} {
		_, err := framed.Decode(bufio.NewReader(bytes.NewReader([]byte(stream))))
		var tooLarge *framed.FrameTooLargeError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			fmt.Println("truncated:", err)
		case errors.Is(err, framed.ErrInvalidLength):
			fmt.Println("invalid:", err)
		case errors.As(err, &tooLarge):
			fmt.Println("too large:", tooLarge.Size, ">", tooLarge.Limit)
		}
	}
	// Output:
	// truncated: unexpected EOF
	// invalid: framed: invalid frame length
	// too large: 4194305 > 4194304
}

func ExampleAppendFrame() {
	// Build a batch of frames in one buffer, to send with one write.
	var batch []byte
	for _, msg := range []string{"a", "bc", ""} {
		var err error
		batch, err = framed.AppendFrame(batch, []byte(msg))
		if err != nil {
			panic(err)
		}
	}
	fmt.Printf("% x\n", batch)
	// Output:
	// 01 00 00 00 61 02 00 00 00 62 63 00 00 00 00
}

func ExampleFormat() {
	// DNS over TCP puts a 2-byte big-endian length before each message.
	dns := framed.Format{HeaderSize: 2, BigEndian: true}
	frame, err := dns.Encode([]byte("query"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x, limit %d\n", frame, dns.Limit())
	// Output:
	// 00 05 71 75 65 72 79, limit 65535
}

func ExampleReader() {
	var stream bytes.Buffer // stands in for a net.Conn
	for _, msg := range []string{"one", "two", "three"} {
		frame, _ := framed.Encode([]byte(msg))
		stream.Write(frame)
	}

	r := framed.NewReader(&stream, framed.Format{})
	for {
		msg, err := r.ReadFrame() // valid until the next ReadFrame
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s\n", msg)
	}
	// Output:
	// one
	// two
	// three
}

func ExampleWriter() {
	var conn bytes.Buffer // stands in for a net.Conn
	w := framed.NewWriter(&conn, framed.Format{})
	for _, msg := range []string{"ping", "pong"} {
		if err := w.WriteFrame([]byte(msg)); err != nil {
			panic(err)
		}
	}
	fmt.Println("buffered:", w.Buffered(), "sent:", conn.Len())
	if err := w.Flush(); err != nil { // both frames go out in one write
		panic(err)
	}
	fmt.Println("buffered:", w.Buffered(), "sent:", conn.Len())
	// Output:
	// buffered: 16 sent: 0
	// buffered: 0 sent: 16
}
