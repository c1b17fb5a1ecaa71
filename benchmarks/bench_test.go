package main

import (
	"testing"
	"time"
)

// The Go benchmarks run the program's workloads under testing.B, one
// sub-benchmark per implementation (BenchmarkOneWay64/framed, ...), for
// benchstat and for profiles:
//
//	go test -run '^$' -bench . -count 6 > new.txt && benchstat new.txt
//	go test -run '^$' -bench 'OneWay64/framed$' -cpuprofile cpu.out
//
// An op is one frame where the traffic allows it (frames/op is reported
// where an op is more), so ns/op is the time per frame; allocs/op counts
// both ends, which share the process. frames/s and, for ping-pong, p50-µs
// and p99-µs are reported too. The one-way benchmarks stop the clock when
// the client has handed its last frame over, not when the sink has read
// it: the program's figures are the ones to quote.

func BenchmarkOneWay64(b *testing.B)      { benchWorkload(b, "oneway64") }
func BenchmarkOneWay1K(b *testing.B)      { benchWorkload(b, "oneway1k") }
func BenchmarkEcho64(b *testing.B)        { benchWorkload(b, "echo64") }
func BenchmarkEcho64Conns64(b *testing.B) { benchWorkload(b, "echo64x64") }
func BenchmarkPingPong64(b *testing.B)    { benchWorkload(b, "pingpong") }
func BenchmarkRequests64(b *testing.B)    { benchWorkload(b, "requests64") }
func BenchmarkEcho1M(b *testing.B)        { benchWorkload(b, "echo1m") }
func BenchmarkWriters8(b *testing.B)      { benchWorkload(b, "writers8") }
func BenchmarkServer64(b *testing.B)      { benchWorkload(b, "server64") }
func BenchmarkServer1K(b *testing.B)      { benchWorkload(b, "server1k") }

func benchWorkload(b *testing.B, name string) {
	w, ok := workloadByName(name)
	if !ok {
		b.Fatalf("no workload %q", name)
	}
	for _, im := range w.Impls {
		b.Run(im.Key, func(b *testing.B) {
			ops := w.OpFrames
			s, err := w.open(w, im, time.Now().Add(10*time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			defer s.close()
			b.SetBytes(int64(ops * w.Size))
			b.ReportAllocs()
			for b.Loop() {
				if err := s.batch(ops); err != nil {
					b.Fatal(err)
				}
			}
			if _, _, err := s.finish(); err != nil {
				b.Fatal(err)
			}
			frames := float64(b.N) * float64(ops)
			b.ReportMetric(frames/b.Elapsed().Seconds(), "frames/s")
			if ops > 1 {
				b.ReportMetric(float64(ops), "frames/op")
			}
			if ls, ok := s.(latencySession); ok && w.LowerIsBetter {
				p50, p99 := percentiles(ls.latencies())
				b.ReportMetric(float64(p50.Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-µs")
			}
		})
	}
}
