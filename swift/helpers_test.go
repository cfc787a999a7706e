package swift

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	goswift "github.com/ncw/swift/v2"

	"github.com/chunkback/chunkback/internal/servertest"
	"github.com/chunkback/chunkback/target"
)

// testContainer is the container the tests use on every server; each test
// works below a prefix of its own and deletes what it wrote.
const testContainer = "chunkback-test"

// server is one real Swift API the tests run against.
type server struct {
	name          string // for subtest names
	authURL       string
	user, key     string
	nonAtomicINE  bool   // If-None-Match: * is checked when the PUT starts only
	readerUser    string // a user without access to the containers ("" if none)
	readerKey     string
	storagePolicy string // a non-default storage policy ("" if none)
}

// swiftServer is OpenStack Swift, started by scripts/servers/swift.sh.
func swiftServer(t *testing.T) server {
	t.Helper()
	env := servertest.Require(t, "swift")
	return server{
		name:          "swift",
		authURL:       env.Get(t, "AUTH_URL"),
		user:          env.Get(t, "USER"),
		key:           env.Get(t, "KEY"),
		nonAtomicINE:  true,
		readerUser:    env.Get(t, "READER_USER"),
		readerKey:     env.Get(t, "READER_KEY"),
		storagePolicy: "silver",
	}
}

// rgwServer is Ceph radosgw's Swift API, started by scripts/servers/ceph.sh.
func rgwServer(t *testing.T) server {
	t.Helper()
	env := servertest.Require(t, "ceph")
	return server{
		name:    "radosgw",
		authURL: env.Get(t, "RGW_SWIFT_AUTH_URL"),
		user:    env.Get(t, "RGW_SWIFT_USER"),
		key:     env.Get(t, "RGW_SWIFT_KEY"),
		// radosgw ignores If-None-Match on its Swift API.
		nonAtomicINE: true,
	}
}

// servers runs fn once per real server, as subtests.
func servers(t *testing.T, fn func(t *testing.T, s server)) {
	t.Run("swift", func(t *testing.T) { fn(t, swiftServer(t)) })
	t.Run("radosgw", func(t *testing.T) { fn(t, rgwServer(t)) })
}

// config returns a single_user Config for s, in the test container below a
// fresh prefix.
func (s server) config(t *testing.T) Config {
	return Config{
		AuthStrategy:    AuthSingleUser,
		AuthURL:         s.authURL,
		User:            s.user,
		Key:             s.key,
		Container:       testContainer,
		CreateContainer: true,
		Prefix:          uniquePrefix(t),
		ConnectTimeout:  30 * time.Second,
	}
}

// uniquePrefix returns a prefix no other test uses.
func uniquePrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return "test/" + name + "-" + hex.EncodeToString(b[:])
}

// open opens cfg's target and deletes its objects when the test ends.
func open(t *testing.T, cfg Config) *Target {
	t.Helper()
	tg, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		cleanup(t, tg)
		_ = tg.Close()
	})
	return tg
}

// cleanup deletes every object below tg's prefix.
func cleanup(t *testing.T, tg *Target) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var names []string
	err := tg.List(ctx, "", func(info target.Info) error {
		names = append(names, info.Name)
		return nil
	})
	if err != nil {
		t.Logf("cleanup: list: %v", err)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, n := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := tg.Delete(ctx, n); err != nil {
				t.Logf("cleanup: delete %q: %v", n, err)
			}
		})
	}
	wg.Wait()
}

// token authenticates with auth v1 and returns a token and storage URL, as
// a host hands them to a per_user target.
func (s server) token(t *testing.T) (token, storageURL string) {
	t.Helper()
	c := &goswift.Connection{AuthUrl: s.authURL, AuthVersion: 1, UserName: s.user, ApiKey: s.key, Transport: http.DefaultTransport}
	if err := c.Authenticate(t.Context()); err != nil {
		t.Fatalf("auth v1 at %s: %v", s.authURL, err)
	}
	return c.AuthToken, c.StorageUrl
}

// segmentNamesIn lists the objects of the segments container that belong
// to the object full of tg (by the hash segmentBase puts first).
func segmentNamesIn(t *testing.T, tg *Target, full string) []string {
	t.Helper()
	base := segmentBase(full, 0, 0)
	hashDir := base[:strings.Index(base, "/")+1]
	names, err := tg.conn.ObjectNamesAll(t.Context(), tg.cfg.SegmentContainer, &goswift.ObjectsOpts{Prefix: hashDir})
	if errors.Is(err, goswift.ContainerNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("listing %s: %v", tg.cfg.SegmentContainer, err)
	}
	return names
}
