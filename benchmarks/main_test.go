package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the child processes of the memory and allocation
// workloads (this test binary starts itself for them, as the program
// does), and otherwise fails the tests if any goroutine outlives them.
//
// gnet's goroutine pool package starts an ants pool when it is imported,
// whether or not gnet runs, and never stops it: its two goroutines are
// the only ones let through.
func TestMain(m *testing.M) {
	if isChild() {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}
