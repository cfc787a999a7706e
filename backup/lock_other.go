//go:build !unix

package backup

// processAlive cannot tell here: every holder is presumed alive.
func processAlive(int) bool { return true }
