package crypt

import (
	"bytes"
	"io"
	"testing"
)

// FuzzOpen feeds the opener arbitrary sealed bytes. It must never panic or
// hang, and must open nothing but what Seal made for that key and identity:
// any other input is an error wrapping ErrAuth.
func FuzzOpen(f *testing.F) {
	key, ad := testKey(1), Identity("vol", "backup", "obj-00001")
	genuine := map[string][]byte{}
	for _, n := range []int{0, 1, 300, SegmentSize, SegmentSize + 7} {
		plain := randomBytes(uint64(n)+11, n)
		// A fixed salt: the fuzzing workers are other processes, which
		// must know the same genuine objects.
		hdr := []byte(magic + "\x01" + string(bytes.Repeat([]byte{byte(n)}, saltSize)))
		sealed := sealWith(nil, plain, key, ad, hdr)
		genuine[string(sealed)] = plain
		f.Add(sealed)
		f.Add(sealed[:len(sealed)-1])
		flipped := bytes.Clone(sealed)
		flipped[len(flipped)/2] ^= 1
		f.Add(flipped)
	}
	f.Add([]byte(magic + "\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := io.ReadAll(NewOpenReader(bytes.NewReader(data), key, ad))
		if err == nil {
			plain, ok := genuine[string(data)]
			if !ok || !bytes.Equal(plain, got) {
				t.Fatalf("opened %d bytes that Seal did not make", len(data))
			}
			return
		}
		if !isAuth(err) {
			t.Fatalf("error %v does not wrap ErrAuth", err)
		}
	})
}

func isAuth(err error) bool {
	for err != nil {
		if err == ErrAuth {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
