package azure_test

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chunkback/chunkback/azure"
	"github.com/chunkback/chunkback/target"
	"github.com/chunkback/chunkback/target/targettest"
)

// smallBlocks makes the conformance suite's larger objects (3, 4 and 20
// MiB) go up as staged blocks, while its concurrency tests (1 MiB objects)
// use single puts: concurrent block uploads of one name discard each
// other's blocks (see TestAzureConcurrentBlockWriters).
func smallBlocks(cfg azure.Config) azure.Config {
	cfg.BlockSize = 1 << 20
	cfg.SinglePutThreshold = 2 << 20
	cfg.Concurrency = 3
	return cfg
}

// conformance runs targettest against one container, a fresh prefix per
// subtest.
func conformance(t *testing.T, cfg azure.Config, opts targettest.Options) {
	n := 0
	targettest.RunWithOptions(t, func(t *testing.T) target.Target {
		n++
		c := cfg
		c.Prefix = fmt.Sprintf("suite/%03d", n)
		return newTarget(t, c)
	}, opts)
}

func TestAzureConformanceSharedKey(t *testing.T) {
	a := requireAzurite(t)
	conformance(t, smallBlocks(a.sharedKey(a.newContainer(t))), targettest.Options{})
}

// lighter runs the suite with less data: Azurite keeps what is written in
// memory, and frees the blocks of deleted blobs only every 10 minutes.
var lighter = targettest.Options{LargeSize: 5 << 20, ManyObjects: 300, ConcurrentSize: 256 << 10}

// The defaults send everything the suite writes in single puts.
func TestAzureConformanceDefaults(t *testing.T) {
	a := requireAzurite(t)
	conformance(t, a.sharedKey(a.newContainer(t)), lighter)
}

func TestAzureConformanceConnectionString(t *testing.T) {
	a := requireAzurite(t)
	cfg := smallBlocks(azure.Config{ConnectionString: a.connectionString, Container: a.newContainer(t)})
	conformance(t, cfg, lighter)
}

func TestAzureConformanceSAS(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	token := a.sas(t, name, sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}, time.Now().Add(time.Hour))
	cfg := smallBlocks(azure.Config{Endpoint: a.endpoint, SASToken: token, Container: name})
	conformance(t, cfg, lighter)
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// onlyReader hides every method of a body but Read and Seek, so Put takes
// the path that buffers blocks.
type onlyReader struct{ io.ReadSeeker }

func readAll(t *testing.T, tg target.Target, name string) []byte {
	t.Helper()
	rc, err := tg.Get(t.Context(), name, 0, -1)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// Large objects are committed from several staged blocks, from a
// *bytes.Reader and from any other body, and carry their MD5.
func TestAzureStagedBlocks(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	cfg := a.sharedKey(name)
	cfg.BlockSize = 256 << 10
	cfg.SinglePutThreshold = 512 << 10
	cfg.Concurrency = 2
	tg := newTarget(t, cfg)
	admin := a.adminClient(t, name)
	data := randomBytes(1, 3<<20+12345)
	sum := md5.Sum(data)
	for _, tc := range []struct {
		name string
		body io.ReadSeeker
	}{
		{"bytes", bytes.NewReader(data)},
		{"reader", onlyReader{bytes.NewReader(data)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tg.Put(t.Context(), tc.name, tc.body, int64(len(data)), target.PutOptions{ContentMD5: sum[:]}))
			require.Equal(t, data, readAll(t, tg, tc.name))
			bl, err := admin.NewBlockBlobClient(tc.name).GetBlockList(t.Context(), blockblob.BlockListTypeAll, nil)
			require.NoError(t, err)
			assert.Len(t, bl.CommittedBlocks, 13, "3 MiB + 12345 bytes in 256 KiB blocks")
			assert.Empty(t, bl.UncommittedBlocks)
			props, err := admin.NewBlobClient(tc.name).GetProperties(t.Context(), nil)
			require.NoError(t, err)
			assert.Equal(t, sum[:], props.ContentMD5, "the blob's stored Content-MD5")
		})
	}
}

// A wrong ContentMD5 stores nothing: the service refuses a single put, and
// the target checks the blocks' MD5 before it commits them.
func TestAzureContentMD5Mismatch(t *testing.T) {
	a := requireAzurite(t)
	cfg := a.sharedKey(a.newContainer(t))
	cfg.BlockSize = 256 << 10
	cfg.SinglePutThreshold = 512 << 10
	tg := newTarget(t, cfg)
	for _, size := range []int{1000, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := randomBytes(2, size)
			wrong := md5.Sum(append([]byte("x"), data...))
			name := fmt.Sprintf("md5-%d", size)
			err := tg.Put(t.Context(), name, bytes.NewReader(data), int64(size), target.PutOptions{ContentMD5: wrong[:]})
			require.Error(t, err)
			assert.Contains(t, strings.ToLower(err.Error()), "md5")
			_, err = tg.Stat(t.Context(), name)
			require.ErrorIs(t, err, target.ErrNotFound, "a Put with a wrong MD5 left an object")
		})
	}
	// Single put: the service answers Md5Mismatch, which is worth a retry
	// (bytes changed on the way); not a permanent error.
	data := randomBytes(3, 100)
	wrong := md5.Sum([]byte("other"))
	err := tg.Put(t.Context(), "single", bytes.NewReader(data), 100, target.PutOptions{ContentMD5: wrong[:]})
	require.Error(t, err)
	// Azure answers Md5Mismatch, Azurite InvalidOperation.
	assert.Contains(t, strings.ToLower(err.Error()), "md5")
	// Blocks: the body does not match what the caller says; no retry helps.
	big := randomBytes(4, 1<<20)
	err = tg.Put(t.Context(), "blocks", bytes.NewReader(big), 1<<20, target.PutOptions{ContentMD5: wrong[:]})
	require.ErrorIs(t, err, target.ErrInvalidArgument)
}

// Concurrent writers of one large object: with IfNotExists exactly one
// wins and the others get ErrExists; without it, each commit discards the
// blocks the others staged, so the losers fail with a transient error that
// target.NewRetry retries until every write has gone through.
func TestAzureConcurrentBlockWriters(t *testing.T) {
	a := requireAzurite(t)
	cfg := a.sharedKey(a.newContainer(t))
	cfg.BlockSize = 128 << 10
	cfg.SinglePutThreshold = 256 << 10
	raw := newTarget(t, cfg)
	const writers = 6
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = randomBytes(uint64(10+i), 1<<20+i)
	}
	run := func(tg target.Target, name string, opts target.PutOptions) []error {
		errs := make([]error, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				errs[i] = tg.Put(t.Context(), name, bytes.NewReader(contents[i]), int64(len(contents[i])), opts)
			})
		}
		close(start)
		wg.Wait()
		return errs
	}
	oneOf := func(name string) {
		got := readAll(t, raw, name)
		for _, c := range contents {
			if bytes.Equal(c, got) {
				return
			}
		}
		t.Fatalf("%s holds %d bytes that match no writer", name, len(got))
	}

	errs := run(raw, "exclusive", target.PutOptions{IfNotExists: true})
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			continue
		}
		require.ErrorIs(t, err, target.ErrExists, "writer %d", i)
	}
	require.Equal(t, 1, wins)
	oneOf("exclusive")

	var mu sync.Mutex
	var retryErrs []error
	retried, err := target.NewRetry(raw, target.RetryPolicy{
		// Full jitter up to seconds breaks the symmetry between writers
		// that keep discarding each other's blocks, even on a loaded machine.
		MaxAttempts: 50, BaseDelay: 50 * time.Millisecond, MaxDelay: 2 * time.Second, Mode: target.RetryLegacy,
		OnRetry: func(e target.RetryEvent) {
			mu.Lock()
			defer mu.Unlock()
			retryErrs = append(retryErrs, e.Err)
		},
	})
	require.NoError(t, err)
	for i, err := range run(retried, "shared", target.PutOptions{}) {
		require.NoError(t, err, "writer %d", i)
	}
	oneOf("shared")
	t.Logf("%d retries", len(retryErrs))
	for _, err := range retryErrs {
		assert.Contains(t, err.Error(), "InvalidBlockList", "the only transient failure here is blocks discarded by another commit")
	}
}

// AccessTier reaches the stored blobs, for single puts and block lists.
func TestAzureAccessTier(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	cfg := a.sharedKey(name)
	cfg.AccessTier = "cool"
	cfg.BlockSize = 64 << 10
	cfg.SinglePutThreshold = 64 << 10
	tg := newTarget(t, cfg)
	admin := a.adminClient(t, name)
	for _, size := range []int{10, 200 << 10} {
		obj := fmt.Sprintf("tier-%d", size)
		require.NoError(t, tg.Put(t.Context(), obj, bytes.NewReader(make([]byte, size)), int64(size), target.PutOptions{}))
		props, err := admin.NewBlobClient(obj).GetProperties(t.Context(), nil)
		require.NoError(t, err)
		require.NotNil(t, props.AccessTier)
		assert.Equal(t, string(blob.AccessTierCool), *props.AccessTier, obj)
	}
}

// Objects live below the prefix, and the target sees nothing else.
func TestAzurePrefix(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	cfg := a.sharedKey(name)
	cfg.Prefix = "backups/ci/"
	tg := newTarget(t, cfg)
	require.NoError(t, tg.Put(t.Context(), "a/b", strings.NewReader("ab"), 2, target.PutOptions{}))
	admin := a.adminClient(t, name)
	_, err := admin.NewBlockBlobClient("other").Upload(t.Context(), nopCloser{strings.NewReader("x")}, nil)
	require.NoError(t, err)
	_, err = admin.NewBlobClient("backups/ci/a/b").GetProperties(t.Context(), nil)
	require.NoError(t, err, "the object is stored as prefix/name")
	var names []string
	require.NoError(t, tg.List(t.Context(), "", func(i target.Info) error { names = append(names, i.Name); return nil }))
	require.Equal(t, []string{"a/b"}, names)
	assert.Equal(t, "azblob://"+a.account+"/"+name+"/backups/ci", tg.String())
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

// A connection string may carry a SAS instead of the account key.
func TestAzureConnectionStringSAS(t *testing.T) {
	a := requireAzurite(t)
	name := a.newContainer(t)
	token := a.sas(t, name, sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true}, time.Now().Add(time.Hour))
	tg := newTarget(t, azure.Config{ConnectionString: "BlobEndpoint=" + a.endpoint + ";SharedAccessSignature=" + token, Container: name})
	data := randomBytes(8, 5000)
	require.NoError(t, tg.Put(t.Context(), "x", bytes.NewReader(data), int64(len(data)), target.PutOptions{IfNotExists: true}))
	require.Equal(t, data, readAll(t, tg, "x"))
	assert.Equal(t, "azblob://"+a.account+"/"+name, tg.String(), "the account is read from the connection string's endpoint")
}

// countingTransport counts the Put Block requests in flight and done.
type countingTransport struct {
	inFlight, maxInFlight, done atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	block := req.URL.Query().Get("comp") == "block"
	if block {
		n := c.inFlight.Add(1)
		for m := c.maxInFlight.Load(); n > m && !c.maxInFlight.CompareAndSwap(m, n); m = c.maxInFlight.Load() {
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if block {
		c.inFlight.Add(-1)
		c.done.Add(1)
	}
	return resp, err
}

// aheadBody is a body that is not a *bytes.Reader (so Put buffers its
// blocks), and records how many blocks it had been read into beyond the
// ones whose Put Block request had finished.
type aheadBody struct {
	r        *bytes.Reader
	bs       int64
	done     *atomic.Int64
	maxAhead int64
}

func (b *aheadBody) Read(p []byte) (int, error) {
	pos := b.r.Size() - int64(b.r.Len())
	if ahead := pos/b.bs + 1 - b.done.Load(); ahead > b.maxAhead {
		b.maxAhead = ahead
	}
	return b.r.Read(p)
}

func (b *aheadBody) Seek(off int64, whence int) (int64, error) { return b.r.Seek(off, whence) }

// A large object from a body that must be buffered goes up Concurrency
// blocks at a time, and Put reads at most Concurrency+1 blocks ahead of the
// service: memory stays at (Concurrency+1) x BlockSize whatever the size.
func TestAzureBoundedMemory(t *testing.T) {
	a := requireAzurite(t)
	tr := &countingTransport{}
	cfg := a.sharedKey(a.newContainer(t))
	cfg.BlockSize = 64 << 10
	cfg.SinglePutThreshold = 64 << 10
	cfg.Concurrency = 3
	cfg.HTTPClient = &http.Client{Transport: tr}
	tg := newTarget(t, cfg)
	data := randomBytes(11, 8<<20)
	body := &aheadBody{r: bytes.NewReader(data), bs: cfg.BlockSize, done: &tr.done}
	require.NoError(t, tg.Put(t.Context(), "bounded", body, int64(len(data)), target.PutOptions{}))
	require.Equal(t, data, readAll(t, tg, "bounded"))
	assert.EqualValues(t, 128, tr.done.Load(), "8 MiB in 64 KiB blocks")
	assert.LessOrEqual(t, tr.maxInFlight.Load(), int64(cfg.Concurrency))
	assert.Greater(t, tr.maxInFlight.Load(), int64(1), "blocks go up in parallel")
	assert.LessOrEqual(t, body.maxAhead, int64(cfg.Concurrency+1), "blocks read ahead of the service")
	t.Logf("max in flight %d, max read ahead %d blocks", tr.maxInFlight.Load(), body.maxAhead)
}
