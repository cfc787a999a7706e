package compress

import (
	"math/rand/v2"
	"strconv"
)

// Test data generators, deterministic for a given seed.

var words = []string{
	"volume", "backup", "chunk", "object", "cinder", "restore", "metadata",
	"the", "of", "and", "a", "to", "in", "is", "it", "that", "for", "on",
	"compression", "zlib", "sha256", "incremental", "parent", "container",
	"kernel:", "INFO", "WARNING", "ERROR", "systemd[1]:", "Started", "session",
	"/var/log/syslog", "/usr/lib/python3", "GET", "POST", "HTTP/1.1", "200",
}

// textData returns n bytes of log-like text (compresses to roughly 25-35%).
func textData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x7e57))
	b := make([]byte, 0, n+64)
	for len(b) < n {
		switch r.IntN(12) {
		case 0:
			b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
		case 1:
			b = append(b, '\n')
		default:
			b = append(b, words[r.IntN(len(words))]...)
		}
		b = append(b, ' ')
	}
	return b[:n]
}

// randomData returns n incompressible bytes.
func randomData(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// mixedData returns n bytes alternating 64 KiB segments of text, random data
// and zeros.
func mixedData(n int, seed uint64) []byte {
	const seg = 64 << 10
	b := make([]byte, 0, n)
	for i := 0; len(b) < n; i++ {
		m := min(seg, n-len(b))
		switch i % 3 {
		case 0:
			b = append(b, textData(m, seed+uint64(i))...)
		case 1:
			b = append(b, randomData(m, seed+uint64(i))...)
		default:
			b = append(b, make([]byte, m)...)
		}
	}
	return b
}

type dataset struct {
	name string
	data []byte
	// compressible: every codec must report smaller=true (nil: don't care).
	compressible *bool
}

func ptr(b bool) *bool { return &b }

func datasets() []dataset {
	return []dataset{
		{"empty", []byte{}, ptr(false)},
		{"one-byte", []byte{'x'}, ptr(false)},
		{"small-text", []byte("hello, cinder backup"), nil},
		{"zeros-200", make([]byte, 200), ptr(true)},
		{"zeros-1MiB", make([]byte, 1<<20), ptr(true)},
		{"text-1000", textData(1000, 1), ptr(true)},
		{"text-1MiB", textData(1<<20, 2), ptr(true)},
		{"random-1MiB", randomData(1<<20, 3), ptr(false)},
		{"random-100", randomData(100, 4), ptr(false)},
		{"mixed-1MiB", mixedData(1<<20, 5), ptr(true)},
		{"text-9MiB", textData(9<<20, 6), ptr(true)},
	}
}
