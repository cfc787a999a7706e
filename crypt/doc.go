// Package crypt seals chunkback's stored objects: client-side, authenticated
// encryption with AES-256-GCM, applied after compression, so a store (or
// anyone who can read it) sees neither the data nor digests of it, and any
// change to what is stored is detected rather than restored.
//
// # Keys
//
// A [KeyProvider] hands out 32-byte master keys by ID: [StaticKey], [KeyFile]
// and [EnvKey] hold one key each, a [Keyring] several (the first one's key
// seals new backups; the others open old ones after a rotation), and a host
// plugs in its KMS (Barbican, Vault, a cloud KMS) by implementing the two
// methods. A key's ID defaults to its [Fingerprint], "sha256:" and 16 hex
// digits of HMAC-SHA256(key, "chunkback key id"), which names the key without
// revealing it, so a wrong key is recognised by its ID alone.
//
// Each backup seals with its own subkey, [BackupKey]: HKDF-SHA256 of the
// master key and the backup's ID. [CheckValue] of the subkey, recorded beside
// the key ID, tells a wrong key from the right one before any object is read.
//
// # The sealed format (version 1)
//
// A sealed object is a 37-byte header followed by segments:
//
//	header   "CBSE" | version 0x01 | salt (32 random bytes)
//	segment  AES-256-GCM(64 KiB of plaintext; the last segment shorter) | 16-byte tag
//
// This is the STREAM construction (as in age and Tink's streaming AEAD), so
// an object can be opened as it arrives, one segment at a time, and never
// has to be held whole. Each object has its own key,
//
//	HKDF-SHA256(secret = subkey, salt = salt, info = "chunkback object v1" | magic | version | ad)
//
// where ad is the object's identity (for chunkback: volume ID, backup ID,
// object name — which carries the object's number —, offset, length and
// compression; build it with [Identity]). An object moved to another backup
// or position, or opened with another identity, therefore fails to open. The
// nonce of segment i is seven zero bytes, i as a big-endian uint32, and a
// byte that is 1 for the last segment and 0 otherwise: a stream truncated at
// a segment boundary, extended, or with segments reordered fails to open.
// Fresh random salts make every object's key unique, so nonces never repeat
// under one key.
//
// An empty plaintext is one empty last segment (the header and a tag). A
// plaintext of exactly k segments is k full segments, the last marked last.
// [Overhead] gives the size a plaintext grows by.
//
// Every failure to open — a wrong key, a tampered, truncated, extended or
// moved object, a header that is not this format — wraps [ErrAuth]; errors of
// the underlying reader are returned as they are.
package crypt
