// Command benchmarks measures framed side by side with a well-written
// stdlib loop, the tutorial way, go-msgio and gnet, over 127.0.0.1, and
// prints a Markdown table of the results.
//
//	cd benchmarks && go run .
//
// Every repetition runs every implementation of a workload one after the
// other, so they share the machine's state; the table gives medians over
// the repetitions, and each ratio is taken within a repetition. See
// README.md for what each workload does and how it is counted.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	if isChild() {
		os.Exit(runChild())
	}
	if err := runMain(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchmarks:", err)
		os.Exit(1)
	}
}

// Config is what a run of the program measures.
type Config struct {
	Reps      int
	Dur       time.Duration // per workload run
	IdleConns int
	Only      []string // workload names; empty means all
	Impls     []string // implementation keys; empty means all
}

func (c Config) wants(name string) bool { return len(c.Only) == 0 || slices.Contains(c.Only, name) }

// rows returns the implementations of w to run: those -impls names, and
// always the baseline, which every ratio divides by.
func (c Config) rows(w *Workload) []Impl {
	var out []Impl
	for i, im := range w.Impls {
		if i == 0 || len(c.Impls) == 0 || slices.Contains(c.Impls, im.Key) {
			out = append(out, im)
		}
	}
	return out
}

const usage = `Usage: go run . [flags]

Runs the workloads over every implementation and prints a Markdown table.
Examples:

  go run .                                # everything, 5 repetitions
  go run . -only requests64 -reps 5       # one workload
  go run . -only oneway64,pingpong -impls framed,framed-send
                                          # some rows of some workloads
                                          # (each workload's baseline always runs)
  go run . -quick                         # one short repetition: a look

Flags:
`

func runMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchmarks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reps := fs.Int("reps", 5, "repetitions; the table gives medians over them")
	quick := fs.Bool("quick", false, "one short repetition with 1,000 idle connections: a look, not a result")
	only := fs.String("only", "", "comma-separated workloads to run: "+strings.Join(workloadNames(), ","))
	implsFlag := fs.String("impls", "", "comma-separated rows to run in the throughput workloads, besides each one's baseline: "+
		strings.Join(implKeys(), ","))
	dur := fs.Duration("dur", 300*time.Millisecond, "how long each workload runs over each implementation")
	conns := fs.Int("idle-conns", 5000, "connections of the idle workload")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed
		}
		return err
	}
	cfg := Config{Reps: *reps, Dur: *dur, IdleConns: *conns}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["reps"] {
			cfg.Reps = 1
		}
		if !set["dur"] {
			cfg.Dur = 60 * time.Millisecond
		}
		if !set["idle-conns"] {
			cfg.IdleConns = 1000
		}
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
		for _, name := range cfg.Only {
			if !slices.Contains(workloadNames(), name) {
				return fmt.Errorf("unknown workload %q; have %s", name, strings.Join(workloadNames(), ", "))
			}
		}
	}
	if *implsFlag != "" {
		cfg.Impls = strings.Split(*implsFlag, ",")
		for _, key := range cfg.Impls {
			if !slices.Contains(implKeys(), key) {
				return fmt.Errorf("unknown implementation %q; have %s", key, strings.Join(implKeys(), ", "))
			}
		}
	}
	if cfg.Reps < 1 || cfg.Dur <= 0 || cfg.IdleConns < 1 {
		return fmt.Errorf("-reps, -dur and -idle-conns must be positive")
	}
	start := time.Now()
	res, err := runAll(cfg, stderr)
	if err != nil {
		return err
	}
	res.write(stdout, time.Since(start))
	return nil
}

func workloadNames() []string {
	var names []string
	for _, w := range workloads() {
		names = append(names, w.Name)
	}
	return append(names, "idle", "allocs")
}

// implKeys returns the keys of every row of the throughput workloads.
func implKeys() []string {
	var keys []string
	for _, w := range workloads() {
		for _, im := range w.Impls {
			if !slices.Contains(keys, im.Key) {
				keys = append(keys, im.Key)
			}
		}
	}
	return keys
}

// runAll runs every repetition: within one, each workload over each of its
// implementations in turn, then the idle and allocation measurements.
func runAll(cfg Config, progress io.Writer) (*Results, error) {
	res := newResults(cfg)
	res.load[0] = loadAverage()
	defer func() { res.load[1] = loadAverage() }()
	lim := Limits{Dur: cfg.Dur, MaxFrames: 1 << 28}

	// A short pass, not reported, so that the first repetition does not pay
	// for faulting in memory and warming caches alone.
	for _, w := range workloads() {
		if !cfg.wants(w.Name) {
			continue
		}
		for _, im := range cfg.rows(w) {
			if _, err := measure(w, im, Limits{Dur: cfg.Dur / 5, MaxFrames: lim.MaxFrames}); err != nil {
				res.fail(w.Name, im.Name, 0, err)
			}
		}
	}

	for rep := range cfg.Reps {
		t := time.Now()
		for _, w := range workloads() {
			if !cfg.wants(w.Name) {
				continue
			}
			for _, im := range cfg.rows(w) {
				smp, err := measure(w, im, lim)
				if err != nil {
					res.fail(w.Name, im.Name, rep+1, err)
					continue
				}
				res.add(w.Name, im.Name, rep, smp)
			}
		}
		if cfg.wants("idle") {
			for _, row := range idleRows() {
				perConn, err := measureIdle(row, cfg.IdleConns)
				if err != nil {
					res.fail("idle", row.Name, rep+1, err)
					continue
				}
				res.idle[row.Name] = append(res.idle[row.Name], perConn)
			}
		}
		if cfg.wants("allocs") {
			for _, im := range impls() {
				a, err := measureAllocs(im, 1<<20, cfg.Dur)
				if err != nil {
					res.fail("allocs", im.Name, rep+1, err)
					continue
				}
				res.allocs[im.Name] = append(res.allocs[im.Name], a)
			}
		}
		fmt.Fprintf(progress, "repetition %d/%d done in %v\n", rep+1, cfg.Reps, time.Since(t).Round(100*time.Millisecond))
	}
	return res, nil
}
