package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Results holds every sample of a program run.
type Results struct {
	cfg    Config
	load   [2]string                       // the load average before and after the runs
	runs   map[string]map[string][]*Sample // workload, implementation, repetition
	idle   map[string][]float64            // row name: bytes per connection, one per repetition
	allocs map[string][]float64            // implementation: server allocations per frame
	errs   []string
}

func newResults(cfg Config) *Results {
	return &Results{
		cfg:    cfg,
		runs:   map[string]map[string][]*Sample{},
		idle:   map[string][]float64{},
		allocs: map[string][]float64{},
	}
}

func (r *Results) add(workload, impl string, rep int, s Sample) {
	m := r.runs[workload]
	if m == nil {
		m = map[string][]*Sample{}
		r.runs[workload] = m
	}
	if m[impl] == nil {
		m[impl] = make([]*Sample, r.cfg.Reps)
	}
	m[impl][rep] = &s
}

// fail records a run that failed; rep 0 is the warm-up pass.
func (r *Results) fail(workload, impl string, rep int, err error) {
	r.errs = append(r.errs, fmt.Sprintf("%s / %s, repetition %d: %v", workload, impl, rep, err))
}

// ratios returns, for each repetition where both ran, impl's figure over
// the baseline's: frames/s, or p50 latency for latency workloads.
func (r *Results) ratios(w *Workload, impl, base string) []float64 {
	var out []float64
	for i, s := range r.runs[w.Name][impl] {
		b := r.runs[w.Name][base]
		if s == nil || b == nil || b[i] == nil {
			continue
		}
		if w.LowerIsBetter {
			out = append(out, float64(s.P50)/float64(b[i].P50))
		} else {
			out = append(out, s.FramesPerSec()/b[i].FramesPerSec())
		}
	}
	return out
}

// each returns f of every sample of impl on w.
func (r *Results) each(w, impl string, f func(*Sample) float64) []float64 {
	var out []float64
	for _, s := range r.runs[w][impl] {
		if s != nil {
			out = append(out, f(s))
		}
	}
	return out
}

func (r *Results) write(out io.Writer, took time.Duration) {
	p := func(format string, args ...any) { fmt.Fprintf(out, format, args...) }
	p("Machine: %s.\n", machine())
	p("%d repetitions, %v per run, implementations interleaved within each; whole run %v; "+
		"1-minute load average %s before, %s after.\n\n",
		r.cfg.Reps, r.cfg.Dur, took.Round(time.Second), r.load[0], r.load[1])

	if len(r.runs) > 0 {
		p("| workload | implementation | frames/s | MB/s | ratio to baseline, median (min–max) | p50 µs | p99 µs | syscalls/frame | allocs/frame |\n")
		p("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	}
	for _, w := range workloads() {
		if r.runs[w.Name] == nil {
			continue
		}
		base := w.Impls[0].Name
		for _, im := range r.cfg.rows(w) {
			ss := r.runs[w.Name][im.Name]
			if ss == nil {
				p("| %s | %s | failed | | | | | | |\n", w.Title, im.Name)
				continue
			}
			fps := median(r.each(w.Name, im.Name, (*Sample).FramesPerSec))
			mbs := fps * float64(w.Size) / 1e6
			ratio := "—"
			if im.Name != base {
				ratio = ratioCell(r.ratios(w, im.Name, base), base, w.LowerIsBetter)
			} else {
				ratio = "baseline"
			}
			p50, p99 := "", ""
			if w.LowerIsBetter {
				p50 = fmt.Sprintf("%.1f", median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.P50) / 1e3 })))
				p99 = fmt.Sprintf("%.1f", median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.P99) / 1e3 })))
			}
			sys := median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.Syscalls) / float64(s.Frames) }))
			sysCell := fmt.Sprintf("%.3g", sys)
			if w.ShowWrites {
				if wr := r.each(w.Name, im.Name, writesPerFrame); len(wr) > 0 && wr[0] >= 0 {
					sysCell += fmt.Sprintf(" (%.3g writes)", median(wr))
				}
			}
			allocs := median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.Allocs) / float64(s.Frames) }))
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %.2f |\n",
				w.Title, im.Name, si(fps), si(mbs), ratio, p50, p99, sysCell, allocs)
		}
	}

	if len(r.runs) > 0 {
		p("\nframes/s: frames the receiving end got per second (round trips for ping-pong); MB/s: their payload bytes, one way. " +
			"Ratios are taken within each repetition, then the median. syscalls/frame: read and write system calls of the whole " +
			"process, both ends, per frame (/proc/self/io), and in brackets the write system calls among them; allocs/frame: heap allocations of the whole process, both ends, per frame.\n")
	}
	if len(r.idle) > 0 {
		p("\nMemory per idle connection (%d connections on one server; Go heap in use + goroutine stacks, server process only):\n\n", r.cfg.IdleConns)
		p("| server | KiB per connection, median (min–max) |\n|---|--:|\n")
		for _, row := range idleRows() {
			if v := r.idle[row.Name]; len(v) > 0 {
				p("| %s | %.1f (%.1f–%.1f) |\n", row.Name, median(v)/1024, slices.Min(v)/1024, slices.Max(v)/1024)
			}
		}
	}
	if len(r.allocs) > 0 {
		p("\nServer heap allocations per 64 B echo frame (client in another process):\n\n")
		p("| server | allocs/frame, median (min–max) |\n|---|--:|\n")
		for _, im := range impls() {
			if v := r.allocs[im.Name]; len(v) > 0 {
				p("| %s | %s (%s–%s) |\n", im.Name, allocNum(median(v)), allocNum(slices.Min(v)), allocNum(slices.Max(v)))
			}
		}
	}
	r.writeServerOnly(p)
	r.writeTargets(p)
	r.writeHotTargets(p)
	// The rows, in the order they first appear.
	var shown []Impl
	for _, w := range workloads() {
		if r.runs[w.Name] != nil {
			shown = append(shown, r.cfg.rows(w)...)
		}
	}
	if len(r.idle) > 0 || len(r.allocs) > 0 {
		shown = append(shown, impls()...)
	}
	p("\nRows:\n\n")
	seen := map[string]bool{}
	for _, im := range shown {
		if !seen[im.Name] {
			seen[im.Name] = true
			p("- %s: %s\n", im.Name, im.Note)
		}
	}
	if len(r.errs) > 0 {
		p("\nFailed runs (left out of the medians):\n\n")
		for _, e := range r.errs {
			p("- %s\n", e)
		}
	}
}

// writesPerFrame is a sample's write system calls per frame received.
func writesPerFrame(s *Sample) float64 { return float64(s.Writes) / float64(s.Frames) }

// writeTargets compares framed's rows with the targets of issue 20: each a
// median, over the repetitions, of a ratio taken within one.
func (r *Results) writeTargets(p func(string, ...any)) {
	type target struct {
		what, row, want string
		got             float64
		ok              bool
		unit            string
	}
	var ts []target
	ratioTarget := func(wname, row, base, what, want string, ok func(float64) bool) {
		w, _ := workloadByName(wname)
		if v := r.ratios(w, row, base); len(v) > 0 {
			m := median(v)
			ts = append(ts, target{what: what, row: row, want: want, got: m, ok: ok(m), unit: "x"})
		}
	}
	atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	ratioTarget("oneway64", "framed", "raw", "one-way 64 B, Conn.WriteFrame loop, frames/s", "≥ 0.9x raw", atLeast(0.9))
	ratioTarget("oneway64", framedSendName, "raw", "one-way 64 B, Client.Send loop, frames/s", "≥ 0.9x raw", atLeast(0.9))
	ratioTarget("echo64", "framed", "raw", "echo 64 B through Conn, 1 conn, frames/s", "≥ 0.9x raw", atLeast(0.9))
	ratioTarget("echo64x64", "framed", "raw", "echo 64 B through Conn, 64 conns, frames/s", "≥ 0.9x raw", atLeast(0.9))
	ratioTarget("pingpong", "framed", "raw", "ping-pong 64 B through Conn, p50", "≤ 1.05x raw", atMost(1.05))
	ratioTarget("pingpong", framedRequestName, "raw", "ping-pong 64 B, Client.Request, p50", "≤ 1.15x raw", atMost(1.15))
	ratioTarget("requests64", framedRequestName, "raw", "64 goroutines × Client.Request on one Client, frames/s",
		"≥ 0.7x raw pipelined, 64 in flight", atLeast(0.7))
	if w, _ := workloadByName("writers8"); r.runs[w.Name] != nil {
		if v := r.each(w.Name, "framed", writesPerFrame); len(v) > 0 && slices.Min(v) >= 0 {
			m := median(v)
			ts = append(ts, target{what: "8 goroutines writing 64 B to one Conn, write calls per frame", row: "framed",
				want: "≤ 0.05", got: m, ok: m <= 0.05})
		}
		ratioTarget(w.Name, "framed", mutexWriterName, "8 goroutines writing 64 B to one Conn, frames/s",
			"≥ 5x mutex + Write", atLeast(5))
	}
	if len(ts) == 0 {
		return
	}
	p("\nframed against the targets of issue 20 (medians of the ratios within each repetition):\n\n" +
		"| target | row | wanted | got | met |\n|---|---|---|--:|---|\n")
	for _, t := range ts {
		met := "no"
		if t.ok {
			met = "yes"
		}
		got := num(t.got)
		if t.unit == "x" {
			got = fmt.Sprintf("%.3f", t.got) // 1.00x could be a miss
		}
		p("| %s | %s | %s | %s%s | %s |\n", t.what, t.row, t.want, got, t.unit, met)
	}
}

func ratioCell(rs []float64, base string, lower bool) string {
	if len(rs) == 0 {
		return "—"
	}
	what := "frames/s"
	if lower {
		what = "p50"
	}
	return fmt.Sprintf("%sx (%s–%s) %s %s", num(median(rs)), num(slices.Min(rs)), num(slices.Max(rs)), what, short(base))
}

func short(base string) string {
	if strings.HasPrefix(base, "mutex") {
		return "mutex"
	}
	return base
}

// num formats a ratio or small figure with three significant digits.
func num(x float64) string {
	switch {
	case x == 0:
		return "0"
	case math.Abs(x) >= 100:
		return fmt.Sprintf("%.0f", x)
	case math.Abs(x) >= 10:
		return fmt.Sprintf("%.1f", x)
	case math.Abs(x) >= 0.01:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.3f", x)
}

// allocNum formats allocations per frame; the difference of two counts can
// come out a hair below zero.
func allocNum(x float64) string {
	if math.Abs(x) < 0.0005 {
		return "0.000"
	}
	return fmt.Sprintf("%.3f", x)
}

// si formats a rate with a k or M suffix.
func si(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
