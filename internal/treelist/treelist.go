// Package treelist lists the objects of a target that keeps them as files in
// a directory tree (posix, nfs, gluster) the way target.Target.List must: in
// lexical order of the full names, one directory at a time, streaming.
//
// Sorting each directory's entries by name, plus '/' for a directory, orders
// the full names lexically: every name below directory "x" starts with "x/",
// and "x/" compares with a sibling exactly as any of those names does.
package treelist

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chunkback/chunkback/target"
)

// Entry is one subdirectory or regular file of a directory, as a ReadDir
// returns it.
type Entry struct {
	// Name is the entry's name in its directory.
	Name string
	// Dir tells a subdirectory from a regular file.
	Dir bool
	// Size and ModTime describe a file, unless Stat is set.
	Size    int64
	ModTime time.Time
	// Stat, when set, is called for a file only when it is listed (a
	// directory listing that does not carry sizes need not stat files the
	// caller never reaches). An error wrapping fs.ErrNotExist skips the file
	// (deleted meanwhile).
	Stat func() (size int64, modTime time.Time, err error)
	// Handle is handed back to ReadDir to read this subdirectory (an NFS
	// file handle); nil if the reader needs none.
	Handle any
}

// ReadDir returns the subdirectories and regular files of dir ("" is the
// top), which handle identifies when the reader needs one (nil for the
// top). It may leave out entries whose names do not start with filter (Walk
// filters again), which saves stats. An error wrapping fs.ErrNotExist or
// syscall.ENOTDIR means the directory is gone or is a file: it holds no
// objects.
type ReadDir func(ctx context.Context, dir string, handle any, filter string) ([]Entry, error)

// Split checks a List prefix and splits it at its last '/' into the
// directory to read and the filter its entries' names must start with. ok
// is false when no valid object name can start with prefix. pkg names the
// target in errors.
func Split(ctx context.Context, pkg, prefix string) (dir, filter string, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", false, fmt.Errorf("%s: list %q: %w", pkg, prefix, err)
	}
	if strings.IndexByte(prefix, 0) >= 0 {
		return "", "", false, fmt.Errorf("%s: list: prefix %q contains a NUL byte: %w", pkg, prefix, target.ErrInvalidArgument)
	}
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return "", prefix, true, nil
	}
	dir, filter = prefix[:i], prefix[i+1:]
	if target.CheckName(dir) != nil {
		return "", "", false, nil
	}
	return dir, filter, true, nil
}

// Walk calls fn, in lexical order, for every file in dir (named as Split
// gives it, read through handle) whose name starts with filter, and for
// every file below its subdirectories whose names do. Names that are not
// valid object names (temporary files, "." and "..") are left out. A
// directory that is gone or is a file lists nothing. It looks at ctx
// between entries; fn's error ends the walk and is returned as it is.
func Walk(ctx context.Context, pkg, dir string, handle any, filter string, readDir ReadDir, fn func(target.Info) error) error {
	entries, err := readDir(ctx, dir, handle, filter)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return err
	}
	type keyed struct {
		key string // the name, with '/' appended for a directory
		e   Entry
	}
	kept := make([]keyed, 0, len(entries))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name, filter) || target.CheckName(e.Name) != nil {
			continue
		}
		k := e.Name
		if e.Dir {
			k += "/"
		}
		kept = append(kept, keyed{k, e})
	}
	slices.SortFunc(kept, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for _, k := range kept {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: list: %w", pkg, err)
		}
		name := path.Join(dir, k.e.Name)
		if k.e.Dir {
			if err := Walk(ctx, pkg, name, k.e.Handle, "", readDir, fn); err != nil {
				return err
			}
			continue
		}
		size, mod := k.e.Size, k.e.ModTime
		if k.e.Stat != nil {
			var err error
			size, mod, err = k.e.Stat()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
		}
		if err := fn(target.Info{Name: name, Size: size, ModTime: mod}); err != nil {
			return err
		}
	}
	return nil
}
