package framed_test

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/framed-go/framed"
)

// benchFrames is how many frames one op of the write benchmarks sends,
// shared out among its writers, so that 1 and 8 writers do the same work
// per op and the cost of starting the writers is spread thin.
const benchFrames = 512

// BenchmarkConnWriteFrame sends 64-byte frames over loopback TCP from 1
// and from 8 goroutines at once, through a Conn and, for comparison,
// through the plain way: a mutex and one net.Conn.Write per frame. It
// reports the time and the network writes (system calls) per frame.
func BenchmarkConnWriteFrame(b *testing.B) {
	type sender struct {
		name string
		// start returns the function that writers call to send one
		// frame, and the function that ends the stream.
		start func(nc net.Conn) (send func(buf *[]byte, p []byte) error, stop func() error)
	}
	senders := []sender{
		{"framed", func(nc net.Conn) (func(*[]byte, []byte) error, func() error) {
			c := framed.NewConn(nc, framed.ConnConfig{})
			send := func(_ *[]byte, p []byte) error { return c.WriteFrame(p) }
			stop := func() error {
				if err := c.Flush(); err != nil {
					return err
				}
				return c.Close()
			}
			return send, stop
		}},
		{"mutex+write", func(nc net.Conn) (func(*[]byte, []byte) error, func() error) {
			var mu sync.Mutex
			send := func(buf *[]byte, p []byte) error {
				var err error
				if *buf, err = framed.AppendFrame((*buf)[:0], p); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				_, err = nc.Write(*buf)
				return err
			}
			return send, nc.Close
		}},
	}
	for _, s := range senders {
		for _, writers := range []int{1, 8} {
			b.Run(s.name+"/writers="+strconv.Itoa(writers), func(b *testing.B) {
				a, peer := tcpPair(b)
				cc := &countingConn{Conn: a}
				drained := make(chan error, 1)
				go func() {
					_, err := io.Copy(io.Discard, peer)
					drained <- err
				}()
				send, stop := s.start(cc)
				msg := make([]byte, 64)
				per := benchFrames / writers

				b.SetBytes(benchFrames * int64(len(msg)))
				b.ReportAllocs()
				ops := 0
				for b.Loop() {
					var wg sync.WaitGroup
					for range writers {
						wg.Go(func() {
							var buf []byte
							for range per {
								if err := send(&buf, msg); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					ops++
				}
				if err := stop(); err != nil {
					b.Fatal(err)
				}
				if err := <-drained; err != nil {
					b.Fatal(err)
				}
				frames := float64(ops * benchFrames)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/frames, "ns/frame")
				b.ReportMetric(float64(cc.writes.Load())/frames, "writes/frame")
			})
		}
	}
}

// BenchmarkConnReadFrame reads 64-byte frames over loopback TCP from a
// peer that keeps the connection full.
func BenchmarkConnReadFrame(b *testing.B) {
	raw, nc := tcpPair(b)
	c := framed.NewConn(nc, framed.ConnConfig{})
	msg := make([]byte, 64)
	var block []byte
	for range 1024 {
		block, _ = framed.AppendFrame(block, msg)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if _, err := raw.Write(block); err != nil {
				return // the reader closed
			}
		}
	}()

	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	raw.Close()
	<-stopped
}
