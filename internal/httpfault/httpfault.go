// Package httpfault is a fault-injecting HTTP reverse proxy for tests of the
// HTTP-based targets (S3, Swift, GCS, Azure): it forwards requests to a real
// server on loopback and answers those that match a Rule itself, with an
// error status (429 with Retry-After, 503, ...), so the tests see how a
// target and the retry decorator handle a flaky or throttling store.
//
// The proxy keeps the request's Host header, so request signatures that
// cover it (AWS SigV4, Azure Shared Key) still verify upstream.
package httpfault

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Rule makes the proxy answer the requests it matches with Status instead of
// forwarding them.
type Rule struct {
	// Method matches the request method ("" matches any).
	Method string
	// Path matches when the URL path contains it ("" matches any).
	Path string
	// Query matches when the raw query contains it ("" matches any).
	Query string
	// Status is the HTTP status of the answer (e.g. 429, 503).
	Status int
	// RetryAfter, if set, is sent as the Retry-After header ("1", or an
	// HTTP date).
	RetryAfter string
	// Body is the answer's body (an XML or JSON error document, if the
	// client parses one).
	Body string
	// ContentType is the answer's Content-Type (default text/plain).
	ContentType string
	// Times is how many matching requests get the fault; 0 means every one.
	Times int
}

func (r *Rule) matches(req *http.Request) bool {
	return (r.Method == "" || r.Method == req.Method) &&
		strings.Contains(req.URL.Path, r.Path) &&
		strings.Contains(req.URL.RawQuery, r.Query)
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's base URL (http://127.0.0.1:port).
	URL string

	srv      *httptest.Server
	mu       sync.Mutex
	rules    []Rule
	used     []int
	faults   int
	requests int
}

// New starts a proxy in front of upstream (a base URL such as
// http://127.0.0.1:9000) with the given rules.
func New(upstream string, rules ...Rule) (*Proxy, error) {
	up, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	p := &Proxy{}
	p.SetRules(rules...)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(up)
			r.Out.Host = r.In.Host
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if rule, ok := p.fault(req); ok {
			if req.Body != nil {
				// Read what the client sends, as a server would, so it does not
				// see a reset connection instead of the answer.
				_, _ = http.MaxBytesReader(w, req.Body, 64<<20).Read(make([]byte, 32<<10))
			}
			if rule.RetryAfter != "" {
				w.Header().Set("Retry-After", rule.RetryAfter)
			}
			ct := rule.ContentType
			if ct == "" {
				ct = "text/plain"
			}
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Connection", "close")
			w.WriteHeader(rule.Status)
			_, _ = w.Write([]byte(rule.Body))
			return
		}
		rp.ServeHTTP(w, req)
	}))
	p.URL = p.srv.URL
	return p, nil
}

// fault returns the first rule that matches req and still has uses left,
// and counts the request.
func (p *Proxy) fault(req *http.Request) (Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matches(req) || (r.Times > 0 && p.used[i] >= r.Times) {
			continue
		}
		p.used[i]++
		p.faults++
		return *r, true
	}
	return Rule{}, false
}

// SetRules replaces the rules (and resets their use counts).
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append([]Rule(nil), rules...)
	p.used = make([]int, len(rules))
}

// Faults returns how many requests the proxy answered with a fault.
func (p *Proxy) Faults() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// Requests returns how many requests reached the proxy.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }
