//go:build !race

package framed_test

const raceEnabled = false
