package bench

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
)

// The stages a CPU profile's time is attributed to (SummarizeProfile).
const (
	// StageHash is SHA-256 (crypto/sha256 and the FIPS module's sha256).
	StageHash = "hash"
	// StageMD5 is MD5 (crypto/md5), Cinder's object checksums.
	StageMD5 = "md5"
	// StageCodec is compression: compress/*, hash/adler32 (zlib's
	// checksum), github.com/klauspost/compress (flate, zlib, zstd),
	// github.com/dsnet/compress (bzip2).
	StageCodec = "codec"
	// StageIO is device and network I/O: system calls, internal/poll, the
	// runtime's network poller, os file reads and writes.
	StageIO = "io"
	// StageMemory is copying, clearing, allocating and collecting memory:
	// runtime.memmove, memclr, mallocgc and the garbage collector.
	StageMemory = "memory"
	// StageOther is everything else: chunkback's own code, the scheduler,
	// the standard library's other packages.
	StageOther = "other"
)

// ProfileStages returns the stages, in the order outputs show them.
func ProfileStages() []string {
	return []string{StageHash, StageMD5, StageCodec, StageIO, StageMemory, StageOther}
}

// StartCPUProfile starts the CPU profiler (runtime/pprof), writing to the
// new file path; the returned function stops it and closes the file.
func StartCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: starting the CPU profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// funcPackage returns the import path of a Go function's symbol name
// ("github.com/a/b.(*T).M" -> "github.com/a/b"); "" for a name without a
// package (C symbols).
func funcPackage(name string) string {
	slash := strings.LastIndexByte(name, '/')
	dot := strings.IndexByte(name[slash+1:], '.')
	if dot < 0 {
		return ""
	}
	return name[:slash+1+dot]
}

// underPkg reports whether pkg is path or a package below it.
func underPkg(pkg, path string) bool {
	return pkg == path || strings.HasPrefix(pkg, path+"/")
}

// memoryFuncs are runtime functions that copy, clear or allocate memory,
// or collect garbage, whatever called them.
var memoryFuncs = []string{
	"runtime.memmove", "runtime.memclrNoHeapPointers", "runtime.memclrNoHeapPointersChunked",
	"runtime.typedmemmove", "runtime.typedmemclr", "runtime.typedslicecopy", "runtime.wbMove", "runtime.bulkBarrierPreWrite",
	"runtime.mallocgc", "runtime.newobject", "runtime.makeslice", "runtime.growslice", "runtime.nextFreeFast",
	"runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.gcDrainN", "runtime.gcDrainMarkWorkerDedicated",
	"runtime.gcDrainMarkWorkerIdle", "runtime.gcDrainMarkWorkerFractional", "runtime.gcAssistAlloc",
	"runtime.gcAssistAlloc1", "runtime.scanobject", "runtime.scanblock", "runtime.scanstack", "runtime.markroot",
	"runtime.greyobject", "runtime.findObject", "runtime.bgsweep", "runtime.sweepone", "runtime.bgscavenge",
	"runtime.gcStart", "runtime.gcMarkDone", "runtime.gcMarkTermination", "runtime.sysUnused", "runtime.sysUsed",
	"runtime.madvise", "runtime.sysAlloc", "runtime.sysMap", "runtime._GC",
}

// isMemoryFunc reports whether name is one of memoryFuncs (or a method
// of the heap's and the collector's types, or a variant such as
// mallocgcSmallNoscan).
func isMemoryFunc(name string) bool {
	if slices.Contains(memoryFuncs, name) {
		return true
	}
	for _, p := range []string{"runtime.mallocgc", "runtime.memclr", "runtime.memmove", "runtime.gcDrain", "runtime.gcMark",
		"runtime.(*mheap)", "runtime.(*mcache)", "runtime.(*mcentral)", "runtime.(*mspan)", "runtime.(*gcWork)",
		"runtime.(*gcControllerState)", "runtime.(*sweepLocked)", "runtime.(*pageAlloc)", "runtime.(*scavengerState)",
		"runtime.(*gcBits)", "runtime.(*spanSet)", "runtime.heapBits", "runtime.scanObject", "runtime.scanSpan"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ClassifyFunc returns the stage of the time spent in a function, by its
// symbol name (as a profile has it): StageOther for what no other stage
// claims.
func ClassifyFunc(name string) string {
	pkg := funcPackage(name)
	switch {
	case underPkg(pkg, "crypto/sha256"), underPkg(pkg, "crypto/internal/fips140/sha256"):
		return StageHash
	case underPkg(pkg, "crypto/md5"):
		return StageMD5
	case underPkg(pkg, "compress"), pkg == "hash/adler32",
		underPkg(pkg, "github.com/klauspost/compress"), underPkg(pkg, "github.com/dsnet/compress"),
		strings.Contains(pkg, "zstd"), strings.Contains(pkg, "/flate"):
		return StageCodec
	case pkg == "syscall", underPkg(pkg, "internal/poll"), underPkg(pkg, "internal/runtime/syscall"),
		underPkg(pkg, "golang.org/x/sys/unix"), strings.HasPrefix(name, "runtime.netpoll"),
		strings.HasPrefix(name, "runtime.entersyscall"), strings.HasPrefix(name, "runtime.exitsyscall"),
		pkg == "os" && isOSFileIO(name):
		return StageIO
	case pkg == "runtime" && isMemoryFunc(name):
		return StageMemory
	}
	return StageOther
}

// isOSFileIO reports whether name, a function of package os, reads or
// writes a file.
func isOSFileIO(name string) bool {
	for _, m := range []string{".Read", ".ReadAt", ".Write", ".WriteAt", ".pread", ".pwrite", ".read", ".write",
		".ReadFrom", ".WriteTo", ".Seek", ".Sync", ".copyFileRange", ".spliceToFile", ".genericReadFrom"} {
		if strings.HasSuffix(name, m) {
			return true
		}
	}
	return false
}

// isTransparentFrame reports whether a frame's time belongs to its caller:
// the race detector's (ThreadSanitizer and the runtime's calls into it),
// charged to the instrumented code, and the asynchronous preemption's
// (runtime.asyncPreempt), charged to the function it interrupted.
func isTransparentFrame(name string) bool {
	return strings.HasPrefix(name, "runtime.asyncPreempt") ||
		strings.Contains(name, "__tsan") || strings.Contains(name, "__sanitizer") ||
		strings.HasPrefix(name, "runtime.race") || strings.HasPrefix(name, "racecall") ||
		strings.HasPrefix(name, "__interceptor")
}

// ClassifyStack returns the stage of one sample, its call stack given leaf
// first: the stage of the leaf function (ClassifyFunc). Frames of the race
// detector and of asynchronous preemption are skipped (the time goes to the
// instrumented or interrupted caller). A leaf
// in the runtime that no stage claims (a lock, a futex, a write barrier)
// goes to the nearest caller that a stage does claim within the runtime:
// memory under mallocgc or the collector, I/O under a system call.
func ClassifyStack(frames []string) string {
	i := 0
	for i < len(frames)-1 && isTransparentFrame(frames[i]) {
		i++
	}
	if i >= len(frames) {
		return StageOther
	}
	st := ClassifyFunc(frames[i])
	if st != StageOther || funcPackage(frames[i]) != "runtime" {
		return st
	}
	for _, f := range frames[i+1:] {
		if isTransparentFrame(f) {
			continue
		}
		switch up := ClassifyFunc(f); {
		case up == StageMemory || up == StageIO:
			return up
		case funcPackage(f) != "runtime":
			return StageOther
		}
	}
	return StageOther
}

// ProfileSummary is where a CPU profile's time went.
type ProfileSummary struct {
	// Shares maps each stage of ProfileStages to its share of the sampled
	// CPU time, 0 to 1; they add up to 1 (all 0 with no samples).
	Shares map[string]float64
	// CPUSeconds is the sampled CPU time; Samples the number of samples.
	CPUSeconds float64
	Samples    int64
	// Top are the leaf functions with the most CPU time, most first (at
	// most ten), each with its stage.
	Top []ProfileFunc
}

// ProfileFunc is a leaf function's CPU time in a profile.
type ProfileFunc struct {
	Name    string
	Stage   string
	Seconds float64
}

// SummarizeProfile reads a CPU profile in pprof's format (gzipped
// protobuf, as runtime/pprof writes it) and attributes each sample's CPU
// time to a stage (ClassifyStack).
func SummarizeProfile(r io.Reader) (*ProfileSummary, error) {
	p, err := parseProfile(r)
	if err != nil {
		return nil, err
	}
	vi := len(p.sampleTypes) - 1
	for i, t := range p.sampleTypes {
		if t == "cpu" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, errors.New("bench: profile: no sample types")
	}
	var total int64
	byStage := map[string]int64{}
	byLeaf := map[string]int64{}
	s := &ProfileSummary{Shares: map[string]float64{}}
	for _, smp := range p.samples {
		if vi >= len(smp.values) {
			return nil, errors.New("bench: profile: a sample lacks a value")
		}
		v := smp.values[vi]
		frames := p.frames(smp.locations)
		st := ClassifyStack(frames)
		byStage[st] += v
		leaf := "?"
		if len(frames) > 0 {
			leaf = frames[0]
		}
		byLeaf[leaf] += v
		total += v
		s.Samples++
	}
	for _, st := range ProfileStages() {
		s.Shares[st] = 0
		if total > 0 {
			s.Shares[st] = float64(byStage[st]) / float64(total)
		}
	}
	s.CPUSeconds = float64(total) / 1e9
	for name, v := range byLeaf {
		s.Top = append(s.Top, ProfileFunc{Name: name, Stage: ClassifyStack([]string{name}), Seconds: float64(v) / 1e9})
	}
	slices.SortFunc(s.Top, func(a, b ProfileFunc) int {
		if a.Seconds != b.Seconds {
			if a.Seconds > b.Seconds {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	s.Top = s.Top[:min(len(s.Top), 10)]
	return s, nil
}

// SummarizeProfileFile is SummarizeProfile of a file.
func SummarizeProfileFile(path string) (*ProfileSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := SummarizeProfile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// The part of profile.proto (github.com/google/pprof/proto/profile.proto)
// that SummarizeProfile reads.
type (
	pprofProfile struct {
		sampleTypes []string // the type of each value, from the string table
		samples     []pprofSample
		locations   map[uint64][]uint64 // location ID -> function IDs, innermost first
		functions   map[uint64]string   // function ID -> name
	}
	pprofSample struct {
		locations []uint64 // leaf first
		values    []int64
	}
)

// frames returns the function names of a sample's stack, leaf first
// (inlined functions before the function they were inlined into).
func (p *pprofProfile) frames(locs []uint64) []string {
	var out []string
	for _, l := range locs {
		for _, fn := range p.locations[l] {
			if name, ok := p.functions[fn]; ok && name != "" {
				out = append(out, name)
			}
		}
	}
	return out
}

// parseProfile decodes a pprof profile (gzipped or not).
func parseProfile(r io.Reader) (*pprofProfile, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("bench: profile: %w", err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("bench: profile: %w", err)
		}
	}
	p := &pprofProfile{locations: map[uint64][]uint64{}, functions: map[uint64]string{}}
	var strs []string
	var typeIdx []int64
	funcNames := map[uint64]int64{}
	err = eachField(raw, func(num int, wire int, v uint64, b []byte) error {
		switch num {
		case 1: // sample_type: ValueType{type = 1}
			var t int64
			err := eachField(b, func(num, wire int, v uint64, _ []byte) error {
				if num == 1 && wire == 0 {
					t = int64(v)
				}
				return nil
			})
			typeIdx = append(typeIdx, t)
			return err
		case 2: // sample: Sample{location_id = 1, value = 2}
			var s pprofSample
			err := eachField(b, func(num, wire int, v uint64, b []byte) error {
				switch num {
				case 1:
					return appendPacked(&s.locations, wire, v, b, func(x uint64) uint64 { return x })
				case 2:
					return appendPacked(&s.values, wire, v, b, func(x uint64) int64 { return int64(x) })
				}
				return nil
			})
			p.samples = append(p.samples, s)
			return err
		case 4: // location: Location{id = 1, line = 4: Line{function_id = 1}}
			var id uint64
			var fns []uint64
			err := eachField(b, func(num, wire int, v uint64, b []byte) error {
				switch {
				case num == 1 && wire == 0:
					id = v
				case num == 4 && wire == 2:
					return eachField(b, func(num, wire int, v uint64, _ []byte) error {
						if num == 1 && wire == 0 {
							fns = append(fns, v)
						}
						return nil
					})
				}
				return nil
			})
			p.locations[id] = fns
			return err
		case 5: // function: Function{id = 1, name = 2}
			var id uint64
			var name int64
			err := eachField(b, func(num, wire int, v uint64, _ []byte) error {
				switch {
				case num == 1 && wire == 0:
					id = v
				case num == 2 && wire == 0:
					name = int64(v)
				}
				return nil
			})
			funcNames[id] = name
			return err
		case 6: // string_table
			if wire != 2 {
				return errors.New("string table entry is not a string")
			}
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench: profile: %w", err)
	}
	str := func(i int64) (string, error) {
		if i < 0 || i >= int64(len(strs)) {
			return "", fmt.Errorf("bench: profile: string index %d out of range", i)
		}
		return strs[i], nil
	}
	for _, i := range typeIdx {
		s, err := str(i)
		if err != nil {
			return nil, err
		}
		p.sampleTypes = append(p.sampleTypes, s)
	}
	for id, i := range funcNames {
		if p.functions[id], err = str(i); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// appendPacked appends a repeated integer field's values, packed (wire
// type 2) or not (0).
func appendPacked[T any](dst *[]T, wire int, v uint64, b []byte, conv func(uint64) T) error {
	switch wire {
	case 0:
		*dst = append(*dst, conv(v))
	case 2:
		for len(b) > 0 {
			x, n := binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad packed varint")
			}
			*dst = append(*dst, conv(x))
			b = b[n:]
		}
	default:
		return fmt.Errorf("integer field with wire type %d", wire)
	}
	return nil
}

// eachField calls f with each field of a protobuf message: its number,
// wire type, and value (varints, fixed64 and fixed32 in v, length-delimited
// fields in b).
func eachField(msg []byte, f func(num, wire int, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return errors.New("bad field key")
		}
		msg = msg[n:]
		num, wire := int(key>>3), int(key&7)
		var v uint64
		var b []byte
		switch wire {
		case 0:
			if v, n = binary.Uvarint(msg); n <= 0 {
				return errors.New("bad varint")
			}
			msg = msg[n:]
		case 1:
			if len(msg) < 8 {
				return errors.New("short fixed64")
			}
			v, msg = binary.LittleEndian.Uint64(msg), msg[8:]
		case 2:
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return errors.New("bad length")
			}
			b, msg = msg[n:n+int(l)], msg[n+int(l):]
		case 5:
			if len(msg) < 4 {
				return errors.New("short fixed32")
			}
			v, msg = uint64(binary.LittleEndian.Uint32(msg)), msg[4:]
		default:
			return fmt.Errorf("unsupported wire type %d", wire)
		}
		if err := f(num, wire, v, b); err != nil {
			return err
		}
	}
	return nil
}
