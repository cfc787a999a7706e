package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassifyFunc(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"crypto/internal/fips140/sha256.blockSHANI", StageHash},
		{"crypto/sha256.Sum256", StageHash},
		{"crypto/md5.block", StageMD5},
		{"github.com/klauspost/compress/flate.(*fastEncL6).Encode", StageCodec},
		{"github.com/klauspost/compress/zstd.(*blockEnc).encode", StageCodec},
		{"github.com/klauspost/compress/internal/le.Load32[go.shape.int32]", StageCodec},
		{"github.com/dsnet/compress/bzip2.(*Writer).Write", StageCodec},
		{"compress/flate.(*compressor).deflate", StageCodec},
		{"compress/bzip2.(*reader).read", StageCodec},
		{"hash/adler32.update", StageCodec},
		{"internal/runtime/syscall/linux.Syscall6", StageIO},
		{"syscall.Syscall6", StageIO},
		{"syscall.pread", StageIO},
		{"internal/poll.(*FD).Pwrite", StageIO},
		{"golang.org/x/sys/unix.Fallocate", StageIO},
		{"runtime.netpoll", StageIO},
		{"runtime.exitsyscall", StageIO},
		{"os.(*File).Write", StageIO},
		{"os.(*File).ReadAt", StageIO},
		{"os.Stat", StageOther},
		{"runtime.memmove", StageMemory},
		{"runtime.memclrNoHeapPointers", StageMemory},
		{"runtime.mallocgc", StageMemory},
		{"runtime.mallocgcSmallNoscan", StageMemory},
		{"runtime.scanobject", StageMemory},
		{"runtime.gcBgMarkWorker", StageMemory},
		{"runtime.(*mheap).alloc", StageMemory},
		{"runtime._GC", StageMemory},
		{"runtime.futex", StageOther},
		{"runtime.schedule", StageOther},
		{"github.com/chunkback/chunkback/backup.(*backupRun).storeExtent", StageOther},
		{"github.com/chunkback/chunkback/compressor.(*zlibCodec).Compress", StageOther}, // chunkback's own wrapper
		{"hash/crc32.ieeeCLMUL", StageOther},
		{"bytes.(*Reader).ReadByte", StageOther},
		{"__tsan_read", StageOther},
	} {
		require.Equal(t, c.want, ClassifyFunc(c.name), c.name)
	}
}

func TestClassifyStack(t *testing.T) {
	for _, c := range []struct {
		frames []string
		want   string
	}{
		{[]string{"crypto/md5.block", "crypto/md5.(*digest).Write"}, StageMD5},
		// Preemption and the race detector count for what they interrupted.
		{[]string{"runtime.asyncPreempt", "github.com/klauspost/compress/flate.(*fastEncL6).Encode"}, StageCodec},
		{[]string{"__tsan_read", "racecall", "runtime.raceread", "compress/flate.(*compressor).deflate"}, StageCodec},
		// The leaf decides: a copy inside the codec is memory.
		{[]string{"runtime.memmove", "github.com/klauspost/compress/flate.(*dictDecoder).writeCopy"}, StageMemory},
		// An unclaimed runtime leaf goes to the runtime caller a stage claims.
		{[]string{"runtime.lock2", "runtime.lock", "runtime.(*mcentral).cacheSpan", "runtime.mallocgc", "main.f"}, StageMemory},
		{[]string{"runtime.casgstatus", "runtime.exitsyscall", "syscall.Syscall6", "os.(*File).Write"}, StageIO},
		{[]string{"runtime.futex", "runtime.futexsleep", "runtime.notesleep", "runtime.schedule"}, StageOther},
		// ... but not past the runtime.
		{[]string{"runtime.procyield", "github.com/chunkback/chunkback/backup.run", "syscall.Syscall6"}, StageOther},
		{[]string{"runtime.asyncPreempt"}, StageOther},
		{nil, StageOther},
	} {
		require.Equal(t, c.want, ClassifyStack(c.frames), "%q", c.frames)
	}
}

// TestSummarizeProfileBad checks that what is not a profile is an error.
func TestSummarizeProfileBad(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte{0x0a, 0x10, 0x01}) // a length past the end
	require.NoError(t, zw.Close())
	for _, b := range [][]byte{gz.Bytes(), {0x1f, 0x8b, 0x00}, {0x0f}} {
		_, err := SummarizeProfile(bytes.NewReader(b))
		require.Error(t, err, "%x", b)
	}
}

func TestSpecCPUProfileValidate(t *testing.T) {
	s := Spec{Engine: EngineChunkback, Kind: KindPut, Target: "x", VolumeID: "v", BackupID: "b", Source: "s", Objects: 1, ObjectSize: 1, Workers: 1}
	require.NoError(t, s.Validate())
	s.CPUProfile = "p.pprof"
	require.ErrorContains(t, s.Validate(), "CPU profile")
	s.Kind = KindVerify
	require.NoError(t, s.Validate())
}

// TestMatrixProfile runs a tiny zlib matrix with profiles, each operation
// in a child process (this test binary), and checks where the time went.
func TestMatrixProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	profDir := filepath.Join(t.TempDir(), "profiles")
	var log bytes.Buffer
	c := MatrixConfig{
		Targets: []string{filepath.Join(t.TempDir(), "store")}, Codecs: []string{"zlib"}, ObjectSizes: []int64{4 << 20},
		BlockSizes: []int{32768}, Workers: []int{2}, Ops: []string{OpBackupFull, OpVerify}, Size: 16 << 20, Repeat: 2,
		Dir: t.TempDir(), Exe: exe, Log: &log, Profile: true, ProfileDir: profDir,
	}
	rep, err := RunMatrix(context.Background(), c)
	require.NoError(t, err, log.String())
	require.Len(t, rep.Results, 2)
	for _, r := range rep.Results {
		require.NotNil(t, r.Profile, r.Key)
		require.Greater(t, r.ProfileCPUSeconds, 0.0, r.Key)
		var sum float64
		for _, st := range ProfileStages() {
			v, ok := r.Profile[st]
			require.True(t, ok, "%s: stage %s", r.Key, st)
			require.True(t, v >= 0 && v <= 1, "%s: %s %v", r.Key, st, v)
			sum += v
		}
		require.InDelta(t, 1, sum, 1e-9, r.Key)
		cell := Cell{Engine: r.Engine, Target: r.Target, Op: r.Op, Codec: r.Codec, ObjectSize: r.ObjectSize, BlockSize: r.BlockSize, Workers: r.Workers}
		require.FileExists(t, filepath.Join(profDir, ProfileFileName(cell)))
	}
	full := rep.Results[0]
	require.Equal(t, OpBackupFull, full.Op)
	hashCodec := full.Profile[StageHash] + full.Profile[StageCodec]
	if raceEnabled {
		t.Log("race detector: its instrumentation dominates the profile; not checking the shares")
	} else {
		require.Greater(t, hashCodec, 0.5, "hash and codec dominate a zlib backup: %v\n%s", full.Profile, log.String())
		require.Greater(t, hashCodec, full.Profile[StageMemory]+full.Profile[StageOther], "%v", full.Profile)
	}
	require.Equal(t, 2, strings.Count(log.String(), "  profile: "), "one profiled run per cell")

	var text bytes.Buffer
	require.NoError(t, WriteMatrixText(&text, rep))
	require.Contains(t, text.String(), "where the time goes")
	section := MatrixReadmeSection(rep, "", "")
	require.Contains(t, section, "**Where the time goes**")
	require.Contains(t, section, "| target | op | codec | object | block | workers | CPU s | hash | md5 | codec | io | memory | other |")
	require.Contains(t, section, "Reading: the hash (SHA-256, MD5), the codec and I/O take ")
	var js bytes.Buffer
	require.NoError(t, WriteMatrixJSON(&js, rep))
	back, err := ReadMatrixJSON(&js)
	require.NoError(t, err)
	require.Equal(t, full.Profile, back.Results[0].Profile)
	require.False(t, math.IsNaN(back.Results[1].Profile[StageIO]))
}
