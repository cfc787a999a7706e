//go:build !unix

package bench

import "os"

// maxRSS is unknown on this platform.
func maxRSS(*os.ProcessState) int64 { return 0 }

// flushDirty does nothing on this platform.
func flushDirty() {}
