//go:build race

package bench

// raceEnabled: the race detector instruments the code, and its
// ThreadSanitizer frames (C code the profiler cannot unwind) dominate a CPU
// profile.
const raceEnabled = true
