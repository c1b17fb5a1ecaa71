package framed_test

import (
	"bufio"
	"fmt"
	"io"
	"testing"

	"github.com/framed-go/framed"
)

var benchSizes = []int{64, 4 << 10, 1 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func BenchmarkAppendFrame(b *testing.B) {
	for _, n := range benchSizes[:2] {
		b.Run(sizeName(n), func(b *testing.B) {
			msg := payload(1, n)
			dst := make([]byte, 0, 16+n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = framed.AppendFrame(dst[:0], msg)
			}
		})
	}
}

// framesPerCycle is how many frames a benchmark's repeating stream holds:
// enough that small frames arrive many to a read, as they do on a busy
// connection.
func framesPerCycle(n int) int { return max(1, (256<<10)/n) }

func BenchmarkReadFrame(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			src := &cycleReader{stream: repeatedFrames(b, framed.Format{}, n, framesPerCycle(n))}
			r := framed.NewReader(src, framed.Format{})
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.ReadFrame(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			src := &cycleReader{stream: repeatedFrames(b, framed.Format{}, n, framesPerCycle(n))}
			r := bufio.NewReaderSize(src, framed.DefaultReadBufferSize)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := framed.Decode(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriteFrame(b *testing.B) {
	for _, n := range benchSizes[:2] {
		b.Run(sizeName(n), func(b *testing.B) {
			msg := payload(1, n)
			w := framed.NewWriter(io.Discard, framed.Format{})
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.WriteFrame(msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
