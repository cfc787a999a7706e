package crypt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// KeyProvider hands out master keys by ID. Implementations must be safe for
// concurrent use. A host plugs its key manager (Barbican, Vault, a cloud
// KMS) in by implementing it.
type KeyProvider interface {
	// CurrentKeyID returns the ID of the key that seals new backups. IDs
	// are recorded in the clear in each backup's metadata: they must not
	// reveal the key.
	CurrentKeyID(ctx context.Context) (string, error)
	// Key returns the 32-byte key with the given ID, or an error wrapping
	// ErrKeyNotFound when the provider has no such key.
	Key(ctx context.Context, id string) ([]byte, error)
}

// Static is a KeyProvider holding one key.
type Static struct {
	id  string
	key Key
}

// StaticKey returns a provider of the one 32-byte key. An empty id uses the
// key's Fingerprint, which lets a wrong key be recognised by its ID.
func StaticKey(id string, key []byte) (*Static, error) {
	k, err := NewKey(key)
	if err != nil {
		return nil, err
	}
	if id == "" {
		id = Fingerprint(k)
	}
	return &Static{id: id, key: *k}, nil
}

// CurrentKeyID returns the key's ID.
func (s *Static) CurrentKeyID(context.Context) (string, error) { return s.id, nil }

// Key returns a copy of the key if id is its ID.
func (s *Static) Key(_ context.Context, id string) ([]byte, error) {
	if id != s.id {
		return nil, fmt.Errorf("%w: the key given has ID %s, not %s", ErrKeyNotFound, s.id, id)
	}
	k := s.key
	return k[:], nil
}

// maxKeyText bounds what a key file or variable may hold: a key in any of
// its encodings with white space around it is far shorter.
const maxKeyText = 1024

// KeyFile reads a key from a file holding exactly 32 raw bytes (head -c 32
// /dev/urandom), or 64 hex digits, or the base64 of 32 bytes (white space
// around them is ignored). Its ID is the key's Fingerprint.
//
// As ssh does with private keys, a file that its group or others may read
// (mode & 0o077 != 0) is refused on Unix: chmod 600 it (on Kubernetes, mount
// the secret with defaultMode 0400).
func KeyFile(path string) (*Static, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: key file: %w", ErrInvalidKey, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: key file: %w", ErrInvalidKey, err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: key file %s can be read by its group or others (mode %04o): chmod 600 %s", ErrInvalidKey, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyText+1))
	if err != nil {
		return nil, fmt.Errorf("%w: key file %s: %w", ErrInvalidKey, path, err)
	}
	var key []byte
	if len(data) == KeySize {
		key = data
	} else if key, err = parseKeyText(data); err != nil {
		return nil, fmt.Errorf("%w: key file %s holds %s, %v", ErrInvalidKey, path, byteCount(len(data)), err)
	}
	return StaticKey("", key)
}

// EnvKey reads a key from the environment variable name, as 64 hex digits or
// the base64 of 32 bytes. Its ID is the key's Fingerprint.
func EnvKey(name string) (*Static, error) {
	v, ok := os.LookupEnv(name)
	if name == "" || !ok || v == "" {
		return nil, fmt.Errorf("%w: environment variable %q is not set: set it to the key as 64 hex digits or base64 of 32 bytes", ErrInvalidKey, name)
	}
	key, err := parseKeyText([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("%w: environment variable %s holds %s, %v", ErrInvalidKey, name, byteCount(len(v)), err)
	}
	return StaticKey("", key)
}

// byteCount says how many bytes key text holds, up to maxKeyText.
func byteCount(n int) string {
	if n > maxKeyText {
		return fmt.Sprintf("more than %d bytes", maxKeyText)
	}
	return fmt.Sprintf("%d bytes", n)
}

// parseKeyText decodes a key written as hex or base64. Its error never
// quotes the text.
func parseKeyText(data []byte) ([]byte, error) {
	text := bytes.TrimSpace(data)
	if len(text) > maxKeyText {
		return nil, errKeyText
	}
	if len(text) == 2*KeySize {
		if key, err := hex.DecodeString(string(text)); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(string(text)); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, errKeyText
}

var errKeyText = errors.New("which are neither 32 raw bytes (files only), 64 hex digits nor the base64 of 32 bytes: make a key with `head -c 32 /dev/urandom | base64`")

// Keyring is a KeyProvider of several providers: the first one's current key
// seals new backups, and keys are looked up in each in turn, so backups
// sealed with older keys still open after a rotation.
type Keyring struct {
	providers []KeyProvider
}

// NewKeyring returns a keyring of the providers, the current one first. Nil
// providers are left out.
func NewKeyring(providers ...KeyProvider) *Keyring {
	k := &Keyring{}
	for _, p := range providers {
		if p != nil {
			k.providers = append(k.providers, p)
		}
	}
	return k
}

// CurrentKeyID returns the first provider's current key ID.
func (k *Keyring) CurrentKeyID(ctx context.Context) (string, error) {
	if len(k.providers) == 0 {
		return "", fmt.Errorf("%w: the keyring is empty", ErrKeyNotFound)
	}
	return k.providers[0].CurrentKeyID(ctx)
}

// Key returns the key with the given ID from the first provider that has it.
// Errors other than ErrKeyNotFound stop the search.
func (k *Keyring) Key(ctx context.Context, id string) ([]byte, error) {
	for _, p := range k.providers {
		key, err := p.Key(ctx, id)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, ErrKeyNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: none of the %d key(s) given has ID %s", ErrKeyNotFound, len(k.providers), id)
}
