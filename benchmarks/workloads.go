package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/framed-go/framed"
)

// Workload is one measured traffic pattern, run the same way over every
// implementation it lists.
type Workload struct {
	Name  string // the -only name and the Go benchmark's name
	Title string // the results table's label
	Size  int    // payload bytes per frame

	// Batch is how many frames the program asks a session for between two
	// looks at the clock. OpFrames is how many a Go benchmark asks for per
	// b.Loop iteration: one frame, where the session can take them one at a
	// time without changing its traffic.
	Batch, OpFrames int

	// Impls are the rows, baseline first: the ratio column divides by it.
	Impls []Impl

	// LowerIsBetter marks workloads whose headline figure is a latency.
	LowerIsBetter bool

	// ShowWrites makes the table give the write system calls per frame
	// apart from all of them.
	ShowWrites bool

	// ServerOnly marks the server-only sinks, which the report also gives
	// a table of their own (see writeServerOnly).
	ServerOnly bool

	open func(w *Workload, im Impl, deadline time.Time) (session, error)
}

// session is one workload running over one implementation: connections
// open, servers running.
type session interface {
	// batch runs n more frames of the workload. Frames may still be in
	// flight when it returns; finish completes them.
	batch(n int) error
	// finish completes every frame sent so far and returns how many the
	// receiving end got, and when the last arrived.
	finish() (frames int64, end time.Time, err error)
	// close releases everything and waits for every goroutine; it is
	// called once, after finish or after an error.
	close() error
}

// latencySession is a session that records round-trip times.
type latencySession interface {
	latencies() []time.Duration
}

// checkAll makes every received payload be compared byte for byte, not
// just its size and sequence number. The smoke tests set it.
var checkAll = false

// window is how many 64 B frames a pipelining client keeps in flight.
const window = 64

// bigWindow is how many 1 MiB frames the bulk client keeps in flight.
const bigWindow = 4

// echoConns is the connection count of the many-connection echo workload.
const echoConns = 64

// sinkTimeout bounds the wait for a sink to report its last frame.
const sinkTimeout = 30 * time.Second

func workloads() []*Workload {
	all := impls()
	// with returns all the implementations and then extra ones.
	with := func(extra ...Impl) []Impl { return append(all[:len(all):len(all)], extra...) }
	return append([]*Workload{
		{Name: "oneway64", Title: "one-way 64 B, pipelined", Size: 64, Batch: 8192, OpFrames: 1,
			Impls: with(framedSendImpl(), framedWriterImpl(), framedServerImpl()), open: openOneWay},
		{Name: "oneway1k", Title: "one-way 1 KiB, pipelined", Size: 1024, Batch: 2048, OpFrames: 1,
			Impls: with(framedSendImpl(), framedWriterImpl()), open: openOneWay},
		{Name: "echo64", Title: "echo 64 B, 1 conn, 64 in flight", Size: 64, Batch: 4096, OpFrames: 1,
			Impls: with(framedWriterImpl(), framedServerImpl()), open: openEcho},
		{Name: "echo64x64", Title: "echo 64 B, 64 conns, 64 in flight each", Size: 64, Batch: 64 * 256, OpFrames: 64 * 64,
			Impls: with(framedWriterImpl(), framedServerImpl()), open: openEchoConns},
		{Name: "pingpong", Title: "ping-pong 64 B, 1 in flight", Size: 64, Batch: 256, OpFrames: 1,
			Impls: with(framedRequestImpl(), framedWriterImpl()), LowerIsBetter: true, open: openPingPong},
		{Name: "requests64", Title: "requests 64 B, 1 conn, 64 in flight", Size: 64, Batch: window * 256, OpFrames: window,
			Impls: []Impl{rawImpl(), framedRequestImpl(), framedImpl()}, open: openPipelined},
		{Name: "echo1m", Title: "echo 1 MiB, 4 in flight", Size: 1 << 20, Batch: 8, OpFrames: 1,
			Impls: with(framedWriterImpl()), open: openBulk},
		{Name: "writers8", Title: "8 goroutines writing 64 B to one conn", Size: 64, Batch: 8 * 1024, OpFrames: 8 * 1024,
			Impls: []Impl{mutexWriterImpl(), framedImpl()}, ShowWrites: true, open: openWriters},
	}, serverOnlyWorkloads()...)
}

func workloadByName(name string) (*Workload, bool) {
	for _, w := range workloads() {
		if w.Name == name {
			return w, true
		}
	}
	return nil, false
}

// payload returns a frame's payload: bytes in a fixed pattern, whose first
// eight bytes stamp will overwrite with a sequence number.
func payload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

// stamp writes seq into p's first eight bytes.
func stamp(p []byte, seq uint64) {
	if len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, seq)
	}
}

// check reports whether got is the payload want stamped with seq.
func check(got, want []byte, seq uint64) error {
	if len(got) != len(want) {
		return fmt.Errorf("bench: reply %d has %d bytes, want %d", seq, len(got), len(want))
	}
	if len(got) >= 8 && binary.LittleEndian.Uint64(got) != seq {
		return fmt.Errorf("bench: reply %d out of order: got %d", seq, binary.LittleEndian.Uint64(got))
	}
	if checkAll && len(got) > 8 && !bytes.Equal(got[8:], want[8:]) {
		return fmt.Errorf("bench: reply %d corrupted", seq)
	}
	return nil
}

// closeAll closes every client and then the server, and returns the first
// error. Clients first: a server that closes first can turn a clean end
// into a reset.
func closeAll(srv Server, cs ...Client) error {
	var err error
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
	if srv != nil {
		err = srv.Close()
	}
	return err
}

// oneWay streams frames to a sink: the client writes as fast as it can,
// flushing only when its buffer fills and at the end; the server reads and
// counts. The clock stops when the sink has read the last frame.
type oneWay struct {
	srv  Server
	done chan SinkDone
	c    Client
	p    []byte
	sent int64
}

func openOneWay(w *Workload, im Impl, deadline time.Time) (session, error) {
	return openSink(im, w.Size, deadline)
}

func openSink(im Impl, size int, deadline time.Time) (*oneWay, error) {
	s := &oneWay{done: make(chan SinkDone, 1), p: payload(size)}
	var err error
	if s.srv, err = im.Serve(ServerConfig{Mode: Sink, Size: size, Done: s.done}); err != nil {
		return nil, err
	}
	if s.c, err = im.Dial(s.srv.Addr()); err != nil {
		s.srv.Close()
		return nil, err
	}
	s.c.SetDeadline(deadline)
	return s, nil
}

func (s *oneWay) batch(n int) error {
	for range n {
		stamp(s.p, uint64(s.sent))
		if err := s.c.WriteFrame(s.p); err != nil {
			return err
		}
		s.sent++
	}
	return nil
}

func (s *oneWay) finish() (int64, time.Time, error) {
	if err := s.c.CloseWrite(); err != nil {
		return 0, time.Time{}, err
	}
	return waitSink(s.done, s.sent)
}

func waitSink(done <-chan SinkDone, sent int64) (int64, time.Time, error) {
	select {
	case d := <-done:
		if d.Err == nil && d.Frames != sent {
			d.Err = fmt.Errorf("bench: sink read %d frames, %d were sent", d.Frames, sent)
		}
		return d.Frames, d.At, d.Err
	case <-time.After(sinkTimeout):
		return 0, time.Time{}, errors.New("bench: sink did not report")
	}
}

func (s *oneWay) close() error { return closeAll(s.srv, s.c) }

// echo keeps up to window frames in flight on one connection from one
// goroutine: it writes frames until the window is full, flushes, then
// reads at least one reply and every further reply already buffered.
type echo struct {
	c          Client
	p          []byte
	win        int
	sent, recv int64
}

func newEcho(c Client, size, win int) *echo { return &echo{c: c, p: payload(size), win: win} }

func (e *echo) batch(n int) error {
	for range n {
		if e.sent-e.recv == int64(e.win) {
			if err := e.c.Flush(); err != nil {
				return err
			}
			if err := e.read(); err != nil {
				return err
			}
		}
		stamp(e.p, uint64(e.sent))
		if err := e.c.WriteFrame(e.p); err != nil {
			return err
		}
		e.sent++
	}
	return nil
}

// read reads one reply and then those already buffered.
func (e *echo) read() error {
	for {
		q, err := e.c.ReadFrame()
		if err != nil {
			return err
		}
		if err := check(q, e.p, uint64(e.recv)); err != nil {
			return err
		}
		e.recv++
		if e.recv == e.sent || e.c.Buffered() == 0 {
			return nil
		}
	}
}

func (e *echo) drain() error {
	if err := e.c.Flush(); err != nil {
		return err
	}
	for e.recv < e.sent {
		if err := e.read(); err != nil {
			return err
		}
	}
	return nil
}

type echoOne struct {
	srv Server
	*echo
}

func openEcho(w *Workload, im Impl, deadline time.Time) (session, error) {
	srv, err := im.Serve(ServerConfig{Mode: Echo})
	if err != nil {
		return nil, err
	}
	c, err := im.Dial(srv.Addr())
	if err != nil {
		srv.Close()
		return nil, err
	}
	c.SetDeadline(deadline)
	return &echoOne{srv: srv, echo: newEcho(c, w.Size, window)}, nil
}

func (s *echoOne) finish() (int64, time.Time, error) {
	err := s.drain()
	return s.recv, time.Now(), err
}

func (s *echoOne) close() error { return closeAll(s.srv, s.c) }

// echoMany runs an echo client per connection, each on its own goroutine.
type echoMany struct {
	srv   Server
	conns []*echo
}

func openEchoConns(w *Workload, im Impl, deadline time.Time) (session, error) {
	srv, err := im.Serve(ServerConfig{Mode: Echo})
	if err != nil {
		return nil, err
	}
	s := &echoMany{srv: srv}
	for range echoConns {
		c, err := im.Dial(srv.Addr())
		if err != nil {
			s.close()
			return nil, err
		}
		c.SetDeadline(deadline)
		s.conns = append(s.conns, newEcho(c, w.Size, window))
	}
	return s, nil
}

// each runs f on every connection at once and returns the first error.
func (s *echoMany) each(f func(e *echo) error) error {
	errs := make([]error, len(s.conns))
	var wg sync.WaitGroup
	for i, e := range s.conns {
		wg.Go(func() { errs[i] = f(e) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *echoMany) batch(n int) error {
	per := n / len(s.conns)
	return s.each(func(e *echo) error { return e.batch(per) })
}

func (s *echoMany) finish() (int64, time.Time, error) {
	err := s.each((*echo).drain)
	var frames int64
	for _, e := range s.conns {
		frames += e.recv
	}
	return frames, time.Now(), err
}

func (s *echoMany) close() error {
	cs := make([]Client, len(s.conns))
	for i, e := range s.conns {
		cs[i] = e.c
	}
	return closeAll(s.srv, cs...)
}

// pingPong sends one frame and waits for its reply before the next,
// timing each round trip.
type pingPong struct {
	srv  Server
	c    Client
	p    []byte
	n    int64
	lats []time.Duration
}

// maxLatencies bounds the round-trip times kept per run.
const maxLatencies = 1 << 20

func openPingPong(w *Workload, im Impl, deadline time.Time) (session, error) {
	if im.Name == framedRequestName {
		return openRequests(deadline, 1)
	}
	srv, err := im.Serve(ServerConfig{Mode: Echo})
	if err != nil {
		return nil, err
	}
	c, err := im.Dial(srv.Addr())
	if err != nil {
		srv.Close()
		return nil, err
	}
	c.SetDeadline(deadline)
	return &pingPong{srv: srv, c: c, p: payload(w.Size), lats: make([]time.Duration, 0, 1<<14)}, nil
}

func (s *pingPong) batch(n int) error {
	for range n {
		start := time.Now()
		stamp(s.p, uint64(s.n))
		if err := s.c.WriteFrame(s.p); err != nil {
			return err
		}
		if err := s.c.Flush(); err != nil {
			return err
		}
		q, err := s.c.ReadFrame()
		if err != nil {
			return err
		}
		if len(s.lats) < maxLatencies {
			s.lats = append(s.lats, time.Since(start))
		}
		if err := check(q, s.p, uint64(s.n)); err != nil {
			return err
		}
		s.n++
	}
	return nil
}

func (s *pingPong) finish() (int64, time.Time, error) { return s.n, time.Now(), nil }
func (s *pingPong) latencies() []time.Duration        { return s.lats }
func (s *pingPong) close() error                      { return closeAll(s.srv, s.c) }

// bulk echoes frames with a writer goroutine and a reader, keeping up to
// win frames in flight. With 1 MiB frames one goroutine could deadlock:
// they fill the socket buffers before the replies are read. The writer
// flushes after every frame, or, when lazy, only when it would wait: for
// a credit, or for more frames to send.
type bulk struct {
	srv     Server
	c       Client
	win     int
	lazy    bool
	p, want []byte
	credits chan struct{} // one token per frame in flight
	cmd     chan int      // frames the writer is to send
	quit    chan struct{} // stops the writer
	wdone   chan struct{} // closed when the writer has returned
	target  int64         // frames asked of the writer so far
	recv    int64
}

func openBulk(w *Workload, im Impl, deadline time.Time) (session, error) {
	return openWriterReader(w, im, deadline, bigWindow, false)
}

// openPipelined keeps window requests in flight on one connection: 64
// goroutines each calling framed's Client.Request, or a writer goroutine
// and a reader on any other implementation's client.
func openPipelined(w *Workload, im Impl, deadline time.Time) (session, error) {
	if im.Name == framedRequestName {
		return openRequests(deadline, window)
	}
	return openWriterReader(w, im, deadline, window, true)
}

func openWriterReader(w *Workload, im Impl, deadline time.Time, win int, lazy bool) (session, error) {
	srv, err := im.Serve(ServerConfig{Mode: Echo})
	if err != nil {
		return nil, err
	}
	c, err := im.Dial(srv.Addr())
	if err != nil {
		srv.Close()
		return nil, err
	}
	c.SetDeadline(deadline)
	s := &bulk{
		srv: srv, c: c, win: win, lazy: lazy, p: payload(w.Size), want: payload(w.Size),
		credits: make(chan struct{}, win),
		cmd:     make(chan int, 16),
		quit:    make(chan struct{}),
		wdone:   make(chan struct{}),
	}
	go s.writer()
	return s, nil
}

// writer sends the frames batch asks for, each once a credit is free. It
// stops at the first write error: the reader then fails on the same
// connection, or at its deadline.
func (s *bulk) writer() {
	defer close(s.wdone)
	var seq uint64
	for {
		var n int
		select {
		case n = <-s.cmd:
		case <-s.quit:
			return
		}
		for range n {
			if !s.credit() {
				return
			}
			stamp(s.p, seq)
			if s.c.WriteFrame(s.p) != nil || !s.lazy && s.c.Flush() != nil {
				return
			}
			seq++
		}
		if s.lazy && s.c.Flush() != nil {
			return
		}
	}
}

// credit takes a credit for one more frame in flight, flushing first if
// the writer is lazy and would wait. It reports false when the writer is
// to stop.
func (s *bulk) credit() bool {
	if s.lazy {
		select {
		case s.credits <- struct{}{}:
			return true
		default:
		}
		if s.c.Flush() != nil {
			return false
		}
	}
	select {
	case s.credits <- struct{}{}:
		return true
	case <-s.quit:
		return false
	}
}

func (s *bulk) batch(n int) error {
	s.target += int64(n)
	s.cmd <- n
	for s.recv+int64(s.win) < s.target {
		if err := s.read(); err != nil {
			return err
		}
	}
	return nil
}

func (s *bulk) read() error {
	q, err := s.c.ReadFrame()
	if err != nil {
		return err
	}
	if err := check(q, s.want, uint64(s.recv)); err != nil {
		return err
	}
	s.recv++
	<-s.credits
	return nil
}

func (s *bulk) finish() (int64, time.Time, error) {
	for s.recv < s.target {
		if err := s.read(); err != nil {
			return s.recv, time.Now(), err
		}
	}
	return s.recv, time.Now(), nil
}

func (s *bulk) close() error {
	close(s.quit)
	s.c.Close() // unblocks a writer stuck on the network
	<-s.wdone
	return s.srv.Close()
}

// framedRequestName is the row of framed's own request/reply client.
const framedRequestName = "framed Client.Request"

// framedRequestImpl is framed.Dial's Client with Request called by many
// goroutines at once, which is how the library offers pipelining: each
// Request queues its frame and waits for its own reply. It only fits the
// ping-pong and requests64 workloads, which open it by name.
func framedRequestImpl() Impl {
	im := framedImpl()
	im.Name = framedRequestName
	im.Key = "framed-request"
	im.Note = "framed.Server + framed.Dial's Client.Request, one goroutine per request in flight (1 for ping-pong, 64 for requests64)"
	im.Dial = nil
	return im
}

// requests keeps workers goroutines each calling Request in a loop, so up
// to workers requests are in flight.
type requests struct {
	srv    Server
	cl     *framed.Client
	ctx    context.Context
	cancel context.CancelFunc
	work   []chan int // one per worker: frames to request
	done   chan error // one result per worker and batch
	wg     sync.WaitGroup
	frames int64
	lats   []time.Duration // with one worker: round-trip times
}

func openRequests(deadline time.Time, workers int) (session, error) {
	srv, err := serveFramed(ServerConfig{Mode: Echo})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	cl, err := framed.Dial(ctx, srv.Addr())
	if err != nil {
		cancel()
		srv.Close()
		return nil, err
	}
	s := &requests{srv: srv, cl: cl, ctx: ctx, cancel: cancel, done: make(chan error, workers)}
	if workers == 1 {
		s.lats = make([]time.Duration, 0, 1<<14)
	}
	for i := range workers {
		w := make(chan int, 1)
		s.work = append(s.work, w)
		s.wg.Go(func() { s.worker(uint64(i), w) })
	}
	return s, nil
}

func (s *requests) worker(id uint64, work <-chan int) {
	p, want := payload(64), payload(64)
	seq := id << 40
	for n := range work {
		var err error
		for range n {
			start := time.Now()
			stamp(p, seq)
			var q []byte
			if q, err = s.cl.Request(s.ctx, p); err != nil {
				break
			}
			if s.lats != nil && len(s.lats) < maxLatencies {
				s.lats = append(s.lats, time.Since(start))
			}
			if err = check(q, want, seq); err != nil {
				break
			}
			seq++
		}
		s.done <- err
	}
}

func (s *requests) batch(n int) error {
	per := n / len(s.work)
	for _, w := range s.work {
		w <- per
	}
	var errs []error
	for range s.work {
		errs = append(errs, <-s.done)
	}
	s.frames += int64(per * len(s.work))
	return errors.Join(errs...)
}

func (s *requests) finish() (int64, time.Time, error) { return s.frames, time.Now(), nil }
func (s *requests) latencies() []time.Duration        { return s.lats }

func (s *requests) close() error {
	for _, w := range s.work {
		close(w)
	}
	s.wg.Wait()
	s.cl.Close()
	s.cancel()
	return s.srv.Close()
}

// mutexWriterName is the baseline row of the concurrent-writers workload.
const mutexWriterName = "mutex + Write per frame"

// mutexWriterImpl names the baseline for many writers on one connection:
// each frame built in the writer's own buffer, then one net.Conn.Write
// under a mutex. Only the writers workload uses it.
func mutexWriterImpl() Impl {
	return Impl{Name: mutexWriterName, Key: "mutex", Note: "sync.Mutex held around one net.Conn.Write per frame"}
}

// writers has writerCount goroutines write 64 B frames to one
// connection; the server is the raw sink for both rows, so the rows differ
// only in the writing side. The connection is the dialed *net.TCPConn
// itself, so framed writes to it as it would for a user; the table counts
// its write system calls from /proc/self/io (the sink only reads).
type writers struct {
	srv    Server
	done   chan SinkDone
	nc     *net.TCPConn
	fc     *framed.Conn // nil for the mutex row
	mu     sync.Mutex
	bufs   [][]byte // each writer's frame, header included
	sent   int64
	frames []int64 // frames each writer has sent
}

const writerCount = 8

func openWriters(w *Workload, im Impl, deadline time.Time) (session, error) {
	s := &writers{done: make(chan SinkDone, 1), frames: make([]int64, writerCount)}
	var err error
	if s.srv, err = serveRaw(ServerConfig{Mode: Sink, Size: 64, Done: s.done}); err != nil {
		return nil, err
	}
	nc, err := dialTCP(s.srv.Addr())
	if err != nil {
		s.srv.Close()
		return nil, err
	}
	nc.SetDeadline(deadline)
	s.nc = nc
	if im.Name == "framed" {
		s.fc = framed.NewConn(nc, framed.ConnConfig{})
	}
	for range writerCount {
		b := make([]byte, headerSize+64)
		putHeader(b, 64)
		copy(b[headerSize:], payload(64))
		s.bufs = append(s.bufs, b)
	}
	return s, nil
}

func (s *writers) batch(n int) error {
	per := n / writerCount
	errs := make([]error, writerCount)
	var wg sync.WaitGroup
	for i := range writerCount {
		wg.Go(func() { errs[i] = s.write(i, per) })
	}
	wg.Wait()
	s.sent += int64(per * writerCount)
	return errors.Join(errs...)
}

func (s *writers) write(i, n int) error {
	b := s.bufs[i]
	for range n {
		stamp(b[headerSize:], uint64(i)<<40|uint64(s.frames[i]))
		s.frames[i]++
		if s.fc != nil {
			if err := s.fc.WriteFrame(b[headerSize:]); err != nil {
				return err
			}
			continue
		}
		s.mu.Lock()
		_, err := s.nc.Write(b)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *writers) finish() (int64, time.Time, error) {
	var err error
	if s.fc != nil {
		err = s.fc.CloseWrite()
	} else {
		err = s.nc.CloseWrite()
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	return waitSink(s.done, s.sent)
}

func (s *writers) close() error {
	if s.fc != nil {
		s.fc.Close()
	} else {
		s.nc.Close()
	}
	return s.srv.Close()
}
