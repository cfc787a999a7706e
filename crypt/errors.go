package crypt

import "errors"

// Errors of this package, for errors.Is. Messages add the specifics; they
// never include key material.
var (
	// ErrAuth: sealed bytes did not open. The key is wrong, or the object
	// was altered, truncated, extended, or moved to another identity.
	ErrAuth = errors.New("sealed object failed authentication")
	// ErrKeyNotFound: a KeyProvider has no key with the ID asked for.
	ErrKeyNotFound = errors.New("encryption key not found")
	// ErrInvalidKey: key material is unusable (not 32 bytes, an unreadable
	// encoding, a key file others can read, an unset environment variable).
	ErrInvalidKey = errors.New("invalid encryption key")
)
