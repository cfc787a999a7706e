package pyjson

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMarshalLayout(t *testing.T) {
	v := map[string]any{
		"b":     []any{},
		"a":     map[string]any{},
		"c":     []any{int64(1), "x", nil, true},
		"d":     map[string]any{"z": 1, "y": json.RawMessage(`{"q": [1, 2]}`)},
		"uni":   "é\u2603\U0001F600<>&\x7f\x01\"\\\n\t",
		"empty": "",
	}
	got, err := Marshal(v)
	require.NoError(t, err)
	want := `{
  "a": {},
  "b": [],
  "c": [
    1,
    "x",
    null,
    true
  ],
  "d": {
    "y": {
      "q": [
        1,
        2
      ]
    },
    "z": 1
  },
  "empty": "",
  "uni": "\u00e9\u2603\ud83d\ude00<>&\u007f\u0001\"\\\n\t"
}`
	require.Equal(t, want, string(got))
}

func TestRejectsFloats(t *testing.T) {
	_, err := Marshal(map[string]any{"f": 1.5})
	require.Error(t, err)
	_, err = Marshal(json.RawMessage(`{"f": 1.5}`))
	require.Error(t, err)
}

// TestMatchesPython compares with the real json.dumps when python3 is present
// (it is on every machine this project supports; a missing python3 fails).
func TestMatchesPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	require.NoError(t, err, "python3 is needed to compare with json.dumps")
	input := `{"k\u00e9y": ["a\u0000b", "\ud83d\ude00", 12, null, {"z": [], "a": {}}], "b": "tab\there", "A": false}`
	out, err := exec.Command(py, "-c", `import json,sys; sys.stdout.write(json.dumps(json.loads(sys.argv[1]), sort_keys=True, indent=2))`, input).Output()
	require.NoError(t, err)
	got, err := Marshal(json.RawMessage(input))
	require.NoError(t, err)
	require.Equal(t, string(out), string(got))
}
