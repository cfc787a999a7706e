package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/chunkback/chunkback/internal/cindertest"
)

// Defaults of the reference workload: "1 GiB semi-compressible file (half
// random, half text), 32 KiB blocks, 50 MiB objects".
const (
	DefaultSize       = 1 << 30
	DefaultObjectSize = 52428800
	DefaultBlockSize  = 32768
)

// Operation is one line of the reference workload.
type Operation struct {
	// Name identifies the operation (in --ops and in the reports).
	Name string
	// Engine and Kind are the Spec's.
	Engine, Kind string
	// Compression is a backup's codec.
	Compression string
	// Changed is, for an incremental, the share of blocks changed in the
	// source it reads (a copy of the full backup's source).
	Changed float64
	// Parent is the operation whose backup an incremental is made on; Of
	// the operation whose backup a restore or verify reads.
	Parent, Of string
	// Description says what is measured.
	Description string
}

// needs returns the operations this one depends on.
func (o Operation) needs() []string {
	var out []string
	for _, n := range []string{o.Parent, o.Of} {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Reference lists the reference workload's operations, in the order they
// run. The Cinder ones run only with Config.Cinder.
var Reference = []Operation{
	{Name: "full-zlib", Engine: EngineChunkback, Kind: KindBackup, Compression: "zlib", Description: "full backup, zlib"},
	{Name: "full-none", Engine: EngineChunkback, Kind: KindBackup, Compression: "none", Description: "full backup, no compression"},
	{Name: "full-zstd", Engine: EngineChunkback, Kind: KindBackup, Compression: "zstd", Description: "full backup, zstd"},
	{Name: "incr-1pct", Engine: EngineChunkback, Kind: KindBackup, Compression: "zlib", Changed: 0.01, Parent: "full-zlib", Description: "incremental on full-zlib, 1% of blocks changed"},
	{Name: "incr-10pct", Engine: EngineChunkback, Kind: KindBackup, Compression: "zlib", Changed: 0.10, Parent: "full-zlib", Description: "incremental on full-zlib, 10% of blocks changed"},
	{Name: "restore-zlib", Engine: EngineChunkback, Kind: KindRestore, Of: "full-zlib", Description: "restore of full-zlib into a new file"},
	{Name: "restore-none", Engine: EngineChunkback, Kind: KindRestore, Of: "full-none", Description: "restore of full-none into a new file"},
	{Name: "verify", Engine: EngineChunkback, Kind: KindVerify, Of: "full-zlib", Description: "verify of full-zlib"},
	{Name: "cinder-full-zlib", Engine: EngineCinder, Kind: KindBackup, Compression: "zlib", Description: "Cinder full backup, zlib"},
	{Name: "cinder-full-none", Engine: EngineCinder, Kind: KindBackup, Compression: "none", Description: "Cinder full backup, no compression"},
	{Name: "cinder-incr-1pct", Engine: EngineCinder, Kind: KindBackup, Compression: "zlib", Changed: 0.01, Parent: "cinder-full-zlib", Description: "Cinder incremental on cinder-full-zlib, 1% changed"},
	{Name: "cinder-restore-zlib", Engine: EngineCinder, Kind: KindRestore, Of: "cinder-full-zlib", Description: "Cinder restore of cinder-full-zlib into a new file"},
}

// cinderTwin names the Cinder operation measured against a chunkback one.
func cinderTwin(name string) string { return "cinder-" + name }

func findOp(name string) (Operation, bool) {
	i := slices.IndexFunc(Reference, func(o Operation) bool { return o.Name == name })
	if i < 0 {
		return Operation{}, false
	}
	return Reference[i], true
}

// Config describes a run of the reference workload.
type Config struct {
	// Dir is where the run's scratch directory is made (and removed after):
	// the source files, the stores and the restored files. Default
	// os.TempDir(). It needs about 8 x Size with Cinder: 3 for the
	// sources, 2.5 for chunkback's backups, 1.7 for Cinder's, 1 for a
	// restored file.
	Dir string
	// Size is the source's size in bytes. Default DefaultSize.
	Size int64
	// Seed selects the generated data. Default DefaultSeed.
	Seed uint64
	// ObjectSize and BlockSize configure every backup. Defaults
	// DefaultObjectSize and DefaultBlockSize.
	ObjectSize int64
	BlockSize  int
	// Workers is chunkback's number of workers. Default: the number of CPUs
	// (runtime.GOMAXPROCS).
	Workers int
	// Repeat runs each operation this many times; the report gives the
	// median time and the largest peak RSS. Default 1.
	Repeat int
	// Ops selects operations of Reference by name (empty: all). The
	// operations they depend on run too, and with Cinder so do the Cinder
	// twins of the chunkback ones.
	Ops []string
	// Cinder runs the Cinder operations too (real Cinder must be
	// available: cindertest.Available).
	Cinder bool
	// Exe is the program that runs each operation in a child process
	// (RunChild), normally os.Executable(); it must call ChildMain. Empty
	// runs the operations in this process, and peak RSS is then not
	// measured.
	Exe string
	// Log receives a line per step. Default: nothing.
	Log io.Writer
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.ObjectSize == 0 {
		c.ObjectSize = DefaultObjectSize
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	switch {
	case c.Size < 0 || c.ObjectSize <= 0 || c.BlockSize <= 0 || c.Workers < 0 || c.Repeat < 0:
		return c, errors.New("bench: size, object size, block size, workers and repeat must not be negative")
	case c.ObjectSize%int64(c.BlockSize) != 0:
		return c, fmt.Errorf("bench: object size %d is not a multiple of block size %d", c.ObjectSize, c.BlockSize)
	}
	return c, nil
}

// Plan returns the operations c runs, in order, and for each whether it was
// asked for (false: it runs because another needs its backup).
func (c Config) Plan() ([]Operation, map[string]bool, error) {
	asked := map[string]bool{}
	if len(c.Ops) == 0 {
		for _, o := range Reference {
			asked[o.Name] = true
		}
	}
	for _, n := range c.Ops {
		n = strings.TrimSpace(n)
		if n == "all" {
			for _, o := range Reference {
				asked[o.Name] = true
			}
			continue
		}
		if _, ok := findOp(n); !ok {
			names := make([]string, len(Reference))
			for i, o := range Reference {
				names[i] = o.Name
			}
			return nil, nil, fmt.Errorf("bench: unknown operation %q: choose from %s, all", n, strings.Join(names, ", "))
		}
		asked[n] = true
	}
	for n := range asked {
		if _, ok := findOp(cinderTwin(n)); ok && c.Cinder {
			asked[cinderTwin(n)] = true
		}
		if op, _ := findOp(n); op.Engine == EngineCinder && !c.Cinder {
			if len(c.Ops) > 0 {
				return nil, nil, fmt.Errorf("bench: operation %s needs Cinder (--cinder)", n)
			}
			delete(asked, n)
		}
	}
	run := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if run[n] {
			return
		}
		run[n] = true
		op, _ := findOp(n)
		for _, d := range op.needs() {
			visit(d)
		}
	}
	for n := range asked {
		visit(n)
	}
	var plan []Operation
	for _, o := range Reference {
		if run[o.Name] {
			plan = append(plan, o)
		}
	}
	return plan, asked, nil
}

// Row is the measurement of one operation.
type Row struct {
	// Op, Engine and Kind identify the operation; Description says what it is.
	Op          string `json:"op"`
	Engine      string `json:"engine"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
	// Dependency is true when the operation was not asked for but ran
	// because another needs its backup.
	Dependency bool `json:"dependency,omitempty"`
	// Bytes is the source's size (see Outcome.Bytes).
	Bytes int64 `json:"bytes"`
	// Seconds is the median of Runs, the wall time of each run.
	Seconds float64   `json:"seconds"`
	Runs    []float64 `json:"runs"`
	// MBps is Bytes / Seconds in decimal megabytes (10^6 bytes) per second.
	MBps float64 `json:"mb_per_s"`
	// PeakRSS is the largest peak RSS of the runs, in bytes (0: not
	// measured); PeakRSSObjects is PeakRSS / object size.
	PeakRSS        int64   `json:"peak_rss_bytes"`
	PeakRSSObjects float64 `json:"peak_rss_per_object_size"`
	// OpRSS is the largest memory an operation added to its process: peak
	// RSS less the RSS of the loaded program before it started (0: not
	// measured). It is what grows with object size and workers; the rest
	// is the program (for chunkbench, every SDK it links, about 37 MiB).
	OpRSS int64 `json:"op_rss_bytes,omitempty"`
	// Objects and BytesStored are the first run's Outcome's.
	Objects     int   `json:"objects"`
	BytesStored int64 `json:"bytes_stored"`
}

// Check is one of the targets, checked.
type Check struct {
	// Target says what is required.
	Target string `json:"target"`
	// Op is the chunkback operation checked; CinderOp its Cinder twin (or
	// empty when Cinder did not run).
	Op       string `json:"op"`
	CinderOp string `json:"cinder_op,omitempty"`
	// Chunkback and Cinder are the measured values, as text ("87.8 MB/s",
	// "180 MiB (full-zlib)"), or "-"; Ratio is chunkback / Cinder (0: not
	// measured).
	Chunkback string  `json:"chunkback"`
	Cinder    string  `json:"cinder"`
	Ratio     float64 `json:"ratio,omitempty"`
	// Value is the number compared with Limit: a ratio, MB/s or bytes.
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	// Result is PASS, FAIL, or "n/a" when not measured in this run.
	Result string `json:"result"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	// MemTotal is the machine's memory in bytes (0: unknown).
	MemTotal int64 `json:"mem_total_bytes,omitempty"`
	// LoadStart and LoadEnd are the 1, 5 and 15 minute load averages at the
	// start and the end of the run (empty: unknown).
	LoadStart string `json:"load_start,omitempty"`
	LoadEnd   string `json:"load_end,omitempty"`
}

// Report is the result of a run of the reference workload.
type Report struct {
	Date    time.Time `json:"date"`
	Machine Machine   `json:"machine"`
	// Revision is the commit the program was built from, with
	// " (modified)" for uncommitted changes (empty: unknown).
	Revision string `json:"revision,omitempty"`
	// The workload's settings, defaults filled in.
	Size       int64  `json:"size"`
	Seed       uint64 `json:"seed"`
	ObjectSize int64  `json:"object_size"`
	BlockSize  int    `json:"block_size"`
	Workers    int    `json:"workers"`
	Repeat     int    `json:"repeat"`
	// GenerateSeconds is the time taken to write the source files.
	GenerateSeconds float64 `json:"generate_seconds"`
	// CinderStartup is the wall time of a Cinder backup of a one-block
	// file: roughly the start-up cost included in each Cinder time (0:
	// Cinder not run).
	CinderStartup float64  `json:"cinder_startup_seconds,omitempty"`
	Rows          []Row    `json:"rows"`
	Checks        []Check  `json:"checks"`
	Notes         []string `json:"notes"`
}

// Row returns the row of the named operation, or nil.
func (r *Report) Row(op string) *Row {
	for i := range r.Rows {
		if r.Rows[i].Op == op {
			return &r.Rows[i]
		}
	}
	return nil
}

// RunReference generates the source files in a scratch directory, runs the
// planned operations (each c.Repeat times, in a child process when c.Exe is
// set), checks the targets and removes the scratch directory.
func RunReference(ctx context.Context, c Config) (*Report, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	plan, asked, err := c.Plan()
	if err != nil {
		return nil, err
	}
	if c.Cinder {
		if err := cindertest.Available(); err != nil {
			return nil, err
		}
	}
	rep := &Report{
		Date: time.Now().UTC(), Machine: ThisMachine(), Revision: revision(),
		Size: c.Size, Seed: c.Seed, ObjectSize: c.ObjectSize, BlockSize: c.BlockSize, Workers: c.Workers, Repeat: c.Repeat,
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(c.Dir, "chunkbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	logf := func(format string, args ...any) { fmt.Fprintf(c.Log, format+"\n", args...) }

	// The sources: the full backups' and, for each share of changed blocks
	// an incremental needs, a modified copy.
	start := time.Now()
	sources := map[float64]string{0: filepath.Join(dir, "source.img")}
	logf("generating a %s source in %s", FormatSize(c.Size), dir)
	if err := CreateSource(sources[0], SourceOptions{Size: c.Size, Seed: c.Seed}); err != nil {
		return nil, err
	}
	for _, op := range plan {
		if _, ok := sources[op.Changed]; ok {
			continue
		}
		path := filepath.Join(dir, fmt.Sprintf("source-%gpct.img", op.Changed*100))
		blocks, err := CreateModified(sources[0], path, ModifyOptions{BlockSize: c.BlockSize, Fraction: op.Changed, Seed: c.Seed + uint64(len(sources))})
		if err != nil {
			return nil, err
		}
		logf("  %s: %d blocks of %d changed", filepath.Base(path), len(blocks), (c.Size+int64(c.BlockSize)-1)/int64(c.BlockSize))
		sources[op.Changed] = path
	}
	flushDirty()
	rep.GenerateSeconds = time.Since(start).Seconds()
	logf("  done in %.1f s", rep.GenerateSeconds)

	stores := map[string]string{EngineChunkback: filepath.Join(dir, "store"), EngineCinder: filepath.Join(dir, "cinder-store")}
	volumeID := NewID()
	if c.Cinder {
		if rep.CinderStartup, err = cinderStartup(ctx, dir, c); err != nil {
			return nil, err
		}
		logf("Cinder start-up (a one-block backup): %.2f s", rep.CinderStartup)
	}

	backups := map[string]string{} // operation -> its first run's backup ID
	for i, op := range plan {
		row := Row{Op: op.Name, Engine: op.Engine, Kind: op.Kind, Description: op.Description, Dependency: !asked[op.Name]}
		for r := range c.Repeat {
			s := Spec{
				Engine: op.Engine, Kind: op.Kind, Target: stores[op.Engine],
				VolumeID: volumeID, BackupID: NewID(), Workers: c.Workers,
			}
			switch op.Kind {
			case KindBackup:
				s.Source, s.Compression, s.ObjectSize, s.BlockSize = sources[op.Changed], op.Compression, c.ObjectSize, c.BlockSize
				s.ParentID = backups[op.Parent]
			case KindRestore:
				s.BackupID, s.Dest = backups[op.Of], filepath.Join(dir, "restored.img")
			case KindVerify:
				s.BackupID = backups[op.Of]
			}
			flushDirty()
			var out *Outcome
			if c.Exe != "" {
				out, err = RunChild(ctx, c.Exe, s)
			} else {
				out, err = Run(ctx, s)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op.Name, err)
			}
			logf("[%d/%d] %-20s run %d/%d: %6.2f s %8.1f MB/s  peak RSS %s", i+1, len(plan), op.Name, r+1, c.Repeat,
				out.Seconds, mbps(out.Bytes, out.Seconds), FormatSize(out.PeakRSS))
			row.Runs = append(row.Runs, out.Seconds)
			row.PeakRSS = max(row.PeakRSS, out.PeakRSS)
			if out.StartRSS > 0 {
				row.OpRSS = max(row.OpRSS, out.PeakRSS-out.StartRSS)
			}
			if r == 0 {
				row.Bytes, row.Objects, row.BytesStored = out.Bytes, out.Objects, out.BytesStored
			}
			switch {
			case op.Kind == KindRestore:
				if err := os.Remove(s.Dest); err != nil {
					return nil, err
				}
			case op.Kind == KindBackup && r == 0:
				backups[op.Name] = s.BackupID
			case op.Kind == KindBackup:
				// Later runs' backups are not needed: free the space.
				s.Kind = KindDelete
				if _, err := Run(ctx, s); err != nil {
					return nil, fmt.Errorf("%s: deleting run %d's backup: %w", op.Name, r+1, err)
				}
			}
		}
		row.Seconds = median(row.Runs)
		row.MBps = mbps(row.Bytes, row.Seconds)
		row.PeakRSSObjects = float64(row.PeakRSS) / float64(c.ObjectSize)
		rep.Rows = append(rep.Rows, row)
	}
	rep.Machine.LoadEnd = loadAverage()
	rep.Checks = checks(rep, c)
	rep.Notes = notes(rep, c)
	return rep, nil
}

// cinderStartup times a Cinder backup of a one-block file.
func cinderStartup(ctx context.Context, dir string, c Config) (float64, error) {
	src := filepath.Join(dir, "one-block.img")
	if err := CreateSource(src, SourceOptions{Size: int64(c.BlockSize), Seed: c.Seed}); err != nil {
		return 0, err
	}
	defer os.Remove(src)
	store := filepath.Join(dir, "cinder-startup")
	defer os.RemoveAll(store)
	out, err := Run(ctx, Spec{Engine: EngineCinder, Kind: KindBackup, Target: store, Source: src,
		VolumeID: NewID(), BackupID: NewID(), BlockSize: c.BlockSize, ObjectSize: c.ObjectSize, Compression: "zlib"})
	if err != nil {
		return 0, fmt.Errorf("cinder start-up: %w", err)
	}
	return out.Seconds, nil
}

// The targets.
const (
	targetFullZlibRatio    = 8
	targetFullNoneMBps     = 500
	targetIncrMBps         = 1000
	targetRestoreZlibRatio = 3
)

func checks(rep *Report, c Config) []Check {
	verdict := func(ch *Check, ok bool) {
		ch.Result = "FAIL"
		if ok {
			ch.Result = "PASS"
		}
	}
	// speeds fills in the speeds of op and its Cinder twin.
	speeds := func(op string) (Check, *Row, *Row) {
		ch := Check{Op: op, Chunkback: "-", Cinder: "-", Result: "n/a"}
		r, twin := rep.Row(op), rep.Row(cinderTwin(op))
		if r != nil {
			ch.Chunkback = fmt.Sprintf("%.1f MB/s", r.MBps)
		}
		if twin != nil {
			ch.CinderOp, ch.Cinder = twin.Op, fmt.Sprintf("%.1f MB/s", twin.MBps)
		}
		if r != nil && twin != nil && twin.MBps > 0 {
			ch.Ratio = r.MBps / twin.MBps
		}
		return ch, r, twin
	}
	ratio := func(op string, want float64) Check {
		ch, r, twin := speeds(op)
		ch.Target, ch.Limit = fmt.Sprintf("%s >= %gx Cinder", op, want), want
		if r != nil && twin != nil {
			ch.Value = ch.Ratio
			verdict(&ch, ch.Ratio >= want)
		}
		return ch
	}
	absolute := func(op string, want float64) Check {
		ch, r, _ := speeds(op)
		ch.Target, ch.Limit = fmt.Sprintf("%s >= %g MB/s", op, want), want
		if r != nil {
			ch.Value = r.MBps
			verdict(&ch, r.MBps >= want)
		}
		return ch
	}
	out := []Check{
		ratio("full-zlib", targetFullZlibRatio),
		absolute("full-none", targetFullNoneMBps),
		absolute("incr-1pct", targetIncrMBps),
		ratio("restore-zlib", targetRestoreZlibRatio),
	}

	// The bound is on what an operation needs, which grows with workers and
	// object size; the program itself (its code and every SDK's
	// initialisation) is a constant that a host embedding the library pays
	// in part or not at all, so it is shown but not counted.
	limit := int64(c.Workers+2) * c.ObjectSize
	mem := Check{
		Target: fmt.Sprintf("memory an operation adds <= (%d workers + 2) x %s = %s", c.Workers, FormatSize(c.ObjectSize), FormatSize(limit)),
		Limit:  float64(limit), Chunkback: "-", Cinder: "-", Result: "n/a",
	}
	worst := map[string]*Row{}
	for i, r := range rep.Rows {
		if w := worst[r.Engine]; r.PeakRSS > 0 && (w == nil || r.PeakRSS > w.PeakRSS) {
			worst[r.Engine] = &rep.Rows[i]
		}
	}
	var op *Row
	for i, r := range rep.Rows {
		if r.Engine == EngineChunkback && r.OpRSS > 0 && (op == nil || r.OpRSS > op.OpRSS) {
			op = &rep.Rows[i]
		}
	}
	if w := worst[EngineChunkback]; w != nil {
		mem.Op, mem.Value = w.Op, float64(w.PeakRSS)
		mem.Chunkback = fmt.Sprintf("peak RSS %.1f MiB (%s)", mib(w.PeakRSS), w.Op)
		if op != nil {
			mem.Op, mem.Value = op.Op, float64(op.OpRSS)
			mem.Chunkback = fmt.Sprintf("%.1f MiB (%s; peak RSS %.1f MiB with the program)", mib(op.OpRSS), op.Op, mib(op.PeakRSS))
		}
		verdict(&mem, int64(mem.Value) <= limit)
		if cw := worst[EngineCinder]; cw != nil {
			mem.CinderOp, mem.Cinder = cw.Op, fmt.Sprintf("peak RSS %.1f MiB (%s)", mib(cw.PeakRSS), cw.Op)
			mem.Ratio = float64(w.PeakRSS) / float64(cw.PeakRSS)
		}
	}
	return append(out, mem)
}

func notes(rep *Report, c Config) []string {
	n := []string{
		"MB/s = source bytes / wall seconds, decimal MB (10^6 bytes), as Cinder's figures are.",
		"The sources are read from the page cache: they are written just before the run and the cache is not dropped. Dirty pages are flushed (sync(2)) before each run, so that no operation pays for the writeback of files written before it.",
		"The stores are directories on the same file system as the sources; chunkback writes them without fsync (NoSync), as Cinder's posix driver does; both restores fsync the restored file.",
		fmt.Sprintf("Times are the median of %d run(s); peak RSS the largest, from wait4's rusage of a child process that runs that operation alone.", c.Repeat),
	}
	if c.Exe == "" {
		n = append(n, "Operations ran in-process: peak RSS was not measured.")
	}
	if !c.Cinder {
		n = append(n, "Cinder did not run (--cinder=false, or it is not installed): the ratio targets are n/a.")
	}
	if rep.CinderStartup > 0 {
		n = append(n, fmt.Sprintf("Cinder times are the wall time of a Python subprocess, start-up included (a one-block Cinder backup takes %.2f s); "+
			"nothing is subtracted: internal/cindertest does not expose the driver's own time. Cinder's peak RSS is that of the Python process running Cinder's driver (the largest in the child's process tree).", rep.CinderStartup))
	}
	return n
}

func mbps(bytes int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(bytes) / secs / 1e6
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.SortFunc(s, cmp.Compare)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
