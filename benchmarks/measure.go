package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits bound one run of a workload, in time and in frames.
type Limits struct {
	Dur       time.Duration // stop starting batches after this long
	MaxFrames int64         // or after this many frames
}

// Sample is one run of one workload over one implementation.
type Sample struct {
	Frames   int64
	Elapsed  time.Duration
	Allocs   uint64 // heap allocations in this process, client and server
	Syscalls int64  // read and write system calls of this process, client and server; -1 if unknown
	Writes   int64  // the write system calls among them; -1 if unknown
	P50, P99 time.Duration
	CPU      time.Duration // user and system CPU time of this process, client and server
}

func (s Sample) FramesPerSec() float64 { return float64(s.Frames) / s.Elapsed.Seconds() }

// measure runs w over im once: it opens a session, runs batches until the
// time or frame limit, and finishes it, counting what the whole process
// allocated and how many read and write system calls it made meanwhile.
//
// It fails if the run leaves a goroutine behind, so that no run can slow
// down the ones after it.
func measure(w *Workload, im Impl, lim Limits) (Sample, error) {
	goroutines := runtime.NumGoroutine()
	deadline := time.Now().Add(lim.Dur + sinkTimeout)
	s, err := w.open(w, im, deadline)
	if err != nil {
		return Sample{}, err
	}
	smp, err := drive(s, w.Batch, lim)
	if cerr := s.close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = noneLeft(goroutines)
	}
	return smp, err
}

// noneLeft waits briefly until no more than n goroutines run.
func noneLeft(n int) error {
	for range 100 {
		if runtime.NumGoroutine() <= n {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("bench: %d goroutines left behind", runtime.NumGoroutine()-n)
}

func drive(s session, batch int, lim Limits) (Sample, error) {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	r0, w0, ioErr := procIO()
	cpu0 := cpuTime()
	start := time.Now()
	var n int64
	for n < lim.MaxFrames && time.Since(start) < lim.Dur {
		if err := s.batch(batch); err != nil {
			return Sample{}, err
		}
		n += int64(batch)
	}
	frames, end, err := s.finish()
	if err != nil {
		return Sample{}, err
	}
	cpu1 := cpuTime()
	r1, w1, ioErr1 := procIO()
	runtime.ReadMemStats(&m1)
	smp := Sample{
		Frames:   frames,
		Elapsed:  end.Sub(start),
		Allocs:   m1.Mallocs - m0.Mallocs,
		Syscalls: (r1 - r0) + (w1 - w0),
		Writes:   w1 - w0,
		CPU:      cpu1 - cpu0,
	}
	if ioErr != nil || ioErr1 != nil {
		smp.Syscalls, smp.Writes = -1, -1
	}
	if ls, ok := s.(latencySession); ok {
		smp.P50, smp.P99 = percentiles(ls.latencies())
	}
	return smp, nil
}

// procIO returns the read and write system calls this process has made, as
// /proc/self/io counts them (syscr, syscw: read(2), write(2), writev(2) and
// their kin, which is what Go's net package and gnet use on sockets).
func procIO() (reads, writes int64, err error) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes, sc.Err()
}

func percentiles(lats []time.Duration) (p50, p99 time.Duration) {
	if len(lats) == 0 {
		return 0, 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

// median returns the median of xs, the mean of the middle two when their
// number is even.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// machine describes where the numbers come from.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s %s/%s, GOMAXPROCS=%d, %d CPUs (%s)%s",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), cpu, kernel)
}

// loadAverage returns the 1-minute load average, or "unknown". Other
// processes competing for the CPUs move every figure here: the report
// shows the load before and after.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}
