//go:build !unix

package framed

import "net"

// socketTryWrite returns nil: on this platform a Request's frame is
// written by the write queue's writer goroutine.
func socketTryWrite(net.Conn) func([]byte) (int, error) { return nil }
