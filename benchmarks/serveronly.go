package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// feedFrames is how many pre-encoded frames the server-only feeder hands
// to one write(2).
const feedFrames = 1024

// ceilingName is the row that parses nothing: the loopback ceiling.
const ceilingName = "loopback ceiling"

// ceilingImpl is a sink that reads the stream in 1 MiB reads and counts
// bytes, parsing nothing: the most frames per second loopback TCP carries
// to a server on this machine. Only the server-only workloads use it.
func ceilingImpl() Impl {
	return Impl{
		Name:  ceilingName,
		Key:   "ceiling",
		Note:  "no framing: 1 MiB reads, bytes counted and divided by the frame's size (header included); the loopback ceiling",
		Serve: serveCeiling,
	}
}

func serveCeiling(cfg ServerConfig) (Server, error) {
	if cfg.Mode != Sink || cfg.Size < 0 {
		return nil, errors.New("bench: the ceiling row is a sink of one frame size")
	}
	return startConnServer(func(nc net.Conn) {
		buf := make([]byte, 1<<20)
		var total int64
		for {
			n, err := nc.Read(buf)
			total += int64(n)
			if err != nil {
				if err == io.EOF {
					err = nil
					if total%int64(headerSize+cfg.Size) != 0 {
						err = errBadFrame
					}
				}
				cfg.report(SinkDone{Frames: total / int64(headerSize+cfg.Size), At: time.Now(), Err: err})
				return
			}
		}
	})
}

// serverOnlyImpls are the rows of the server-only workloads: raw first
// (the baseline), then framed's Server, the same through a Mux, gnet, and
// the loopback ceiling.
func serverOnlyImpls() []Impl {
	fr := framedImpl()
	fr.Note = "framed.Server with a handler that checks each frame's size and drops it"
	return []Impl{rawImpl(), fr, framedMuxImpl(), gnetImpl(), ceilingImpl()}
}

// serverOnly measures a sink server alone. The feeder costs next to
// nothing: its frames are encoded once, and it writes feedFrames of them
// per write(2) on the dialed connection, so that the run measures what the
// server does per frame. Every row gets the same bytes in the same writes.
type serverOnly struct {
	srv  Server
	done chan SinkDone
	nc   *net.TCPConn
	buf  []byte // feedFrames frames, encoded
	size int    // one frame's bytes, header included
	sent int64
}

func openServerOnly(w *Workload, im Impl, deadline time.Time) (session, error) {
	s := &serverOnly{done: make(chan SinkDone, 1), size: headerSize + w.Size}
	p := payload(w.Size)
	for i := range feedFrames {
		binary.LittleEndian.PutUint32(p, uint32(i%muxRoutes)) // the Mux row's key; the others ignore it
		s.buf = putFrame(s.buf, p)
	}
	var err error
	if s.srv, err = im.Serve(ServerConfig{Mode: Sink, Size: w.Size, Done: s.done}); err != nil {
		return nil, err
	}
	if s.nc, err = dialTCP(s.srv.Addr()); err != nil {
		s.srv.Close()
		return nil, err
	}
	s.nc.SetDeadline(deadline)
	return s, nil
}

// putFrame appends p as one frame of the little-endian int32 format.
func putFrame(b, p []byte) []byte {
	b = append(b, make([]byte, headerSize)...)
	putHeader(b[len(b)-headerSize:], len(p))
	return append(b, p...)
}

func (s *serverOnly) batch(n int) error {
	for n > 0 {
		k := min(n, feedFrames)
		if _, err := s.nc.Write(s.buf[:k*s.size]); err != nil {
			return err
		}
		n -= k
		s.sent += int64(k)
	}
	return nil
}

func (s *serverOnly) finish() (int64, time.Time, error) {
	if err := s.nc.CloseWrite(); err != nil {
		return 0, time.Time{}, err
	}
	return waitSink(s.done, s.sent)
}

func (s *serverOnly) close() error {
	s.nc.Close()
	return s.srv.Close()
}

// serverOnlyWorkloads are the server-only sinks, 64 B and 1 KiB.
func serverOnlyWorkloads() []*Workload {
	return []*Workload{
		{Name: "server64", Title: "server-only sink 64 B", Size: 64, Batch: 16 * feedFrames, OpFrames: feedFrames,
			Impls: serverOnlyImpls(), ServerOnly: true, open: openServerOnly},
		{Name: "server1k", Title: "server-only sink 1 KiB", Size: 1024, Batch: 4 * feedFrames, OpFrames: feedFrames,
			Impls: serverOnlyImpls(), ServerOnly: true, open: openServerOnly},
	}
}

// cpuPerFrame is a sample's CPU time, both ends, per frame, in ns.
func cpuPerFrame(s *Sample) float64 { return float64(s.CPU.Nanoseconds()) / float64(s.Frames) }

// readsPerFrame is a sample's read system calls per frame.
func readsPerFrame(s *Sample) float64 { return float64(s.Syscalls-s.Writes) / float64(s.Frames) }

// writeServerOnly gives the server-only workloads their own table: each
// row's frames/s, its ratio to raw, to gnet and to the loopback ceiling,
// and the CPU time of the process (server and feeder) per frame.
func (r *Results) writeServerOnly(p func(string, ...any)) {
	header := false
	for _, w := range workloads() {
		if !w.ServerOnly || r.runs[w.Name] == nil {
			continue
		}
		if !header {
			header = true
			p("\nServer-only sinks: the feeder writes pre-encoded frames, %d per write(2), into each server, "+
				"which checks and counts every frame (medians; ratios taken within each repetition):\n\n", feedFrames)
			p("| workload | server | frames/s | x raw | x gnet | of ceiling | CPU ns/frame (server + feeder) | reads/frame | allocs/frame |\n")
			p("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
		}
		for _, im := range r.cfg.rows(w) {
			if r.runs[w.Name][im.Name] == nil {
				continue
			}
			ratio := func(base string) string {
				if im.Name == base {
					return "1"
				}
				v := r.ratios(w, im.Name, base)
				if len(v) == 0 {
					return "—"
				}
				return fmt.Sprintf("%.2fx (%.2f–%.2f)", median(v), slices.Min(v), slices.Max(v))
			}
			fps := median(r.each(w.Name, im.Name, (*Sample).FramesPerSec))
			p("| %s | %s | %s | %s | %s | %s | %.0f | %.4f | %s |\n", w.Title, im.Name, si(fps),
				ratio("raw"), ratio("gnet"), ratio(ceilingName),
				median(r.each(w.Name, im.Name, cpuPerFrame)),
				median(r.each(w.Name, im.Name, readsPerFrame)),
				allocNum(median(r.each(w.Name, im.Name, func(s *Sample) float64 { return float64(s.Allocs) / float64(s.Frames) }))))
		}
	}
}

// writeHotTargets compares framed with the targets of issue 11, the
// server's hot path.
func (r *Results) writeHotTargets(p func(string, ...any)) {
	type target struct {
		what, row, base, want string
		ok                    func(float64) bool
	}
	atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	ts := []struct {
		workload string
		target
	}{
		{"server64", target{"server-only sink 64 B, frames/s", "framed", "gnet", "≥ 1.0x gnet", atLeast(1)}},
		{"server64", target{"server-only sink 64 B, frames/s", "framed", ceilingName, "≥ 0.55x ceiling", atLeast(0.55)}},
		{"server1k", target{"server-only sink 1 KiB, frames/s", "framed", "gnet", "≥ 1.0x gnet", atLeast(1)}},
		{"oneway64", target{"one-way 64 B, framed client and server, frames/s", framedWriterName, "raw", "≥ 1.2x raw", atLeast(1.2)}},
		{"echo64x64", target{"echo 64 B, 64 conns, frames/s", framedServerName, "raw", "≥ 1.1x raw", atLeast(1.1)}},
		{"pingpong", target{"ping-pong 64 B via Server, p50", framedWriterName, "raw", "≤ 1.05x raw", atMost(1.05)}},
	}
	header := false
	for _, t := range ts {
		w, _ := workloadByName(t.workload)
		v := r.ratios(w, t.row, t.base)
		if len(v) == 0 {
			continue
		}
		if !header {
			header = true
			p("\nframed against the targets of issue 11 (medians of the ratios within each repetition):\n\n" +
				"| target | row | wanted | got | met |\n|---|---|---|--:|---|\n")
		}
		m, met := median(v), "no"
		if t.ok(m) {
			met = "yes"
		}
		p("| %s | %s | %s | %.3fx | %s |\n", t.what, t.row, t.want, m, met)
	}
}
