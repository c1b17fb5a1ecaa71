//go:build !linux

package framed_test

import "testing"

// blackholeAddr needs a listener whose backlog can be filled; only the
// Linux test knows how.
func blackholeAddr(t testing.TB) string {
	t.Skip("needs Linux to drop connection attempts on loopback")
	return ""
}
