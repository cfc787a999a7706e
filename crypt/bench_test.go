package crypt

import (
	"bytes"
	"io"
	"testing"
)

const benchSize = 8 << 20

func BenchmarkSeal(b *testing.B) {
	key, ad := testKey(1), Identity("vol", "backup", "obj-00001")
	plain := randomBytes(1, benchSize)
	dst := make([]byte, 0, benchSize+int(Overhead(benchSize)))
	b.SetBytes(benchSize)
	for b.Loop() {
		dst = Seal(dst[:0], plain, key, ad)
	}
}

func BenchmarkOpen(b *testing.B) {
	key, ad := testKey(1), Identity("vol", "backup", "obj-00001")
	sealed := Seal(nil, randomBytes(1, benchSize), key, ad)
	out := make([]byte, 256<<10)
	b.SetBytes(benchSize)
	for b.Loop() {
		r := NewOpenReader(bytes.NewReader(sealed), key, ad)
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, out); err != nil {
			b.Fatal(err)
		}
	}
}
