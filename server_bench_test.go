package framed_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/framed-go/framed"
)

// BenchmarkServerSink measures the server's own per-frame path: a feeder
// that costs next to nothing writes pre-encoded frames, 1,024 per write,
// over loopback TCP into a Server whose handler only counts them. An op is
// one write of 1,024 frames; ns/frame is the time from the first write to
// the server's having served the last frame, per frame. The mux16 rows
// route the frames through a Mux of 16 routes keyed by a 4-byte ID, the
// frames' IDs taking each of the 16 in turn. With probes=on the Server has
// Probes on, with an Idle that never comes: the cost of looking at each
// frame for a probe (issue 23: within 2%).
//
//	go test -run '^$' -bench ServerSink -count 6 -cpuprofile cpu.out
func BenchmarkServerSink(b *testing.B) {
	for _, bb := range []struct {
		size int
		mux  bool
	}{{64, false}, {1024, false}, {64, true}} {
		name := "size=" + strconv.Itoa(bb.size)
		if bb.mux {
			name = "mux16," + name
		}
		for _, probes := range []bool{false, true} {
			b.Run(name+"/probes="+onOff(probes), func(b *testing.B) {
				benchmarkServerSink(b, bb.size, bb.mux, probes)
			})
		}
	}
}

// onOff names a setting in a benchmark's name.
func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func benchmarkServerSink(b *testing.B, size int, mux, probes bool) {
	const perWrite = 1024
	var served int64 // written by the connection's goroutine alone, read after closed
	closed := make(chan struct{})
	var h framed.Handler = framed.HandlerFunc(func(_ context.Context, _ *framed.Conn, p []byte) error {
		served++
		return nil
	})
	if mux {
		h = muxOf16(&served)
	}
	s := &framed.Server{
		Handler: h,
		ConnState: func(_ *framed.Conn, st framed.ConnState) {
			if st == framed.StateClosed {
				close(closed)
			}
		},
	}
	if probes {
		s.Probes.Idle = time.Hour
	}
	r := serve(b, s)
	nc := dialRaw(b, r.addr)
	var buf []byte
	p := make([]byte, size)
	for i := range perWrite {
		p[0] = byte(i % 16) // the little-endian ID of mux16's routes
		var err error
		if buf, err = framed.AppendFrame(buf, p); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(perWrite * size))
	b.ReportAllocs()
	var sent int64
	start := time.Now()
	for b.Loop() {
		if _, err := nc.Write(buf); err != nil {
			b.Fatal(err)
		}
		sent += perWrite
	}
	if err := nc.CloseWrite(); err != nil {
		b.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(testTimeout):
		b.Fatal("the server did not close the connection")
	}
	if served != sent {
		b.Fatalf("served %d frames, sent %d", served, sent)
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(sent), "ns/frame")
}
