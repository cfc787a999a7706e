//go:build !linux

package posix

import "os"

func renameat2NoReplace(d *os.File, old, new string) error { return errNoReplaceUnsupported }
