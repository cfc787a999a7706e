package backup

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"

	"github.com/chunkback/chunkback/crypt"
	"github.com/chunkback/chunkback/target"
)

// Encrypted backups (Config.Keys): each data object is compressed as usual
// (the store-raw rule unchanged), then sealed with package crypt, bound to
// its identity (volume, backup, name, offset, length, compression); the
// _sha256file is sealed too, since block hashes of plaintext would let
// anyone confirm guesses of the content. The _metadata stays readable, so
// list, show and delete need no key; it holds names, offsets, lengths (which
// extents of the volume hold data), display name, description and
// volume_meta in the clear. Each object's "md5" is the MD5 of its stored,
// sealed bytes, so Verify can check every stored byte without the key and no
// digest of plaintext is stored in the clear.
//
// An encrypted backup's _metadata has the version EncryptedFormatVersion:
// Cinder cannot decrypt it, and given a version it does not know it refuses
// the backup at once ("No support to restore backup version"), where with
// "1.0.0" it would write the sealed bytes of objects stored raw onto the
// volume without a word.

// EncryptedFormatVersion is the _metadata version of an encrypted backup.
const EncryptedFormatVersion = "1.0.0+chunkback.encrypted"

// sealAlgorithm names the sealed format in EncryptionFacts.Algorithm.
const sealAlgorithm = "chunkback-stream-v1:AES-256-GCM,HKDF-SHA256,64KiB"

var (
	// ErrKeyRequired: the backup is encrypted and no key was given
	// (Config.Keys is nil). The message names the backup's key ID.
	ErrKeyRequired = errors.New("backup is encrypted: its key is required")
	// ErrWrongKey: the keys given do not include the one the backup was
	// encrypted with (no key with its ID, or one whose check value differs).
	ErrWrongKey = errors.New("wrong encryption key")
)

// EncryptionFacts records how a backup was encrypted, in
// extra_metadata.chunkback.encryption (absent for a plain backup).
type EncryptionFacts struct {
	// Algorithm names the sealed format.
	Algorithm string `json:"algorithm"`
	// KeyID is the master key's ID in the KeyProvider (as Cinder records a
	// volume's encryption_key_id).
	KeyID string `json:"key_id"`
	// KeyCheck is crypt.CheckValue of the backup's subkey: a wrong key is
	// told from the right one before any object is read.
	KeyCheck string `json:"key_check"`
}

// Encryption returns how the backup was encrypted, or nil for a backup
// stored in the clear.
func (i *Info) Encryption() *EncryptionFacts { return i.facts.Encryption }

// checkEncryption checks that the metadata's version and encryption facts
// agree: a backup that says it is encrypted in one and not the other has
// been tampered with.
func checkEncryption(m *Metadata, f Facts, ours bool) error {
	encrypted := ours && f.Encryption != nil
	if encrypted != (m.Version == EncryptedFormatVersion) {
		return fmt.Errorf("version %q does not match extra_metadata.chunkback.encryption (present: %v)", m.Version, encrypted)
	}
	if encrypted && (f.Encryption.KeyID == "" || f.Encryption.KeyCheck == "" || f.Encryption.Algorithm == "") {
		return errors.New("extra_metadata.chunkback.encryption lacks its algorithm, key_id or key_check")
	}
	return nil
}

// sealer seals the objects of one new backup.
type sealer struct {
	key   *crypt.Key // the backup's subkey
	facts *EncryptionFacts
}

// keyID is the ID of the key new objects are sealed with ("" without one).
func (s *sealer) keyID() string {
	if s == nil {
		return ""
	}
	return s.facts.KeyID
}

// digest is a keyed digest of an object's data, by which a resumed backup
// recognises objects already stored: HMAC-SHA256 under the backup's subkey,
// cut to 128 bits, so that no digest of plaintext is stored in the clear.
func (s *sealer) digest(data []byte) string {
	m := hmac.New(sha256.New, s.key[:])
	m.Write([]byte("chunkback journal digest\x00"))
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// newSealer returns the sealer of a new backup, or nil when Config.Keys is
// not set.
func (e *Engine) newSealer(ctx context.Context, backupID string) (*sealer, error) {
	if e.cfg.Keys == nil {
		return nil, nil
	}
	id, err := e.cfg.Keys.CurrentKeyID(ctx)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	raw, err := e.cfg.Keys.Key(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("encryption key %s: %w", id, err)
	}
	master, err := crypt.NewKey(raw)
	if err != nil {
		return nil, fmt.Errorf("encryption key %s: %w", id, err)
	}
	sub := crypt.BackupKey(master, backupID)
	return &sealer{key: sub, facts: &EncryptionFacts{Algorithm: sealAlgorithm, KeyID: id, KeyCheck: crypt.CheckValue(sub)}}, nil
}

// unlock finds the subkey of an encrypted backup and checks it against the
// backup's check value, once, before any of its objects is read. A plain
// backup needs nothing. Callers run it before starting workers that read b.
func (e *Engine) unlock(ctx context.Context, b *Info) error {
	enc := b.facts.Encryption
	if enc == nil || b.key != nil {
		return nil
	}
	if e.cfg.Keys == nil {
		return fmt.Errorf("%w: backup %s is encrypted with key %s: give that key (Config.Keys; CLI --encryption-key-file or --encryption-key-env)", ErrKeyRequired, b.ID, enc.KeyID)
	}
	if enc.Algorithm != sealAlgorithm {
		return fmt.Errorf("%w: backup %s is encrypted with %q, which this version of chunkback cannot open", ErrCorrupt, b.ID, enc.Algorithm)
	}
	raw, err := e.cfg.Keys.Key(ctx, enc.KeyID)
	if errors.Is(err, crypt.ErrKeyNotFound) {
		given := "?"
		if id, ierr := e.cfg.Keys.CurrentKeyID(ctx); ierr == nil {
			given = id
		}
		return fmt.Errorf("%w: backup %s is encrypted with key %s, and no key given has that ID (the key given is %s): give the key it was made with", ErrWrongKey, b.ID, enc.KeyID, given)
	}
	if err != nil {
		return fmt.Errorf("getting key %s for backup %s: %w", enc.KeyID, b.ID, err)
	}
	master, err := crypt.NewKey(raw)
	if err != nil {
		return fmt.Errorf("key %s for backup %s: %w", enc.KeyID, b.ID, err)
	}
	sub := crypt.BackupKey(master, b.ID)
	if subtle.ConstantTimeCompare([]byte(crypt.CheckValue(sub)), []byte(enc.KeyCheck)) != 1 {
		return fmt.Errorf("%w: the key given as %s is not the one backup %s was encrypted with (its check value differs)", ErrWrongKey, enc.KeyID, b.ID)
	}
	b.key = sub
	return nil
}

// unlockAll unlocks every backup of a chain.
func (e *Engine) unlockAll(ctx context.Context, chain []*Info) error {
	for _, b := range chain {
		if err := e.unlock(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// objectIdentity is the identity a data object is sealed to: moved to
// another backup or position, or described otherwise by the metadata, it
// does not open.
func objectIdentity(volumeID, backupID string, obj ObjectMeta) []byte {
	return crypt.Identity("chunkback data object", volumeID, backupID, obj.Name,
		strconv.FormatInt(obj.Offset, 10), strconv.FormatInt(obj.Length, 10), obj.Compression)
}

// manifestIdentity is the identity a backup's _sha256file is sealed to.
func manifestIdentity(volumeID, backupID string) []byte {
	return crypt.Identity("chunkback sha256file", volumeID, backupID)
}

// storedLimit is the most stored bytes a data object can have: its length
// (a stored object is never longer than its data), plus the sealing overhead
// in an encrypted backup.
func (i *Info) storedLimit(obj ObjectMeta) int64 {
	if i.facts.Encryption != nil {
		return obj.Length + crypt.Overhead(obj.Length)
	}
	return obj.Length
}

// unseal returns what to decompress a data object from: its stored bytes,
// or in an encrypted backup those bytes opened as they arrive, and sealed
// reports which. With checkMD5, storedMD5 sees the stored bytes of a sealed
// object (their MD5 is the metadata's "md5"). unlock must have run.
func (i *Info) unseal(stored io.Reader, obj ObjectMeta, checkMD5 bool) (src io.Reader, sealed bool, storedMD5 hash.Hash, err error) {
	if i.facts.Encryption == nil {
		return stored, false, nil, nil
	}
	if i.key == nil {
		return nil, true, nil, fmt.Errorf("%w: backup %s is encrypted with key %s", ErrKeyRequired, i.ID, i.facts.Encryption.KeyID)
	}
	if checkMD5 {
		storedMD5 = md5.New()
		stored = io.TeeReader(stored, storedMD5)
	}
	return crypt.NewOpenReader(stored, i.key, objectIdentity(i.VolumeID, i.ID, obj)), true, storedMD5, nil
}

// verifyStored checks an encrypted backup without its key: the object list,
// and every stored byte against the MD5 the metadata records for it.
func (e *Engine) verifyStored(ctx context.Context, b *Info, rep *VerifyReport, mt *meter) error {
	missing, stray, err := e.objectList(ctx, b)
	if err != nil {
		return err
	}
	fault := func(object, problem string) {
		rep.Faults = append(rep.Faults, Fault{BackupID: b.ID, Object: object, Problem: problem})
	}
	for _, n := range missing {
		fault(n, "missing from the target")
	}
	for _, n := range stray {
		fault(n, "stray object carrying the backup's prefix (Cinder refuses to restore the backup while it is there)")
	}
	skip := map[string]bool{}
	for _, n := range missing {
		skip[n] = true
	}
	for _, obj := range b.Metadata.Objects {
		name := b.loc.full(obj.Name)
		if skip[name] {
			continue
		}
		stored, problem, err := e.storedMD5(ctx, b, obj)
		if err != nil {
			return err
		}
		if problem != "" {
			fault(name, problem)
		}
		rep.Objects++
		rep.Bytes += obj.Length
		mt.done.Add(obj.Length)
		mt.stored.Add(stored)
		mt.count.Add(1)
	}
	return nil
}

// storedMD5 checks the MD5 of one object's stored bytes, reading no more
// than the object can hold. problem describes a fault; err stops the check.
func (e *Engine) storedMD5(ctx context.Context, b *Info, obj ObjectMeta) (stored int64, problem string, err error) {
	rc, err := e.openStored(ctx, b, obj)
	if err != nil {
		if errors.Is(err, target.ErrNotFound) {
			return 0, "missing from the target", nil
		}
		return 0, "", fmt.Errorf("reading %s: %w", b.loc.full(obj.Name), err)
	}
	defer rc.Close()
	limit := b.storedLimit(obj) + 1
	body := &boundedReader{r: rc, left: limit}
	sum := md5.New()
	_, err = io.Copy(sum, body)
	stored = limit - body.left
	switch {
	case errors.Is(err, errTooLong):
		return stored, fmt.Sprintf("holds more than the %d bytes it can (its data and the encryption overhead)", limit-1), nil
	case err != nil:
		return stored, "", fmt.Errorf("reading %s: %w", b.loc.full(obj.Name), err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != obj.MD5 {
		return stored, fmt.Sprintf("MD5 %s of its stored (encrypted) bytes does not match the metadata's %s", got, obj.MD5), nil
	}
	return stored, "", nil
}
