// Package pyjson writes JSON exactly as Python's json.dumps(v, sort_keys=True,
// indent=2) does with its default ensure_ascii=True: two-space indentation,
// ", "-free item separators (",\n"), ": " after keys, keys sorted by code point,
// "[]" and "{}" for empty containers, no trailing newline, and every character
// outside printable ASCII escaped as \uXXXX (lower-case hex, surrogate pairs
// above U+FFFF).
//
// Cinder writes its _metadata and _sha256file objects this way; writing them
// byte for byte the same keeps chunkback's backups indistinguishable from
// Cinder's own.
package pyjson

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Marshal encodes v. Supported values: nil, bool, string, all Go integer
// types, json.Number, float64 (only if integral, to avoid guessing Python's
// float repr), *string (nil is null), []any, []string, map[string]any and
// json.RawMessage (decoded and re-encoded in Python's format).
func Marshal(v any) ([]byte, error) {
	return AppendValue(nil, v, 0)
}

// AppendValue appends the encoding of v at the given nesting depth (which
// sets the indentation of its inner lines) to dst.
func AppendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case string:
		return AppendString(dst, x), nil
	case *string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return AppendString(dst, *x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err != nil {
			return nil, fmt.Errorf("pyjson: number %s is not an integer; Python would print it differently", x)
		}
		return append(dst, x...), nil
	case float64:
		if x != float64(int64(x)) {
			return nil, fmt.Errorf("pyjson: non-integral float %v is not supported", x)
		}
		return strconv.AppendInt(dst, int64(x), 10), nil
	case json.RawMessage:
		var generic any
		if err := decodeGeneric(x, &generic); err != nil {
			return nil, err
		}
		return AppendValue(dst, generic, depth)
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return AppendValue(dst, items, depth)
	case []any:
		if len(x) == 0 {
			return append(dst, "[]"...), nil
		}
		dst = append(dst, '[')
		var err error
		for i, item := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = newline(dst, depth+1)
			if dst, err = AppendValue(dst, item, depth+1); err != nil {
				return nil, err
			}
		}
		dst = newline(dst, depth)
		return append(dst, ']'), nil
	case map[string]any:
		if len(x) == 0 {
			return append(dst, "{}"...), nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sortPython(keys)
		dst = append(dst, '{')
		var err error
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = newline(dst, depth+1)
			dst = AppendString(dst, k)
			dst = append(dst, ": "...)
			if dst, err = AppendValue(dst, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		dst = newline(dst, depth)
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("pyjson: unsupported type %T", v)
}

func newline(dst []byte, depth int) []byte {
	dst = append(dst, '\n')
	for i := 0; i < depth; i++ {
		dst = append(dst, ' ', ' ')
	}
	return dst
}

// sortPython sorts keys as Python sorts str: by code point. Go compares
// strings bytewise, which for valid UTF-8 is the same order except for code
// points above U+FFFF, which Python (comparing code points) also places last,
// so bytewise order matches.
func sortPython(keys []string) { sort.Strings(keys) }

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string with Python's ensure_ascii
// escaping. Invalid UTF-8 is replaced by U+FFFD (Python strings cannot hold it).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = appendU(dst, rune(c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			dst = appendU(appendU(dst, r1), r2)
			continue
		}
		dst = appendU(dst, r) // RuneError for invalid bytes: U+FFFD
	}
	return append(dst, '"')
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
