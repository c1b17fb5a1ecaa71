// Command client talks to examples/router/server in zinx's packets: it
// sends a request for each of the server's three message IDs, prints the
// replies, and then sends one with a message ID the server has no route
// for, which ends the connection.
//
// A packet is a message ID (u32), the data's length (u32) and the data,
// big-endian: framed.Format{LengthOffset: 4, BigEndian: true}. A frame,
// as the Client sends and receives it, is the message ID followed by the
// data.
//
// Usage:
//
//	go run ./examples/router/server &
//	go run ./examples/router/client -addr 127.0.0.1:8888
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/framed-go/framed"
	"github.com/framed-go/framed/examples/internal/cli"
)

// zinx is zinx v1.2.6's packet: msgID u32, dataLen u32, data, big-endian.
var zinx = framed.Format{LengthOffset: 4, BigEndian: true, MaxFrameSize: 4 + 64<<10}

// unknownID is a message ID the server has no route for.
const unknownID = 99

// requests are what the client sends: the server's three routes, then a
// message ID it has none for.
var requests = []struct {
	id   uint32
	data string
}{
	{1, "ping"},
	{2, "hello, router"},
	{3, "stressed"},
	{unknownID, "anyone?"},
}

// errAnswered is a reply to the request the server has no route for.
var errAnswered = errors.New("the server answered a message ID it has no route for")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(cli.Exit(os.Stderr, "router-client", err))
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("router-client", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "router-client sends zinx-style packets to examples/router/server, one per message ID, and prints the replies.\n\nUsage: go run ./examples/router/client [flags]\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8888", "address of examples/router/server")
	timeout := fs.Duration("timeout", 10*time.Second, "how long the whole run may take")
	if err := cli.Parse(fs, args, 0); err != nil {
		return err
	}
	if *timeout <= 0 {
		return cli.Usagef(fs, "-timeout must be positive, not %v", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	client, err := (&framed.Dialer{Format: zinx}).Dial(ctx, *addr)
	if err != nil {
		return err
	}
	defer client.Close()
	for _, req := range requests {
		frame := append(binary.BigEndian.AppendUint32(nil, req.id), req.data...)
		reply, err := client.Request(ctx, frame)
		switch {
		case req.id == unknownID && errors.Is(err, io.ErrUnexpectedEOF):
			// The server ended the connection instead of answering: had it
			// dropped the frame in silence, this Request would wait for a
			// reply that never comes.
			fmt.Fprintf(stdout, "msgID %d %q -> no reply: the server has no route for it and closed the connection\n", req.id, req.data)
		case err != nil:
			return fmt.Errorf("msgID %d: %w", req.id, err)
		case req.id == unknownID:
			return fmt.Errorf("msgID %d: %w", req.id, errAnswered)
		default:
			fmt.Fprintf(stdout, "msgID %d %q -> msgID %d %q\n", req.id, req.data, binary.BigEndian.Uint32(reply), reply[4:])
		}
	}
	return nil
}
