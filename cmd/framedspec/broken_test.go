package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/framed-go/framed"
	"github.com/stretchr/testify/require"
)

// The servers below are the bugs framedspec exists to find, each a small
// echo server of the default format that is wrong in one way.

// echoEachRead answers each Read instead of each frame: it takes what one
// Read returned for one whole frame, header first. It is the sticky-packet
// bug: right while every frame arrives in a read of its own.
func echoEachRead(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n >= 4 {
			reply, _ := framed.Encode(buf[4:n])
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// echoRaw echoes bytes as they come, without framing: whole frames come
// back whole, and so does everything a server should refuse.
func echoRaw(c net.Conn) {
	io.Copy(c, c)
}

// echoNoLimit frames correctly but believes every length: it waits for
// the payload a header announces, however large, and echoes it. (It grows
// its buffer as bytes arrive, so that a test of it stays small.)
func echoNoLimit(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		h := make([]byte, 4, 64<<10)
		if _, err := io.ReadFull(r, h); err != nil {
			return
		}
		frame := h
		for rest := int(binary.LittleEndian.Uint32(h)); rest > 0; {
			k := min(rest, 1<<20)
			frame = slices.Grow(frame, k)[:len(frame)+k]
			if _, err := io.ReadFull(r, frame[len(frame)-k:]); err != nil {
				return
			}
			rest -= k
		}
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// echoFramed is a correct echo, as framed's own Reader makes it. Served one
// connection at a time, it is the server that holds every other peer up.
func echoFramed(c net.Conn) {
	r := framed.NewReader(c, framed.Format{})
	for {
		p, err := r.ReadFrame()
		if err != nil {
			return
		}
		reply, _ := framed.Encode(p)
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

// startBroken serves serve on a loopback port until the test ends: one
// goroutine per connection, or, when serial, one connection at a time. A
// connection is closed when serve returns.
func startBroken(t *testing.T, serve func(net.Conn), serial bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	handle := func(c net.Conn) {
		serve(c)
		c.Close()
		mu.Lock()
		delete(conns, c)
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			if serial {
				handle(c)
			} else {
				wg.Go(func() { handle(c) })
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
