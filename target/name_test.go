package target

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	valid := []string{
		"a",
		"a/b/c",
		"with space",
		"unicode-é-日本語",
		"+%#?=&",
		".hidden",
		"..dots",
		"dots..",
		"a/.b/..c",
		"5a/5a/5a5a0000-0000-0000-0000-000000000000/volume_1_20260101000000_backup_5a5a-00001",
		strings.Repeat("x", MaxElementLen),
		strings.Repeat(strings.Repeat("x", 100)+"/", 11)[:MaxNameLen],
	}
	for _, name := range valid {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", name, err)
		}
	}
	invalid := map[string]string{
		"":                                       "empty",
		"/a":                                     "starts with '/'",
		"a/":                                     "empty path element",
		"a//b":                                   "empty path element",
		".":                                      `"." path element`,
		"./a":                                    `"." path element`,
		"..":                                     `".." path element`,
		"../a":                                   `".." path element`,
		"a/../b":                                 `".." path element`,
		"a/..":                                   `".." path element`,
		"a\x00b":                                 "control character 0x00",
		"a\nb":                                   "control character 0x0a",
		"a\x7f":                                  "control character 0x7f",
		"\xff":                                   "not valid UTF-8",
		strings.Repeat("x", MaxElementLen+1):     "path element of 256 bytes",
		strings.Repeat("x/", MaxNameLen/2) + "x": "more than the limit of 1024",
		ReservedPrefix + "x":                     "reserved prefix",
		"a/" + ReservedPrefix:                    "reserved prefix",
	}
	for name, want := range invalid {
		err := CheckName(name)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("CheckName(%q) = %v, want ErrInvalidArgument", name, err)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckName(%q) = %q, want it to mention %q", name, err, want)
		}
	}
}

func TestCheckPut(t *testing.T) {
	body := strings.NewReader("x")
	if err := CheckPut("a/b", body, 1); err != nil {
		t.Fatalf("valid put: %v", err)
	}
	if err := CheckPut("a/b", nil, 0); err != nil {
		t.Fatalf("empty put without a body: %v", err)
	}
	for _, tc := range []struct {
		name string
		body io.Reader
		size int64
		want string
	}{
		{"", body, 1, "put: empty object name"},
		{"a", body, -1, `put "a": negative size -1`},
		{"a", nil, 5, `put "a": nil body for 5 bytes`},
	} {
		err := CheckPut(tc.name, tc.body, tc.size)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("CheckPut(%q, %d) = %v, want ErrInvalidArgument and %q", tc.name, tc.size, err, tc.want)
		}
	}
}
