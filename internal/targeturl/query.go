package targeturl

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// query holds the query parameters of a --target URL while a scheme reads
// them into its configuration. The first value that does not parse is kept
// in err, so a scheme reads every parameter and checks err once.
type query struct {
	url.Values
	bad func(format string, args ...any) error // an error that names the URL
	err error
}

// newQuery checks what the URLs of every network scheme share: no user or
// password (userMsg says where the credentials go instead), and no query
// parameter outside known.
func newQuery(u *url.URL, known []string, userMsg string, bad func(format string, args ...any) error) (*query, error) {
	if u.User != nil {
		return nil, bad("%s", userMsg)
	}
	values := u.Query()
	for k := range values {
		if !slices.Contains(known, k) {
			return nil, bad("unknown parameter %q (known: %s)", k, strings.Join(known, ", "))
		}
	}
	return &query{Values: values, bad: bad}, nil
}

// parse sets *dst from parameter name, if given, with conv; what is
// expected completes the error message.
func parse[T any](q *query, name string, dst *T, conv func(string) (T, error), expected string) {
	v := q.Get(name)
	if v == "" || q.err != nil {
		return
	}
	got, err := conv(v)
	if err != nil {
		q.err = q.bad("%s=%q: use %s", name, v, expected)
		return
	}
	*dst = got
}

func (q *query) boolean(name string, dst *bool) {
	parse(q, name, dst, strconv.ParseBool, "true or false")
}

func (q *query) integer(name string, dst *int) {
	parse(q, name, dst, strconv.Atoi, "a whole number")
}

func (q *query) size(name string, dst *int64) {
	parse(q, name, dst, func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }, "a size in bytes")
}

// duration takes a Go duration (30s, 1m30s) or a whole number of seconds.
func (q *query) duration(name string, dst *time.Duration) {
	parse(q, name, dst, func(v string) (time.Duration, error) {
		if secs, err := strconv.Atoi(v); err == nil {
			return time.Duration(secs) * time.Second, nil
		}
		return time.ParseDuration(v)
	}, "a duration such as 30s, or seconds")
}
