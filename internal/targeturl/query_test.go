package targeturl

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestQueryParsesAndKeepsTheFirstError(t *testing.T) {
	bad := func(format string, args ...any) error { return fmt.Errorf(format, args...) }
	u, _ := url.Parse("x://h/p?b=true&n=7&s=1048576&d=90&d2=1m30s")
	q, err := newQuery(u, []string{"b", "n", "s", "d", "d2", "missing"}, "no user", bad)
	require.NoError(t, err)
	var b bool
	var n int
	var s int64
	var d, d2, missing time.Duration
	q.boolean("b", &b)
	q.integer("n", &n)
	q.size("s", &s)
	q.duration("d", &d)
	q.duration("d2", &d2)
	q.duration("missing", &missing)
	require.NoError(t, q.err)
	require.Equal(t, true, b)
	require.Equal(t, 7, n)
	require.EqualValues(t, 1<<20, s)
	require.Equal(t, 90*time.Second, d)
	require.Equal(t, 90*time.Second, d2)
	require.Zero(t, missing)

	u, _ = url.Parse("x://h/p?n=seven&b=maybe")
	q, err = newQuery(u, []string{"b", "n"}, "no user", bad)
	require.NoError(t, err)
	q.integer("n", &n)
	q.boolean("b", &b)
	require.EqualError(t, q.err, `n="seven": use a whole number`)
	require.Equal(t, 7, n, "a bad value leaves the field alone")
}

func TestQueryRejectsUserAndUnknownParameters(t *testing.T) {
	bad := func(format string, args ...any) error { return fmt.Errorf(format, args...) }
	u, _ := url.Parse("x://user:secret@h/p")
	_, err := newQuery(u, nil, "credentials go in the environment", bad)
	require.EqualError(t, err, "credentials go in the environment")
	u, _ = url.Parse("x://h/p?bogus=1")
	_, err = newQuery(u, []string{"a", "b"}, "", bad)
	require.EqualError(t, err, `unknown parameter "bogus" (known: a, b)`)
}
