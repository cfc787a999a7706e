package main

import (
	"flag"

	"github.com/chunkback/chunkback/crypt"
)

// keyFlags are the encryption key flags every command takes. With a key,
// backup encrypts new backups and restore, verify and show open encrypted
// ones. Given both, the file's key encrypts new backups and the variable's
// still opens the backups made with it (a key rotation).
type keyFlags struct {
	file string
	env  string
}

func (k *keyFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&k.file, "encryption-key-file", "", "encrypt new backups and open encrypted ones with the key in this file (32 raw bytes, 64 hex digits or base64; mode 0600)")
	fs.StringVar(&k.env, "encryption-key-env", "", "the same, with the key (hex or base64) in this environment variable")
}

// provider returns the keys given, or nil when none was. Errors name the
// file or variable, never the key.
func (k *keyFlags) provider() (crypt.KeyProvider, error) {
	var keys []crypt.KeyProvider
	if k.file != "" {
		p, err := crypt.KeyFile(k.file)
		if err != nil {
			return nil, err
		}
		keys = append(keys, p)
	}
	if k.env != "" {
		p, err := crypt.EnvKey(k.env)
		if err != nil {
			return nil, err
		}
		keys = append(keys, p)
	}
	switch len(keys) {
	case 0:
		return nil, nil
	case 1:
		return keys[0], nil
	}
	return crypt.NewKeyring(keys...), nil
}
