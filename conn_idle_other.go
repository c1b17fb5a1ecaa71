//go:build !unix

package framed

import "net"

// idleReader returns nil: on this platform an idle Conn keeps its read
// buffer and is read as usual.
func idleReader(net.Conn, *Reader, *countingReader) func() error { return nil }
