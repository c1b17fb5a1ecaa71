package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// The memory and allocation workloads keep a server's figures apart from
// its clients' by putting one side in a child process: this same program,
// started with these variables set (see runChild).
const (
	childEnv      = "FRAMED_BENCH_CHILD" // "echo" or "idle-server"
	childImplEnv  = "FRAMED_BENCH_IMPL"
	childAddrEnv  = "FRAMED_BENCH_ADDR"
	childNEnv     = "FRAMED_BENCH_N"
	childDurEnv   = "FRAMED_BENCH_DUR"
	childBufEnv   = "FRAMED_BENCH_BUFSIZE"
	childStallEnv = "FRAMED_BENCH_STALL" // "1": the idle clients stall mid-frame
)

// isChild reports whether this process was started as a workload's child.
func isChild() bool { return os.Getenv(childEnv) != "" }

// runChild is the child process's whole work; it returns the exit code.
//
// "echo" echoes up to N 64 B frames (stopping after DUR) with the
// implementation's client, 64 in flight, and prints "frames <count>".
//
// "idle-server" starts the implementation's echo server, prints
// "listening <addr>", waits for a line on its standard input that says
// N clients have connected and had their echo, measures, prints
// "bytes-per-conn <n>", and stops when its standard input closes. With
// STALL set, each client has then also sent a header and part of a frame,
// and the server is measured once it has read all those bytes.
func runChild() int {
	im, ok := implByName(os.Getenv(childImplEnv))
	addr := os.Getenv(childAddrEnv)
	n, _ := strconv.Atoi(os.Getenv(childNEnv))
	dur, _ := time.ParseDuration(os.Getenv(childDurEnv))
	bufSize, _ := strconv.Atoi(os.Getenv(childBufEnv))
	stall := os.Getenv(childStallEnv) == "1"
	var err error
	switch mode := os.Getenv(childEnv); {
	case !ok:
		err = fmt.Errorf("unknown implementation %q", os.Getenv(childImplEnv))
	case mode == "echo":
		err = childEcho(im, addr, n, dur)
	case mode == "idle-server":
		err = childIdleServer(im, n, bufSize, stall)
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	return 0
}

// minTimedFrames is the fewest frames a timed echo child sends.
const minTimedFrames = 20000

func childEcho(im Impl, addr string, n int, dur time.Duration) error {
	c, err := im.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(dur + sinkTimeout))
	e := newEcho(c, 64, window)
	start := time.Now()
	// A timed run goes on for at least minTimedFrames, so that it is
	// always much longer than the untimed short run.
	for e.sent < int64(n) && (dur == 0 || time.Since(start) < dur || e.sent < minTimedFrames) {
		if err := e.batch(min(1024, n-int(e.sent))); err != nil {
			return err
		}
	}
	if err := e.drain(); err != nil {
		return err
	}
	fmt.Printf("frames %d\n", e.recv)
	return nil
}

func childIdleServer(im Impl, n, bufSize int, stall bool) error {
	srv, err := im.Serve(ServerConfig{Mode: Echo, BufSize: bufSize})
	if err != nil {
		return err
	}
	defer srv.Close()
	before := heapAndStacks()
	fmt.Printf("listening %s\n", srv.Addr())
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the clients: %w", err)
	}
	if err := waitActive(srv, n); err != nil {
		return err
	}
	if stall {
		fs, ok := srv.(*framedServer)
		if !ok {
			return fmt.Errorf("%s cannot say how many bytes it read", im.Name)
		}
		bytesIn := func() int64 { return fs.srv.Stats().BytesIn }
		if err := waitBytesIn(bytesIn, int64(n)*(headerSize+64+int64(len(stallBytes)))); err != nil {
			return err
		}
	}
	after := heapAndStacks()
	fmt.Printf("bytes-per-conn %.1f\n", (float64(after)-float64(before))/float64(n))
	io.Copy(io.Discard, in)
	return nil
}

// stallBytes is what a stalled client sends after its echo: a header that
// claims a frame of maxFrame (4 MiB) bytes, and the first 16 of them.
var stallBytes = func() []byte {
	b := make([]byte, headerSize+16)
	putHeader(b, maxFrame)
	return b
}()

// idleClients opens n connections to addr, sends one 64 B frame in im's
// format on each and reads its echo; with stall, each then sends
// stallBytes and nothing more. They are plain connections, not im's
// clients, so that 5,000 of them cost this process little.
func idleClients(im Impl, addr string, n int, stall bool) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			frame := make([]byte, headerSize+64)
			if im.BigEndian {
				binary.BigEndian.PutUint32(frame, 64)
			} else {
				putHeader(frame, 64)
			}
			copy(frame[headerSize:], payload(64))
			reply := make([]byte, len(frame))
			for i := w; i < n; i += len(errs) {
				nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					errs[w] = err
					return
				}
				conns[i] = nc
				nc.SetDeadline(time.Now().Add(sinkTimeout))
				if _, err := nc.Write(frame); err != nil {
					errs[w] = err
					return
				}
				if _, err := io.ReadFull(nc, reply); err != nil {
					errs[w] = err
					return
				}
				if !bytes.Equal(reply, frame) {
					errs[w] = errors.New("bench: idle echo differs from the frame sent")
					return
				}
				if stall {
					if _, err := nc.Write(stallBytes); err != nil {
						errs[w] = err
						return
					}
				}
				nc.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeConns(conns)
		return nil, err
	}
	return conns, nil
}

func closeConns(conns []net.Conn) {
	for _, nc := range conns {
		if nc != nil {
			nc.Close()
		}
	}
}

// child returns a command that starts this program as a child.
func child(mode string, im Impl, env ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childImplEnv+"="+im.Name)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd, nil
}

// waitActive waits until srv has n connections open.
func waitActive(srv Server, n int) error {
	deadline := time.Now().Add(sinkTimeout)
	for srv.Active() != n {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %d connections open, want %d", srv.Active(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// waitBytesIn waits until bytesIn reports n bytes read.
func waitBytesIn(bytesIn func() int64, n int64) error {
	deadline := time.Now().Add(sinkTimeout)
	for bytesIn() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %d bytes read, want %d", bytesIn(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// idleRow is a server configuration of the idle-connections workload.
type idleRow struct {
	Name    string
	Impl    Impl
	BufSize int
	Stall   bool // each connection stalls in a frame that claims 4 MiB
}

// stalledRow names the row whose connections stall mid-frame.
const stalledRow = "framed, stalled in a 4 MiB frame"

func idleRows() []idleRow {
	all := impls()
	rows := []idleRow{
		{Name: "framed", Impl: all[1]},
		// Only framed: the others allocate what the header claims, and
		// 5,000 connections would ask for 20 GiB.
		{Name: stalledRow, Impl: all[1], Stall: true},
		{Name: "raw, bufio 64 KiB", Impl: all[0]},
		{Name: "raw, bufio 4 KiB", Impl: all[0], BufSize: 4 << 10},
	}
	for _, im := range all[2:] {
		rows = append(rows, idleRow{Name: im.Name, Impl: im})
	}
	return rows
}

// heapAndStacks collects garbage and returns the Go heap in use plus the
// goroutine stacks.
func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC() // a second cycle frees what the first one's finalizers and pools let go
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// measureIdle returns the server's memory per idle connection: Go heap in
// use plus goroutine stacks (HeapInuse + StackInuse after two GCs) with n
// connections open, each having sent one frame and read its echo, minus
// the same with the server listening and no connection, divided by n. The
// server runs alone in a fresh child process, so neither the clients
// (here, in this process) nor what earlier workloads left behind is
// counted. A Stall row measures the same way with every connection
// stalled in a frame: its header, claiming 4 MiB, and 16 bytes of it read.
func measureIdle(row idleRow, n int) (float64, error) {
	stall := "0"
	if row.Stall {
		stall = "1"
	}
	cmd, err := child("idle-server", row.Impl, childNEnv+"="+strconv.Itoa(n),
		childBufEnv+"="+strconv.Itoa(row.BufSize), childStallEnv+"="+stall)
	if err != nil {
		return 0, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	var addr string
	if line, err := out.ReadString('\n'); err != nil {
		return 0, fmt.Errorf("bench: idle server: %w", err)
	} else if _, err := fmt.Sscanf(line, "listening %s", &addr); err != nil {
		return 0, fmt.Errorf("bench: idle server said %q", line)
	}
	conns, err := idleClients(row.Impl, addr, n, row.Stall)
	if err != nil {
		return 0, err
	}
	defer closeConns(conns)
	if _, err := io.WriteString(stdin, "ready\n"); err != nil {
		return 0, err
	}
	var perConn float64
	if line, err := out.ReadString('\n'); err != nil {
		return 0, fmt.Errorf("bench: idle server: %w", err)
	} else if _, err := fmt.Sscanf(line, "bytes-per-conn %g", &perConn); err != nil {
		return 0, fmt.Errorf("bench: idle server said %q", line)
	}
	return perConn, nil
}

// measureAllocs returns the server's heap allocations per 64 B echo frame:
// runtime.MemStats.Mallocs counted across a child client's whole
// connection, once for a short run and once for a long one, and the
// difference divided by the difference in frames. The client (the
// implementation's own; raw for gnet) is in another process, and the
// per-connection costs (accept, goroutine, buffers, close) cancel out.
func measureAllocs(im Impl, n int, dur time.Duration) (float64, error) {
	srv, err := im.Serve(ServerConfig{Mode: Echo})
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	run := func(n int, dur time.Duration) (allocs uint64, frames int64, err error) {
		cmd, err := child("echo", im, childAddrEnv+"="+srv.Addr(),
			childNEnv+"="+strconv.Itoa(n), childDurEnv+"="+dur.String())
		if err != nil {
			return 0, 0, err
		}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		out, err := cmd.Output()
		if err != nil {
			return 0, 0, fmt.Errorf("bench: echo client: %w", err)
		}
		if err := waitActive(srv, 0); err != nil {
			return 0, 0, err
		}
		runtime.ReadMemStats(&m1)
		if _, err := fmt.Sscanf(string(out), "frames %d", &frames); err != nil {
			return 0, 0, fmt.Errorf("bench: echo client said %q", out)
		}
		return m1.Mallocs - m0.Mallocs, frames, nil
	}
	if _, _, err := run(1000, 0); err != nil { // pays the server's one-time costs
		return 0, err
	}
	shortAllocs, shortFrames, err := run(1000, 0)
	if err != nil {
		return 0, err
	}
	longAllocs, longFrames, err := run(n, dur)
	if err != nil {
		return 0, err
	}
	if longFrames <= shortFrames {
		return 0, fmt.Errorf("bench: the long run echoed %d frames, the short one %d", longFrames, shortFrames)
	}
	return (float64(longAllocs) - float64(shortAllocs)) / float64(longFrames-shortFrames), nil
}
