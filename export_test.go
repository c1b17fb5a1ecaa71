package framed

import (
	"bytes"
	"fmt"
	"runtime"
)

// WriteWaiters returns how many goroutines wait in c's WriteFrame, Flush
// or CloseWrite for the write queue to drain, found in the goroutines'
// stacks (the writer goroutine is not counted). Tests use it to know that
// a writer has blocked before they act.
func WriteWaiters(c *Conn) int {
	self := fmt.Appendf(nil, "(*writeQueue).waitLocked(%p", &c.q)
	count := 0
	for _, g := range goroutines() {
		if bytes.Contains(g, self) && !bytes.Contains(g, []byte("(*writeQueue).run(")) {
			count++
		}
	}
	return count
}

// NetworkWriteBlocked reports whether a goroutine of c's write queue waits
// in a network write that cannot go on: the peer has stopped taking bytes.
func NetworkWriteBlocked(c *Conn) bool {
	self := fmt.Appendf(nil, "(*writeQueue).writeOutLocked(%p", &c.q)
	for _, g := range goroutines() {
		if bytes.Contains(g, self) && (bytes.Contains(g, []byte("[IO wait")) || bytes.Contains(g, []byte("[select"))) {
			return true
		}
	}
	return false
}

// goroutines returns the stack of every goroutine, one entry each.
func goroutines() [][]byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Split(buf[:n], []byte("\n\n"))
		}
		buf = make([]byte, 2*len(buf))
	}
}
