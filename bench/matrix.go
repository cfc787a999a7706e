package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/chunkback/chunkback/internal/cindertest"
)

// The operations of a matrix, in the order they run within a cell group.
const (
	// OpPut and OpGet store and read objects of the object size straight
	// through the target (target.Target), with the workers in parallel.
	OpPut = "put"
	OpGet = "get"
	// OpBackupFull is a full backup of the source.
	OpBackupFull = "backup-full"
	// OpBackupIncr1 and OpBackupIncr10 are incrementals, on the full
	// backup, of a copy with 1% and 10% of the blocks changed.
	OpBackupIncr1  = "backup-incr-1"
	OpBackupIncr10 = "backup-incr-10"
	// OpRestore restores the full backup into a new file.
	OpRestore = "restore"
	// OpVerify verifies the full backup.
	OpVerify = "verify"
)

// Peers a matrix can run beside chunkback.
const (
	PeerRestic = "restic"
	PeerCinder = "cinder"
	// EngineRestic names restic's results (RunRestic runs it).
	EngineRestic = "restic"
)

// MatrixOps returns every matrix operation, in the order they run.
func MatrixOps() []string {
	return []string{OpPut, OpGet, OpBackupFull, OpBackupIncr1, OpBackupIncr10, OpRestore, OpVerify}
}

// changedShare is the share of blocks an incremental's source has changed.
func changedShare(op string) float64 {
	switch op {
	case OpBackupIncr1:
		return 0.01
	case OpBackupIncr10:
		return 0.10
	}
	return 0
}

// isRaw reports whether op is a raw target operation (no codec, no blocks).
func isRaw(op string) bool { return op == OpPut || op == OpGet }

// MatrixConfig describes a benchmark matrix: every combination of target,
// codec, object size, block size, workers and operation, each run Repeat
// times on one generated source.
type MatrixConfig struct {
	// Targets are --target URLs (any the CLI accepts; credentials come from
	// the environment). Empty: a directory in the scratch directory.
	Targets []string
	// Codecs are chunkback's compression names. Default zlib.
	Codecs []string
	// ObjectSizes and BlockSizes are in bytes; every object size must be a
	// multiple of every block size. Defaults DefaultObjectSize and
	// DefaultBlockSize.
	ObjectSizes []int64
	BlockSizes  []int
	// Workers are chunkback's worker counts (and the goroutines of put and
	// get). Default: the number of CPUs.
	Workers []int
	// Ops are operations of MatrixOps. Default: all. Operations another
	// needs (the full backup, the put a get reads) run as well, once, and
	// are not reported.
	Ops []string
	// Size is the source's size in bytes. Default DefaultSize.
	Size int64
	// Mix is the source's make-up. nil: the reference mix (half text,
	// half random, no zeros).
	Mix *Mix
	// Seed selects the generated data. Default DefaultSeed.
	Seed uint64
	// Repeat runs each cell this many times. Default 3.
	Repeat int
	// Restic runs restic (RunRestic, in a local repository in the scratch
	// directory) beside chunkback on the same source: engine "restic",
	// target "file", once per codec (restic's nearest compression mode).
	// ResticAvailable must hold.
	Restic bool
	// Cinder runs real OpenStack Cinder (posix driver) beside chunkback:
	// engine "cinder", target "file", workers 0. cindertest.Available must
	// hold.
	Cinder bool
	// Dir is where the scratch directory goes (removed after). Default
	// os.TempDir().
	Dir string
	// Exe runs each operation in a child process (RunChild), normally
	// os.Executable(); empty runs them in this process, and peak RSS is
	// then not measured.
	Exe string
	// Log receives a line per run. Default: nothing.
	Log io.Writer
	// Profile takes a CPU profile (Spec.CPUProfile) of the first run of
	// each chunkback backup, restore and verify cell, and summarizes it
	// into the result's Profile (SummarizeProfile). Not for put, get and
	// the peers.
	Profile bool
	// ProfileDir, with Profile, keeps the profiles there (created if
	// missing), a file per cell named after it (ProfileFileName), for `go
	// tool pprof`; empty: in the scratch directory, removed after.
	ProfileDir string
}

func (c MatrixConfig) withDefaults() MatrixConfig {
	if len(c.Codecs) == 0 {
		c.Codecs = []string{"zlib"}
	}
	if len(c.ObjectSizes) == 0 {
		c.ObjectSizes = []int64{DefaultObjectSize}
	}
	if len(c.BlockSizes) == 0 {
		c.BlockSizes = []int{DefaultBlockSize}
	}
	if len(c.Workers) == 0 {
		c.Workers = []int{runtime.GOMAXPROCS(0)}
	}
	if len(c.Ops) == 0 {
		c.Ops = MatrixOps()
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Repeat == 0 {
		c.Repeat = 3
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Validate checks the configuration, defaults filled in.
func (c MatrixConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: matrix: "+format, args...)) }
	if c.Size <= 0 || c.Repeat <= 0 {
		bad("size %d and repeat %d must be positive", c.Size, c.Repeat)
	}
	for _, o := range c.Ops {
		if !slices.Contains(MatrixOps(), o) {
			bad("unknown operation %q: choose from %s", o, strings.Join(MatrixOps(), ", "))
		}
	}
	for _, w := range c.Workers {
		if w <= 0 {
			bad("workers %d must be positive", w)
		}
	}
	for _, codec := range c.Codecs {
		if strings.TrimSpace(codec) == "" {
			bad("empty codec")
		}
	}
	for _, bs := range c.BlockSizes {
		if bs <= 0 {
			bad("block size %d must be positive", bs)
		}
	}
	for _, os := range c.ObjectSizes {
		if os <= 0 {
			bad("object size %d must be positive", os)
			continue
		}
		for _, bs := range c.BlockSizes {
			if bs > 0 && os%int64(bs) != 0 {
				bad("object size %d is not a multiple of block size %d", os, bs)
			}
		}
	}
	for _, t := range c.Targets {
		if strings.TrimSpace(t) == "" {
			bad("empty target")
		}
	}
	if c.Mix != nil {
		errs = append(errs, c.Mix.Validate())
	}
	return errors.Join(errs...)
}

// Cell is one measured combination of a matrix.
type Cell struct {
	// Engine is EngineChunkback, EngineCinder or EngineRestic.
	Engine string
	// Target is the target's label (TargetLabel), never its URL.
	Target string
	// Op is one of MatrixOps.
	Op string
	// Codec is the backup's compression ("-" for put and get).
	Codec string
	// ObjectSize, BlockSize and Workers are the settings (0 where they do
	// not apply: block size for put and get, all three for restic, workers
	// for Cinder).
	ObjectSize int64
	BlockSize  int
	Workers    int
	// url is the target's URL: never printed.
	url string
}

// Key identifies the cell across reports: "engine=… target=… op=… codec=…
// object_size=… block_size=… workers=…".
func (c Cell) Key() string {
	return fmt.Sprintf("engine=%s target=%s op=%s codec=%s object_size=%d block_size=%d workers=%d",
		c.Engine, c.Target, c.Op, c.Codec, c.ObjectSize, c.BlockSize, c.Workers)
}

// group identifies the cells that share a store and a full backup (or a
// put): all fields but the operation.
func (c Cell) group() Cell {
	c.Op = ""
	return c
}

// TargetLabel names a --target URL in outputs, without anything secret: the
// scheme, and the host where there is one ("file" for a directory,
// "s3:bucket", "nfs:server"). User info, paths and queries are left out.
func TargetLabel(raw string) string {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || scheme == "file" {
		return "file"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return scheme
	}
	return scheme + ":" + u.Hostname()
}

// Cells expands the matrix into its cells, in the order they run: for each
// target, the put and get of each object size and workers, then the backup
// operations of each codec, object size, block size and workers; then the
// Cinder cells (per codec, object size and block size) and the restic cells
// (per codec). Targets with the same label are told apart by "#2", "#3".
func (c MatrixConfig) Cells() ([]Cell, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	asked := func(op string) bool { return slices.Contains(c.Ops, op) }
	var rawOps, backupOps []string
	for _, op := range MatrixOps() {
		switch {
		case !asked(op):
		case isRaw(op):
			rawOps = append(rawOps, op)
		default:
			backupOps = append(backupOps, op)
		}
	}
	targets := c.Targets
	if len(targets) == 0 {
		targets = []string{""} // the scratch directory, filled in by RunMatrix
	}
	var cells []Cell
	seen := map[string]int{}
	for _, u := range targets {
		label := TargetLabel(u)
		if seen[label]++; seen[label] > 1 {
			label = fmt.Sprintf("%s#%d", label, seen[label])
		}
		for _, os := range c.ObjectSizes {
			for _, w := range c.Workers {
				for _, op := range rawOps {
					cells = append(cells, Cell{Engine: EngineChunkback, Target: label, Op: op, Codec: "-", ObjectSize: os, Workers: w, url: u})
				}
			}
		}
		for _, codec := range c.Codecs {
			for _, os := range c.ObjectSizes {
				for _, bs := range c.BlockSizes {
					for _, w := range c.Workers {
						for _, op := range backupOps {
							cells = append(cells, Cell{Engine: EngineChunkback, Target: label, Op: op, Codec: codec, ObjectSize: os, BlockSize: bs, Workers: w, url: u})
						}
					}
				}
			}
		}
	}
	peerOps := slices.DeleteFunc(slices.Clone(backupOps), func(op string) bool { return op == OpVerify })
	if c.Cinder {
		for _, codec := range c.Codecs {
			for _, os := range c.ObjectSizes {
				for _, bs := range c.BlockSizes {
					for _, op := range peerOps {
						cells = append(cells, Cell{Engine: EngineCinder, Target: "file", Op: op, Codec: codec, ObjectSize: os, BlockSize: bs})
					}
				}
			}
		}
	}
	if c.Restic {
		for _, codec := range c.Codecs {
			for _, op := range peerOps {
				cells = append(cells, Cell{Engine: EngineRestic, Target: "file", Op: op, Codec: codec})
			}
		}
	}
	return cells, nil
}

// Result is the measurement of one cell, as the report JSON has it.
type Result struct {
	// Key is Cell.Key: results of two reports are matched by it.
	Key        string `json:"key"`
	Engine     string `json:"engine"`
	Target     string `json:"target"`
	Op         string `json:"op"`
	Codec      string `json:"codec"`
	ObjectSize int64  `json:"object_size"`
	BlockSize  int    `json:"block_size"`
	Workers    int    `json:"workers"`
	// Bytes is the source's size (backups, restore, verify) or the payload
	// of a put or get, per run.
	Bytes int64 `json:"bytes"`
	// Unit is that of Samples ("MB/s", decimal); HigherIsBetter says which
	// way is better.
	Unit           string `json:"unit"`
	HigherIsBetter bool   `json:"higher_is_better"`
	// Samples, Seconds and PeakRSS have one entry per run: the throughput,
	// the wall time and the peak RSS in bytes (0: not measured).
	Samples []float64 `json:"samples"`
	Seconds []float64 `json:"seconds"`
	PeakRSS []int64   `json:"peak_rss"`
	// OpRSS has, per run, the memory the operation added to its process:
	// peak RSS less the RSS of the loaded program before it started (0:
	// not measured).
	OpRSS []int64 `json:"op_rss,omitempty"`
	// Latency is, for put and get, the median over the runs of each run's
	// per-object latency percentiles.
	Latency *Latency `json:"latency_ms,omitempty"`
	// Profile is, with MatrixConfig.Profile, where the first run's CPU time
	// went: each stage of ProfileStages -> its share, 0 to 1, adding up to 1
	// (nil: not profiled). ProfileCPUSeconds is the CPU time sampled.
	Profile           map[string]float64 `json:"profile,omitempty"`
	ProfileCPUSeconds float64            `json:"profile_cpu_seconds,omitempty"`
}

// MatrixReport is the outcome of RunMatrix, written as JSON by
// WriteMatrixJSON (the format `chunkbench compare` reads).
type MatrixReport struct {
	// Version is the format's version, MatrixVersion.
	Version int       `json:"version"`
	Machine Machine   `json:"machine"`
	Started time.Time `json:"started"`
	Results []Result  `json:"results"`
	// Settings describes the run for the text outputs (not in the JSON).
	Settings MatrixSettings `json:"-"`
}

// MatrixVersion is the version of the report's JSON format.
const MatrixVersion = 1

// MatrixSettings are the settings of a run, for the header of the text
// outputs.
type MatrixSettings struct {
	Size     int64
	Mix      Mix
	Seed     uint64
	Repeat   int
	Revision string
}

// RunMatrix generates the source in a scratch directory, runs every cell of
// the matrix c.Repeat times (each in a child process when c.Exe is set),
// deletes what it stored on the targets, removes the scratch directory and
// returns the report.
func RunMatrix(ctx context.Context, c MatrixConfig) (*MatrixReport, error) {
	cells, err := c.Cells()
	if err != nil {
		return nil, err
	}
	c = c.withDefaults()
	if c.Cinder {
		if err := cindertest.Available(); err != nil {
			return nil, err
		}
	}
	if c.Restic {
		if err := ResticAvailable(); err != nil {
			return nil, err
		}
	}
	mix := Mix{Compressible: 0.5}
	if c.Mix != nil {
		mix = *c.Mix
	}
	rep := &MatrixReport{
		Version: MatrixVersion, Machine: ThisMachine(), Started: time.Now().UTC().Truncate(time.Second),
		Settings: MatrixSettings{Size: c.Size, Mix: mix, Seed: c.Seed, Repeat: c.Repeat, Revision: revision()},
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(c.Dir, "chunkbench-matrix-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	m := &matrixRun{c: c, dir: dir, logf: func(format string, args ...any) { fmt.Fprintf(c.Log, format+"\n", args...) }}
	m.sources = map[sourceKey]string{{}: filepath.Join(dir, "source.img")}
	m.logf("generating a %s source (%s) in %s", FormatSize(c.Size), mix, dir)
	if err := CreateSource(m.sources[sourceKey{}], SourceOptions{Size: c.Size, Seed: c.Seed, Mix: &mix}); err != nil {
		return nil, err
	}
	for i := range cells {
		if cells[i].url == "" && cells[i].Engine == EngineChunkback {
			cells[i].url = filepath.Join(dir, "store")
		}
	}
	defer func() { _ = m.endGroup(context.WithoutCancel(ctx)) }()
	for i, cell := range cells {
		if cell.group() != m.cur {
			if err := m.endGroup(ctx); err != nil {
				return nil, err
			}
			m.cur = cell.group()
		}
		res, err := m.runCell(ctx, cell, fmt.Sprintf("[%d/%d]", i+1, len(cells)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cell.Key(), err)
		}
		rep.Results = append(rep.Results, *res)
	}
	if err := m.endGroup(ctx); err != nil {
		return nil, err
	}
	rep.Machine.LoadEnd = loadAverage()
	return rep, nil
}

// sourceKey names a source file: the original (zero value) or a copy with
// a share of its blocks of a size changed.
type sourceKey struct {
	blockSize int
	changed   float64
}

// matrixRun is the state of RunMatrix.
type matrixRun struct {
	c       MatrixConfig
	dir     string
	logf    func(format string, args ...any)
	sources map[sourceKey]string
	// cur is the group of the cells being run; full the ID of its full
	// backup (or restic snapshot), put the ID of its first put's objects.
	cur       Cell
	volumeID  string
	full, put string
}

// source returns the source file for an operation, generating the
// modified copy an incremental needs the first time.
func (m *matrixRun) source(blockSize int, op string) (string, error) {
	changed := changedShare(op)
	if changed == 0 {
		return m.sources[sourceKey{}], nil
	}
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	k := sourceKey{blockSize, changed}
	if p, ok := m.sources[k]; ok {
		return p, nil
	}
	p := filepath.Join(m.dir, fmt.Sprintf("source-%d-%gpct.img", blockSize, changed*100))
	blocks, err := CreateModified(m.sources[sourceKey{}], p, ModifyOptions{BlockSize: blockSize, Fraction: changed, Seed: m.c.Seed + uint64(len(m.sources))})
	if err != nil {
		return "", err
	}
	m.logf("  %s: %d blocks changed", filepath.Base(p), len(blocks))
	m.sources[k] = p
	return p, nil
}

// store returns where a cell's engine stores: the target's URL, or a
// scratch directory for the peers.
func (m *matrixRun) store(c Cell) string {
	switch c.Engine {
	case EngineCinder:
		return filepath.Join(m.dir, "cinder-store")
	case EngineRestic:
		return filepath.Join(m.dir, "restic-"+c.Codec)
	}
	return c.url
}

// endGroup deletes what the current group stored.
func (m *matrixRun) endGroup(ctx context.Context) error {
	g := m.cur
	full, put, volumeID := m.full, m.put, m.volumeID
	m.full, m.put, m.volumeID, m.cur = "", "", "", Cell{}
	switch {
	case g.Engine == EngineChunkback && put != "":
		return deleteRaw(ctx, g.url, put)
	case g.Engine == EngineChunkback && full != "":
		_, err := Run(ctx, Spec{Engine: EngineChunkback, Kind: KindDelete, Target: g.url, VolumeID: volumeID, BackupID: full})
		return err
	case g.Engine == EngineCinder || g.Engine == EngineRestic:
		return os.RemoveAll(m.store(g))
	}
	return nil
}

// runCell runs a cell c.Repeat times, after what it needs.
func (m *matrixRun) runCell(ctx context.Context, cell Cell, tag string) (*Result, error) {
	if m.volumeID == "" {
		m.volumeID = NewID()
	}
	switch {
	case cell.Op == OpGet && m.put == "":
		dep := cell
		dep.Op = OpPut
		if _, err := m.runOnce(ctx, dep, true, ""); err != nil {
			return nil, fmt.Errorf("the put a get reads: %w", err)
		}
	case !isRaw(cell.Op) && cell.Op != OpBackupFull && m.full == "":
		dep := cell
		dep.Op = OpBackupFull
		if _, err := m.runOnce(ctx, dep, true, ""); err != nil {
			return nil, fmt.Errorf("the full backup it needs: %w", err)
		}
	}
	res := &Result{
		Key: cell.Key(), Engine: cell.Engine, Target: cell.Target, Op: cell.Op, Codec: cell.Codec,
		ObjectSize: cell.ObjectSize, BlockSize: cell.BlockSize, Workers: cell.Workers,
		Unit: "MB/s", HigherIsBetter: true,
	}
	var lats []*Latency
	for r := range m.c.Repeat {
		keep := r == 0 && ((cell.Op == OpPut && m.put == "") || (cell.Op == OpBackupFull && m.full == ""))
		prof := ""
		if r == 0 && m.c.Profile && cell.Engine == EngineChunkback && !isRaw(cell.Op) {
			var err error
			if prof, err = m.profilePath(cell); err != nil {
				return nil, err
			}
		}
		out, err := m.runOnce(ctx, cell, keep, prof)
		if err != nil {
			return nil, err
		}
		v := mbps(out.Bytes, out.Seconds)
		m.logf("%s %s run %d/%d: %.2f s, %.1f MB/s, peak RSS %s", tag, cell.Key(), r+1, m.c.Repeat, out.Seconds, v, FormatSize(out.PeakRSS))
		if prof != "" {
			sum, err := SummarizeProfileFile(prof)
			if err != nil {
				return nil, err
			}
			res.Profile, res.ProfileCPUSeconds = sum.Shares, sum.CPUSeconds
			m.logf("  profile: %.2f CPU s: %s", sum.CPUSeconds, formatShares(sum.Shares))
			for _, f := range sum.Top[:min(len(sum.Top), 5)] {
				m.logf("    %5.1f%% %-6s %s", 100*f.Seconds/max(sum.CPUSeconds, 1e-9), f.Stage, f.Name)
			}
		}
		res.Bytes = out.Bytes
		res.Samples = append(res.Samples, v)
		res.Seconds = append(res.Seconds, out.Seconds)
		res.PeakRSS = append(res.PeakRSS, out.PeakRSS)
		if out.StartRSS > 0 {
			res.OpRSS = append(res.OpRSS, out.PeakRSS-out.StartRSS)
		}
		if out.Latency != nil {
			lats = append(lats, out.Latency)
		}
	}
	if len(lats) > 0 {
		pick := func(f func(*Latency) float64) float64 {
			xs := make([]float64, len(lats))
			for i, l := range lats {
				xs[i] = f(l)
			}
			return median(xs)
		}
		res.Latency = &Latency{
			P50: pick(func(l *Latency) float64 { return l.P50 }),
			P90: pick(func(l *Latency) float64 { return l.P90 }),
			P99: pick(func(l *Latency) float64 { return l.P99 }),
		}
	}
	return res, nil
}

// ProfileFileName is the name of a cell's CPU profile in
// MatrixConfig.ProfileDir: its engine, target, operation and settings,
// "chunkback-file-backup-full-zlib-50MiB-32KiB-2w.pprof".
func ProfileFileName(c Cell) string {
	short := func(n int64) string { return strings.ReplaceAll(FormatSize(n), " ", "") }
	name := fmt.Sprintf("%s-%s-%s-%s-%s-%s-%dw.pprof", c.Engine, c.Target, c.Op, c.Codec, short(c.ObjectSize), short(int64(c.BlockSize)), c.Workers)
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ':' || r == '#' || r == ' ' {
			return '_'
		}
		return r
	}, name)
}

// profilePath returns the file a cell's CPU profile goes to.
func (m *matrixRun) profilePath(c Cell) (string, error) {
	dir := m.c.ProfileDir
	if dir == "" {
		dir = filepath.Join(m.dir, "profiles")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, ProfileFileName(c))
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	return p, nil
}

// formatShares writes a profile's stage shares: "hash 41%, codec 38%, …".
func formatShares(shares map[string]float64) string {
	var parts []string
	for _, st := range ProfileStages() {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", st, 100*shares[st]))
	}
	return strings.Join(parts, ", ")
}

// runOnce runs one operation of a cell, with a CPU profile to the file prof
// if not empty. With keep, a put's objects or a full backup stay (as the
// group's put or full); otherwise what a put or backup stored is deleted at
// once, untimed.
func (m *matrixRun) runOnce(ctx context.Context, cell Cell, keep bool, prof string) (*Outcome, error) {
	if cell.Engine == EngineRestic {
		return m.runRestic(ctx, cell, keep)
	}
	s := Spec{
		Engine: cell.Engine, Target: m.store(cell), VolumeID: m.volumeID, BackupID: NewID(),
		Compression: cell.Codec, ObjectSize: cell.ObjectSize, BlockSize: cell.BlockSize, Workers: cell.Workers,
		CPUProfile: prof,
	}
	var err error
	switch cell.Op {
	case OpPut, OpGet:
		s.Kind, s.Compression = KindPut, ""
		objLen := cell.ObjectSize
		s.Objects = int(max(1, m.c.Size/objLen))
		if s.Source, err = m.source(0, cell.Op); err != nil {
			return nil, err
		}
		if cell.Op == OpGet {
			s.Kind, s.Source, s.BackupID = KindGet, "", m.put
		}
	case OpBackupFull, OpBackupIncr1, OpBackupIncr10:
		s.Kind = KindBackup
		if cell.Op != OpBackupFull {
			s.ParentID = m.full
		}
		if s.Source, err = m.source(cell.BlockSize, cell.Op); err != nil {
			return nil, err
		}
	case OpRestore:
		s.Kind, s.BackupID, s.Dest = KindRestore, m.full, filepath.Join(m.dir, "restored.img")
	case OpVerify:
		s.Kind, s.BackupID = KindVerify, m.full
	}
	if s.Engine == EngineCinder {
		s.Workers = 0
	}
	flushDirty()
	var out *Outcome
	if m.c.Exe != "" {
		out, err = RunChild(ctx, m.c.Exe, s)
	} else {
		out, err = Run(ctx, s)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case s.Kind == KindRestore:
		err = os.Remove(s.Dest)
	case keep && s.Kind == KindPut:
		m.put = s.BackupID
	case keep && s.Kind == KindBackup:
		m.full = s.BackupID
	case s.Kind == KindPut:
		err = deleteRaw(ctx, s.Target, s.BackupID)
	case s.Kind == KindBackup:
		s.Kind, s.CPUProfile = KindDelete, ""
		_, err = Run(ctx, s)
	}
	if err != nil {
		return nil, fmt.Errorf("cleaning up after %s: %w", cell.Op, err)
	}
	return out, nil
}

// runRestic runs one operation of a restic cell (RunRestic starts restic
// as a child process and measures its peak RSS). restic deduplicates
// against everything in its repository, so that each run does the same
// work, a backup other than the kept full one goes into a repository of
// its own: a new one for a full backup, a copy (untimed) of the full
// backup's for an incremental; it is removed after.
func (m *matrixRun) runRestic(ctx context.Context, cell Cell, keep bool) (*Outcome, error) {
	s := ResticSpec{Kind: KindBackup, Repo: m.store(cell), Compression: cell.Codec}
	var err error
	switch cell.Op {
	case OpRestore:
		s.Kind, s.Snapshot, s.Dest, s.Compression = KindRestore, m.full, filepath.Join(m.dir, "restored.img"), ""
	default:
		if s.Source, err = m.source(DefaultBlockSize, cell.Op); err != nil {
			return nil, err
		}
		if !keep {
			scratch := s.Repo + "-run"
			if err := os.RemoveAll(scratch); err != nil {
				return nil, err
			}
			if cell.Op != OpBackupFull {
				if err := copyDir(s.Repo, scratch); err != nil {
					return nil, fmt.Errorf("copying the restic repository: %w", err)
				}
			}
			defer os.RemoveAll(scratch)
			s.Repo = scratch
		}
		if cell.Op != OpBackupFull {
			s.Parent = m.full
		}
	}
	flushDirty()
	out, err := RunRestic(ctx, s)
	if err != nil {
		return nil, err
	}
	switch {
	case s.Kind == KindRestore:
		err = os.Remove(s.Dest)
	case keep:
		m.full = out.SnapshotID
	}
	return out, err
}

// copyDir copies the directory tree src to the new directory dst (regular
// files and directories only, as a restic repository holds).
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
