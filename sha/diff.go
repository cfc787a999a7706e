package sha

import "fmt"

// Run is a half-open range of block indexes [Start, End).
type Run struct {
	Start, End int
}

// Len returns the number of blocks in the run.
func (r Run) Len() int { return r.End - r.Start }

// Runs returns the maximal runs of blocks in [first, last) for which selected
// is true, never crossing a multiple of blocksPerObject (Cinder never lets an
// object span two object_size reads). blocksPerObject <= 0 means no split.
func Runs(first, last, blocksPerObject int, selected func(i int) bool) []Run {
	var runs []Run
	start := -1
	for i := first; i < last; i++ {
		boundary := blocksPerObject > 0 && i%blocksPerObject == 0
		if start >= 0 && (boundary || !selected(i)) {
			runs = append(runs, Run{start, i})
			start = -1
		}
		if start < 0 && selected(i) {
			start = i
		}
	}
	if start >= 0 {
		runs = append(runs, Run{start, last})
	}
	return runs
}

// Diff returns the runs of blocks of child that differ from parent, split at
// object boundaries of objectSize bytes, as Cinder's incremental backup
// stores them. Blocks beyond the end of parent count as changed. The block
// sizes must match (Cinder refuses an incremental whose block size changed).
func Diff(parent, child *Manifest, objectSize int64) ([]Run, error) {
	if parent.BlockSize != child.BlockSize {
		return nil, fmt.Errorf("block size changed from %d to %d bytes: an incremental needs the parent's block size; do a full backup", parent.BlockSize, child.BlockSize)
	}
	if objectSize <= 0 || objectSize%int64(child.BlockSize) != 0 {
		return nil, fmt.Errorf("object size %d is not a positive multiple of the block size %d", objectSize, child.BlockSize)
	}
	per := int(objectSize / int64(child.BlockSize))
	return Runs(0, len(child.Hashes), per, func(i int) bool {
		return i >= len(parent.Hashes) || parent.Hashes[i] != child.Hashes[i]
	}), nil
}
