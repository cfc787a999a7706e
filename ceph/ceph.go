//go:build ceph

package ceph

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ceph/go-ceph/rados"

	"github.com/chunkback/chunkback/target"
)

const (
	// pieceSize is the most the target reads or writes in one RADOS
	// operation, and so the buffer each Put and each open reader holds.
	pieceSize = 4 << 20
	// listPage is how many index entries List fetches per operation.
	listPage = 1000
	// maxCASAttempts bounds the compare-and-set loops of Put and Delete
	// against writers of the same name.
	maxCASAttempts = 100
	// maxOpenAttempts bounds how often Get re-reads an index entry whose
	// data was replaced between reading the entry and the data.
	maxOpenAttempts = 10
	// cleanupTimeout bounds the removal of the data of a failed Put, which
	// runs after the caller's context may have ended.
	cleanupTimeout = 30 * time.Second
)

// record is an object's entry in the index: its value in the omap of the
// index object, under the object's name.
type record struct {
	// V is the format version, 1.
	V int `json:"v"`
	// Size is the object's length in bytes.
	Size int64 `json:"size"`
	// Chunk is the size of every data object but the last.
	Chunk int64 `json:"chunk"`
	// ID names the data objects: <prefix>chunkback.data.<ID>.<n>.
	ID string `json:"id"`
	// MTime is when the object was written, in Unix nanoseconds.
	MTime int64 `json:"mtime"`
}

// stripes is the number of data objects of r.
func (r record) stripes() int64 {
	if r.Size == 0 {
		return 0
	}
	return (r.Size + r.Chunk - 1) / r.Chunk
}

// Target stores objects in a RADOS pool. See the package documentation for
// the layout. It is safe for concurrent use.
type Target struct {
	cfg       Config // with defaults
	conn      *rados.Conn
	ioctx     *rados.IOContext
	objPrefix string // "" or Prefix + "/"
	index     string // the index object's name

	mu     sync.RWMutex // held for reading by operations, for writing by Close
	closed bool
}

// New connects to the cluster, opens cfg.Pool (creating it when
// cfg.CreatePool says so) and checks that the user may read it. A refused
// key or user is target.ErrPermission, a missing pool target.ErrNotFound,
// and monitors that do not answer within cfg.ConnectTimeout
// target.ErrUnavailable. The caller must Close the target.
func New(ctx context.Context, cfg Config) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ceph: connect: %w", err)
	}
	conn, err := rados.NewConnWithUser(c.User)
	if err != nil {
		return nil, fmt.Errorf("ceph: creating a librados handle for client.%s: %w", c.User, err)
	}
	t := &Target{cfg: c, conn: conn}
	if err := t.configure(); err != nil {
		conn.Shutdown()
		return nil, err
	}
	if err := t.connect(ctx); err != nil {
		return nil, err // connect shuts conn down
	}
	if err := t.openPool(); err != nil {
		conn.Shutdown()
		return nil, err
	}
	if c.Prefix != "" {
		t.objPrefix = c.Prefix + "/"
	}
	t.index = t.objPrefix + "chunkback.index"
	// Fail now, with a clear error, if the user may not read the pool.
	if _, _, _, err := t.readRecord("chunkback-probe"); err != nil {
		t.ioctx.Destroy()
		conn.Shutdown()
		return nil, t.fail("open", "", err)
	}
	return t, nil
}

// configure reads ceph.conf and applies the Config's options to the handle.
func (t *Target) configure() error {
	c := t.cfg
	if c.Conf != "" {
		if err := t.conn.ReadConfigFile(c.Conf); err != nil {
			return fmt.Errorf("ceph: Config.Conf %q cannot be read (%v): give the path of a readable ceph.conf: %w",
				c.Conf, err, target.ErrInvalidArgument)
		}
	} else if err := t.conn.ReadDefaultConfigFile(); err != nil {
		return fmt.Errorf("ceph: no ceph.conf found in $CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config or ./ceph.conf (%v): set Config.Conf: %w",
			err, target.ErrInvalidArgument)
	}
	opts := [][2]string{
		{"client_mount_timeout", seconds(c.ConnectTimeout)},
		{"rados_mon_op_timeout", seconds(c.OpTimeout)},
		{"rados_osd_op_timeout", seconds(c.OpTimeout)},
	}
	if c.Keyring != "" {
		opts = append(opts, [2]string{"keyring", c.Keyring})
	}
	for _, o := range opts {
		if err := t.conn.SetConfigOption(o[0], o[1]); err != nil {
			return fmt.Errorf("ceph: setting the librados option %s: %w", o[0], err)
		}
	}
	if v, err := t.conn.GetConfigOption("osd_max_object_size"); err == nil {
		if limit, err := strconv.ParseInt(v, 10, 64); err == nil && limit > 0 && c.ChunkSize > limit {
			return fmt.Errorf("ceph: Config.ChunkSize (%d) is larger than the cluster's osd_max_object_size (%d): lower it: %w",
				c.ChunkSize, limit, target.ErrInvalidArgument)
		}
	}
	return nil
}

// seconds formats d for a librados option in seconds (at least 1).
func seconds(d time.Duration) string {
	return strconv.FormatFloat(max(d.Seconds(), 1), 'f', -1, 64)
}

// connect connects to the monitors, giving up when ctx ends (librados then
// finishes in the background and the handle is shut down).
func (t *Target) connect(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- t.conn.Connect() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		go func() {
			<-done
			t.conn.Shutdown()
		}()
		return fmt.Errorf("ceph: connect as client.%s: %w", t.cfg.User, ctx.Err())
	}
	if err == nil {
		return nil
	}
	t.conn.Shutdown()
	keyring := "the keyring ceph.conf names"
	if t.cfg.Keyring != "" {
		keyring = fmt.Sprintf("Config.Keyring (%s)", t.cfg.Keyring)
	}
	switch errnoOf(err) {
	case eperm, eacces:
		return fmt.Errorf("ceph: cephx authentication as client.%s was refused: check that the user exists "+
			"(`ceph auth get client.%s`) and that %s holds its current key: %w: %w",
			t.cfg.User, t.cfg.User, keyring, target.ErrPermission, err)
	case enoent:
		return fmt.Errorf("ceph: no key for client.%s in %s: set Config.Keyring to a keyring holding its key: %w: %w",
			t.cfg.User, keyring, target.ErrPermission, err)
	case etimedout, eintr:
		return fmt.Errorf("ceph: no monitor answered within Config.ConnectTimeout (%v): check mon_host in %s and that the monitors run: %w: %w",
			t.cfg.ConnectTimeout, t.confName(), target.ErrUnavailable, err)
	}
	return fmt.Errorf("ceph: connect to the monitors of %s as client.%s: %w", t.confName(), t.cfg.User, err)
}

func (t *Target) confName() string {
	if t.cfg.Conf == "" {
		return "the default ceph.conf"
	}
	return t.cfg.Conf
}

// openPool opens (and when asked creates) the pool and selects the namespace.
func (t *Target) openPool() error {
	pool := t.cfg.Pool
	ioctx, err := t.conn.OpenIOContext(pool)
	if errnoOf(err) == enoent && t.cfg.CreatePool {
		if err := t.createPool(); err != nil {
			return err
		}
		ioctx, err = t.conn.OpenIOContext(pool)
	}
	switch {
	case errnoOf(err) == enoent:
		return fmt.Errorf("ceph: pool %q does not exist: create it (`ceph osd pool create %s`) or set Config.CreatePool: %w",
			pool, pool, target.ErrNotFound)
	case err != nil:
		return t.fail("open pool", "", err)
	}
	ioctx.SetNamespace(t.cfg.Namespace)
	t.ioctx = ioctx
	return nil
}

// createPool creates the pool, tagged with the application "chunkback" so
// that Ceph does not warn about a pool without one.
func (t *Target) createPool() error {
	pool := t.cfg.Pool
	if err := t.conn.MakePool(pool); err != nil && errnoOf(err) != eexist {
		if e := errnoOf(err); e == eperm || e == eacces {
			return fmt.Errorf("ceph: client.%s may not create pool %q: create it as an admin (`ceph osd pool create %s`) "+
				"or give the user mon caps to create pools: %w: %w", t.cfg.User, pool, pool, target.ErrPermission, err)
		}
		return fmt.Errorf("ceph: creating pool %q: %w", pool, err)
	}
	cmd, _ := json.Marshal(map[string]any{
		"prefix": "osd pool application enable", "pool": pool, "app": "chunkback", "yes_i_really_mean_it": true,
	})
	if _, _, err := t.conn.MonCommand(cmd); err != nil && errnoOf(err) != eexist {
		return fmt.Errorf("ceph: enabling the application chunkback on the new pool %q: %w", pool, err)
	}
	return nil
}

// Close releases the connection. Operations after Close fail.
func (t *Target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.ioctx.Destroy()
	t.conn.Shutdown()
	return nil
}

// CinderLayout implements target.LayoutTarget: names as Cinder's object-store
// drivers make them.
func (t *Target) CinderLayout() target.Layout { return target.LayoutObject }

// UsesContentMD5 implements target.ContentMD5User: RADOS verifies no digest.
func (t *Target) UsesContentMD5() bool { return false }

// begin checks ctx and that the target is open, and holds the target open
// until end is called.
func (t *Target) begin(ctx context.Context, op, name string) (end func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ceph: %s %q: %w", op, name, err)
	}
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return nil, fmt.Errorf("ceph: %s %q: the target is closed: %w", op, name, target.ErrPermanent)
	}
	return t.mu.RUnlock, nil
}

func (t *Target) dataOID(id string, stripe int64) string {
	return t.objPrefix + "chunkback.data." + id + "." + strconv.FormatInt(stripe, 10)
}

// readRecord reads name's index entry: its raw value (for a later
// compare-and-set) and its decoded record. found is false when there is none.
func (t *Target) readRecord(name string) (raw []byte, rec record, found bool, err error) {
	op := rados.CreateReadOp()
	defer op.Release()
	step := op.GetOmapValuesByKeys([]string{name})
	if err := op.Operate(t.ioctx, t.index, rados.OperationNoFlag); err != nil {
		if errnoOf(err) == enoent { // no index yet: nothing was ever stored
			return nil, rec, false, nil
		}
		return nil, rec, false, err
	}
	kv, err := step.Next()
	if err != nil || kv == nil {
		return nil, rec, false, err
	}
	rec, err = decodeRecord(kv.Value)
	if err != nil {
		return nil, rec, false, fmt.Errorf("index entry of %q: %w", name, err)
	}
	return kv.Value, rec, true, nil
}

func decodeRecord(raw []byte) (record, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, fmt.Errorf("unreadable index entry %q: %w: %w", raw, err, target.ErrPermanent)
	}
	if rec.V != 1 || rec.Size < 0 || (rec.Size > 0 && (rec.Chunk <= 0 || rec.ID == "")) {
		return rec, fmt.Errorf("index entry %q is not one this version writes: %w", raw, target.ErrPermanent)
	}
	return rec, nil
}

// Put implements target.Target. It writes the data objects, then publishes
// the index entry with one compare-and-set, then removes the data of the
// entry it replaced.
func (t *Target) Put(ctx context.Context, name string, body io.ReadSeeker, size int64, opts target.PutOptions) error {
	if err := target.CheckPut(name, body, size); err != nil {
		return fmt.Errorf("ceph: %w", err)
	}
	end, err := t.begin(ctx, "put", name)
	if err != nil {
		return err
	}
	defer end()

	rec := record{V: 1, Size: size, Chunk: t.cfg.ChunkSize, ID: newID(), MTime: time.Now().UnixNano()}
	if err := t.writeData(ctx, name, body, rec); err != nil {
		t.removeData(rec)
		return err
	}
	if err := ctx.Err(); err != nil {
		t.removeData(rec)
		return fmt.Errorf("ceph: put %q: %w", name, err)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("ceph: put %q: %w", name, err)
	}
	if opts.IfNotExists {
		err := omapCAS(t.ioctx, t.index, name, nil, raw)
		if errors.Is(err, errChanged) {
			t.removeData(rec)
			return fmt.Errorf("ceph: put %q: the object exists: %w", name, target.ErrExists)
		}
		if err != nil {
			t.removeDataUnlessPublished(rec, err)
			return t.fail("put", name, err)
		}
		return nil
	}
	for range maxCASAttempts {
		oldRaw, old, found, err := t.readRecord(name)
		if err != nil {
			t.removeData(rec)
			return t.fail("put", name, err)
		}
		err = omapCAS(t.ioctx, t.index, name, oldRaw, raw)
		if errors.Is(err, errChanged) {
			continue // another writer of the same name came between: read its entry again
		}
		if err != nil {
			t.removeDataUnlessPublished(rec, err)
			return t.fail("put", name, err)
		}
		if found {
			t.removeData(old)
		}
		return nil
	}
	t.removeData(rec)
	return fmt.Errorf("ceph: put %q: the index entry kept changing under %d attempts to replace it: %w",
		name, maxCASAttempts, target.ErrUnavailable)
}

// writeData writes size bytes of body to the data objects of rec, one piece
// at a time, each data object created exclusively.
func (t *Target) writeData(ctx context.Context, name string, body io.Reader, rec record) error {
	if rec.Size == 0 {
		return nil
	}
	buf := make([]byte, min(pieceSize, rec.Size, rec.Chunk))
	var done int64
	for stripe := range rec.stripes() {
		oid := t.dataOID(rec.ID, stripe)
		stripeLen := min(rec.Chunk, rec.Size-done)
		for pos := int64(0); pos < stripeLen; {
			n := min(int64(len(buf)), stripeLen-pos)
			if _, err := io.ReadFull(body, buf[:n]); err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return fmt.Errorf("ceph: put %q: %w", name, cerr)
				}
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("ceph: put %q: reading the body at byte %d of %d: %w", name, done+pos, rec.Size, err)
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("ceph: put %q: %w", name, err)
			}
			op := rados.CreateWriteOp()
			if pos == 0 {
				op.Create(rados.CreateExclusive)
			}
			op.Write(buf[:n], uint64(pos))
			err := op.Operate(t.ioctx, oid, rados.OperationNoFlag)
			op.Release()
			if err != nil {
				return t.fail("put", name, err)
			}
			pos += n
		}
		done += stripeLen
	}
	return nil
}

// removeDataUnlessPublished removes the data of rec after a failed
// compare-and-set, unless the failure leaves open whether the entry was
// written (a timeout): then the data stays, possibly as garbage.
func (t *Target) removeDataUnlessPublished(rec record, err error) {
	switch errnoOf(err) {
	case etimedout, eintr, 0:
		return
	}
	t.removeData(rec)
}

// removeData removes the data objects of rec, best effort: it stops at the
// first failure other than a missing object, or after cleanupTimeout.
func (t *Target) removeData(rec record) {
	deadline := time.Now().Add(cleanupTimeout)
	for stripe := range rec.stripes() {
		if time.Now().After(deadline) {
			return
		}
		if err := t.ioctx.Delete(t.dataOID(rec.ID, stripe)); err != nil && errnoOf(err) != enoent {
			return
		}
	}
}

// Get implements target.Target. It reads the first piece (up to 4 MiB)
// before returning, so a read of an object that another writer replaces
// meanwhile starts over on the new version; a replacement after that makes
// the reader fail with target.ErrNotFound.
func (t *Target) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := target.CheckName(name); err != nil {
		return nil, fmt.Errorf("ceph: get: %w", err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("ceph: get %q: offset %d is negative: %w", name, offset, target.ErrInvalidArgument)
	}
	end, err := t.begin(ctx, "get", name)
	if err != nil {
		return nil, err
	}
	defer end()
	for attempt := 1; ; attempt++ {
		_, rec, found, err := t.readRecord(name)
		if err != nil {
			return nil, t.fail("get", name, err)
		}
		if !found {
			return nil, fmt.Errorf("ceph: get %q: %w", name, target.ErrNotFound)
		}
		if offset > rec.Size {
			return nil, fmt.Errorf("ceph: get %q: offset %d is beyond the end of the object (%d bytes): %w",
				name, offset, rec.Size, target.ErrInvalidRange)
		}
		stop := rec.Size
		if length >= 0 && length < rec.Size-offset {
			stop = offset + length
		}
		r := &reader{t: t, ctx: ctx, name: name, rec: rec, pos: offset, end: stop}
		err = r.fill()
		if errors.Is(err, errReplaced) && attempt < maxOpenAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// errReplaced is wrapped into the error of a read whose data object is gone:
// the object was replaced or deleted since its index entry was read.
var errReplaced = errors.New("the object was replaced or deleted while it was read")

// reader reads [pos, end) of an object's data objects, one piece at a time.
type reader struct {
	t        *Target
	ctx      context.Context
	name     string
	rec      record
	pos, end int64  // the next byte to fetch, and the end of the range
	buf      []byte // fetched bytes not yet returned
	store    []byte // buf's backing array
	closed   bool
}

// fill fetches the next piece into buf, from one data object.
func (r *reader) fill() error {
	if r.pos >= r.end {
		return nil
	}
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("ceph: get %q: %w", r.name, err)
	}
	stripe := r.pos / r.rec.Chunk
	off := r.pos % r.rec.Chunk
	n := min(int64(pieceSize), r.end-r.pos, r.rec.Chunk-off)
	if int64(cap(r.store)) < n {
		r.store = make([]byte, min(int64(pieceSize), r.end-r.pos))
	}
	end, err := r.t.begin(r.ctx, "get", r.name)
	if err != nil {
		return err
	}
	got, err := r.t.ioctx.Read(r.t.dataOID(r.rec.ID, stripe), r.store[:n], uint64(off))
	end()
	switch {
	case errnoOf(err) == enoent:
		return fmt.Errorf("ceph: get %q: %w: %w", r.name, errReplaced, target.ErrNotFound)
	case err != nil:
		return r.t.fail("get", r.name, err)
	case int64(got) < n:
		return fmt.Errorf("ceph: get %q: data object %d holds %d bytes from offset %d, the index says %d: %w",
			r.name, stripe, got, off, n, target.ErrPermanent)
	}
	r.buf = r.store[:n]
	r.pos += n
	return nil
}

// Read implements io.Reader.
func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("ceph: get %q: read after Close", r.name)
	}
	if len(r.buf) == 0 {
		if r.pos >= r.end {
			return 0, io.EOF
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close implements io.Closer.
func (r *reader) Close() error {
	r.closed = true
	r.buf, r.store = nil, nil
	return nil
}

// Stat implements target.Target.
func (t *Target) Stat(ctx context.Context, name string) (target.Info, error) {
	if err := target.CheckName(name); err != nil {
		return target.Info{}, fmt.Errorf("ceph: stat: %w", err)
	}
	end, err := t.begin(ctx, "stat", name)
	if err != nil {
		return target.Info{}, err
	}
	defer end()
	_, rec, found, err := t.readRecord(name)
	switch {
	case err != nil:
		return target.Info{}, t.fail("stat", name, err)
	case !found:
		return target.Info{}, fmt.Errorf("ceph: stat %q: %w", name, target.ErrNotFound)
	}
	return rec.info(name), nil
}

func (r record) info(name string) target.Info {
	return target.Info{Name: name, Size: r.Size, ModTime: time.Unix(0, r.MTime)}
}

// List implements target.Target, reading the index a page of 1000 entries
// at a time.
func (t *Target) List(ctx context.Context, prefix string, fn func(target.Info) error) error {
	if strings.ContainsFunc(prefix, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("ceph: list: prefix %q contains a control character: %w", prefix, target.ErrInvalidArgument)
	}
	after := ""
	for {
		page, more, err := t.listPage(ctx, prefix, after)
		if err != nil {
			return err
		}
		for _, kv := range page {
			rec, err := decodeRecord(kv.Value)
			if err != nil {
				return fmt.Errorf("ceph: list %q: %q: %w", prefix, kv.Key, err)
			}
			if err := fn(rec.info(kv.Key)); err != nil {
				return err
			}
		}
		if !more || len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].Key
	}
}

// listPage reads the index entries after the key after that start with
// prefix, up to listPage of them, and whether more follow.
func (t *Target) listPage(ctx context.Context, prefix, after string) ([]rados.OmapKeyValue, bool, error) {
	end, err := t.begin(ctx, "list", prefix)
	if err != nil {
		return nil, false, err
	}
	defer end()
	op := rados.CreateReadOp()
	defer op.Release()
	step := op.GetOmapValues(after, prefix, listPage)
	if err := op.Operate(t.ioctx, t.index, rados.OperationNoFlag); err != nil {
		if errnoOf(err) == enoent {
			return nil, false, nil // no index yet: nothing was ever stored
		}
		return nil, false, t.fail("list", prefix, err)
	}
	var page []rados.OmapKeyValue
	for {
		kv, err := step.Next()
		if err != nil {
			return nil, false, t.fail("list", prefix, err)
		}
		if kv == nil {
			break
		}
		page = append(page, *kv)
	}
	return page, step.More(), nil
}

// Delete implements target.Target: it removes the index entry, then the
// data objects it pointed to.
func (t *Target) Delete(ctx context.Context, name string) error {
	if err := target.CheckName(name); err != nil {
		return fmt.Errorf("ceph: delete: %w", err)
	}
	end, err := t.begin(ctx, "delete", name)
	if err != nil {
		return err
	}
	defer end()
	for range maxCASAttempts {
		raw, rec, found, err := t.readRecord(name)
		if err != nil {
			return t.fail("delete", name, err)
		}
		if !found {
			return nil
		}
		err = omapCAS(t.ioctx, t.index, name, raw, nil)
		if errors.Is(err, errChanged) {
			continue
		}
		if err != nil {
			return t.fail("delete", name, err)
		}
		t.removeData(rec)
		return nil
	}
	return fmt.Errorf("ceph: delete %q: the index entry kept changing under %d attempts to remove it: %w",
		name, maxCASAttempts, target.ErrUnavailable)
}

// newID returns a random write ID: 128 bits in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
