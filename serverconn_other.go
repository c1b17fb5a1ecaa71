//go:build !linux

package framed

import "net"

// receiveQueued returns -1: on this platform the bytes a socket has
// received but not yet delivered are not read, and Shutdown serves the
// frames already buffered.
func receiveQueued(net.Conn) int { return -1 }
