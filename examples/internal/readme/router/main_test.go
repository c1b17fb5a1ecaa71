package main

import (
	"testing"

	"github.com/framed-go/framed/examples/internal/readme"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPrintsWhatItsCommentSays runs the program as a reader who pasted it
// from the README would.
func TestPrintsWhatItsCommentSays(t *testing.T) { readme.CheckPrints(t, main) }
