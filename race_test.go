//go:build race

package framed_test

// raceEnabled reports whether the race detector is on. Under it sync.Pool
// drops items at random, so allocation counts that rely on a pool are
// only checked without it (.ci/run runs those tests both ways).
const raceEnabled = true
