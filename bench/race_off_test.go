//go:build !race

package bench

// raceEnabled: not built with the race detector.
const raceEnabled = false
