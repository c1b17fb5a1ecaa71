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

	ln, err := net.Listen("tcp", "127.0.0.1:0") // 端口 0：任选一个空闲端口
	if err != nil {
		log.Fatal(err)
	}
	srv := &framed.Server{
		Handler: framed.HandlerFunc(func(ctx context.Context, c *framed.Conn, frame []byte) error {
			return c.WriteFrame(bytes.ToUpper(frame)) // frame 只在本次调用期间有效
		}),
		FrameTimeout: 10 * time.Second, // 一帧从第一个字节起 10 秒内必须收完（防 slowloris）
		IdleTimeout:  5 * time.Minute,  // 下一帧必须在 5 分钟内开始
	}
	go srv.Serve(ln) // Shutdown 或 Close 之后返回 framed.ErrServerClosed
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
