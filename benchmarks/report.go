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
		for _, im := range w.Impls {
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
			if w.LowerIsBetter || im.Name == framedRequestName && w.Name == "pingpong" {
				p50 = fmt.Sprintf("%.1f", median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.P50) / 1e3 })))
				p99 = fmt.Sprintf("%.1f", median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.P99) / 1e3 })))
			}
			sys := median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.Syscalls) / float64(s.Frames) }))
			sysCell := fmt.Sprintf("%.3g", sys)
			if wr := r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.Writes) / float64(s.Frames) }); len(wr) > 0 && wr[0] >= 0 {
				sysCell += fmt.Sprintf(" (%.3g Write calls)", median(wr))
			}
			allocs := median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.Allocs) / float64(s.Frames) }))
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %.2f |\n",
				w.Title, im.Name, si(fps), si(mbs), ratio, p50, p99, sysCell, allocs)
		}
	}

	if len(r.runs) > 0 {
		p("\nframes/s: frames the receiving end got per second (round trips for ping-pong); MB/s: their payload bytes, one way. " +
			"Ratios are taken within each repetition, then the median. syscalls/frame: read and write system calls of the whole " +
			"process, both ends, per frame (/proc/self/io); allocs/frame: heap allocations of the whole process, both ends, per frame.\n")
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
	r.writeTargets(p)
	// The rows, in the order they first appear.
	var shown []Impl
	for _, w := range workloads() {
		if r.runs[w.Name] != nil {
			shown = append(shown, w.Impls...)
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

// writeTargets compares framed with the targets of issue 6.
func (r *Results) writeTargets(p func(string, ...any)) {
	type target struct {
		what, want string
		got        float64
		ok         bool
		have       bool
		unit       string
	}
	var ts []target
	ratioTarget := func(wname, what, want string, ok func(float64) bool) {
		w, _ := workloadByName(wname)
		if v := r.ratios(w, "framed", w.Impls[0].Name); len(v) > 0 {
			m := median(v)
			ts = append(ts, target{what: what, want: want, got: m, ok: ok(m), have: true, unit: "x"})
		}
	}
	ratioTarget("oneway64", "one-way 64 B frames/s", "≥ 1.5x raw", func(x float64) bool { return x >= 1.5 })
	ratioTarget("echo64", "echo 64 B, 1 conn", "≥ 1.2x raw", func(x float64) bool { return x >= 1.2 })
	ratioTarget("echo64x64", "echo 64 B, 64 conns", "≥ 1.1x raw", func(x float64) bool { return x >= 1.1 })
	ratioTarget("pingpong", "ping-pong p50 latency", "≤ 1.0x raw", func(x float64) bool { return x <= 1.0 })
	ratioTarget("echo1m", "echo 1 MiB MB/s", "≥ 1.0x raw", func(x float64) bool { return x >= 1.0 })
	if v := r.allocs["framed"]; len(v) > 0 {
		m := median(v)
		ts = append(ts, target{what: "server allocations per 64 B frame", want: "0 (below 0.005)", got: math.Max(m, 0), ok: m < 0.005, have: true})
	}
	if w, _ := workloadByName("writers8"); r.runs[w.Name] != nil {
		if v := r.ratios(w, "framed", mutexWriterName); len(v) > 0 {
			m := median(v)
			ts = append(ts, target{what: "8 writers on one Conn, frames/s", want: "≥ 5x mutex + Write", got: m, ok: m >= 5, have: true, unit: "x"})
		}
		if v := r.each(w.Name, "framed", func(s *Sample) float64 { return float64(s.Writes) / float64(s.Frames) }); len(v) > 0 {
			m := median(v)
			ts = append(ts, target{what: "8 writers on one Conn, Write calls per frame", want: "≤ 0.05", got: m, ok: m <= 0.05, have: true})
		}
	}
	if v := r.idle["framed"]; len(v) > 0 {
		m := median(v) / 1024
		ts = append(ts, target{what: "memory per idle connection, KiB", want: "≤ 16", got: m, ok: m <= 16, have: true})
	}
	if len(ts) == 0 {
		return
	}
	p("\nframed against the targets of issue 6 (medians):\n\n| target | wanted | framed | met |\n|---|---|--:|---|\n")
	for _, t := range ts {
		met := "no"
		if t.ok {
			met = "yes"
		}
		got := num(t.got)
		if t.unit == "x" {
			got = fmt.Sprintf("%.3f", t.got) // 1.00x could be a miss
		}
		p("| %s | %s | %s%s | %s |\n", t.what, t.want, got, t.unit, met)
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
