package interop_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs this test binary as a peer (see startPeer) when asked to,
// and otherwise fails the tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	if name := os.Getenv(peerEnv); name != "" {
		os.Exit(runPeer(name, os.Getenv(peerArgsEnv)))
	}
	goleak.VerifyTestMain(m)
}
