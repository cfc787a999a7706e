// Package tcpfault is a fault-injecting TCP proxy for tests: it listens on
// loopback, forwards every connection to one upstream address, and does to
// the bytes what its Faults say, switchable while connections run and set
// for each direction apart: latency with jitter, a bandwidth cap, a reset
// (TCP RST) after some bytes or at random, a normal close after some bytes,
// a blackhole (nothing forwarded: peers time out), and refusing new
// connections. Random choices come from a seed, so a run can be repeated.
//
// It sits in front of any TCP server (S3, Swift, NFS, a Ceph monitor, a
// GlusterFS volfile server) without knowing its protocol; for HTTP-level
// faults (a 429 with Retry-After) see internal/httpfault.
//
//	p, err := tcpfault.New(tcpfault.Config{Upstream: "127.0.0.1:9000", Seed: 1})
//	...
//	defer p.Close()
//	// point the client at p.Addr(), then, mid-test:
//	p.Set(tcpfault.ClientToServer, tcpfault.Faults{ResetAfter: 256 << 10, Times: 2})
package tcpfault

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultListen      = "127.0.0.1:0"
	DefaultDialTimeout = 5 * time.Second
	DefaultChunkSize   = 32 << 10
)

// Config configures a Proxy.
type Config struct {
	// Upstream is the host:port every connection is forwarded to (required).
	Upstream string
	// Listen is the address to listen on. Default DefaultListen (a free
	// loopback port).
	Listen string
	// Seed seeds the jitter and the random resets: the same seed makes the
	// same choices for the n-th connection's n-th chunk.
	Seed uint64
	// DialTimeout bounds the connection to Upstream. Default
	// DefaultDialTimeout. A client whose upstream connection fails is
	// reset, as if the server had refused it.
	DialTimeout time.Duration
	// ChunkSize is the most bytes forwarded at once. Default
	// DefaultChunkSize.
	ChunkSize int
}

// Validate reports the first field New cannot use. The error wraps
// ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: Config."+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if _, port, err := net.SplitHostPort(c.Upstream); err != nil || port == "" {
		return bad("Upstream %q is not host:port; give the server's address, such as 127.0.0.1:9000", c.Upstream)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return bad("Listen %q is not host:port; leave it empty for %s", c.Listen, DefaultListen)
		}
	}
	switch {
	case c.DialTimeout < 0:
		return bad("DialTimeout is %v; use a positive duration (0 means %v)", c.DialTimeout, DefaultDialTimeout)
	case c.ChunkSize < 0:
		return bad("ChunkSize is %d; use a positive size (0 means %d)", c.ChunkSize, DefaultChunkSize)
	}
	return nil
}

// Stats counts what a Proxy did.
type Stats struct {
	// Accepted counts the connections accepted; Open those open now.
	Accepted int64
	Open     int
	// Bytes counts the bytes forwarded, by Direction.
	Bytes [2]int64
	// Dropped counts the bytes a blackhole swallowed.
	Dropped int64
	// Resets and Closes count the connections the faults cut.
	Resets, Closes int64
	// DialErrors counts connections whose upstream could not be reached.
	DialErrors int64
}

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	cfg  Config
	addr string

	state atomic.Pointer[settings]

	mu     sync.Mutex
	ln     net.Listener // nil while refusing
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted, dropped, resets, closes, dialErrors atomic.Int64
	bytes                                         [2]atomic.Int64
}

// settings is one Set's faults, with the counters that belong to them.
type settings struct {
	faults [2]Faults
	flowed [2]atomic.Int64 // bytes forwarded since these were set
	cuts   [2]atomic.Int64 // resets and closes made
}

// active reports whether the faults of dir have started (Faults.StartAfter).
func (s *settings) active(dir Direction) bool {
	return s.flowed[dir].Load() >= s.faults[dir].StartAfter
}

// takeCut reports whether the faults of dir may cut one more connection,
// and counts it.
func (s *settings) takeCut(dir Direction) bool {
	times := int64(s.faults[dir].Times)
	if times == 0 {
		s.cuts[dir].Add(1)
		return true
	}
	for {
		n := s.cuts[dir].Load()
		if n >= times {
			return false
		}
		if s.cuts[dir].CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// New starts a proxy in front of cfg.Upstream, with no faults.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("tcpfault: listening on %s: %w", cfg.Listen, err)
	}
	p := &Proxy{cfg: cfg, addr: ln.Addr().String(), ln: ln, conns: map[*conn]struct{}{}}
	p.state.Store(&settings{})
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr returns the host:port clients connect to.
func (p *Proxy) Addr() string { return p.addr }

// Port returns the port clients connect to.
func (p *Proxy) Port() int {
	_, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Upstream returns the address connections are forwarded to.
func (p *Proxy) Upstream() string { return p.cfg.Upstream }

// Set replaces the faults of one direction, for open connections and new
// ones; the other direction's are kept. Counters of StartAfter, ResetAfter,
// CloseAfter and Times start again from zero.
func (p *Proxy) Set(dir Direction, f Faults) error {
	if dir != ClientToServer && dir != ServerToClient {
		return fmt.Errorf("%w: direction %v: use ClientToServer or ServerToClient", ErrInvalidConfig, dir)
	}
	if err := f.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.state.Load()
	s := &settings{faults: old.faults}
	s.faults[dir] = f
	p.state.Store(s)
	return nil
}

// SetBoth sets the same faults in both directions.
func (p *Proxy) SetBoth(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state.Store(&settings{faults: [2]Faults{f, f}})
	return nil
}

// Clear removes every fault. Connections a blackhole left silent stay so.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state.Store(&settings{})
}

// Refuse stops (true) or resumes (false) accepting connections: while
// refusing, the proxy does not listen, so clients get "connection refused"
// as from a server that is down. Open connections are not touched. Resuming
// listens on the same port again.
func (p *Proxy) Refuse(refuse bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("tcpfault: proxy %s is closed", p.addr)
	}
	switch {
	case refuse && p.ln != nil:
		err := p.ln.Close()
		p.ln = nil
		return err
	case !refuse && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("tcpfault: listening on %s again: %w", p.addr, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	return nil
}

// ResetAll resets every open connection now (a TCP RST to both peers).
func (p *Proxy) ResetAll() {
	for _, c := range p.open() {
		c.cut(true, &p.resets)
	}
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := len(p.conns)
	p.mu.Unlock()
	return Stats{
		Accepted: p.accepted.Load(), Open: open,
		Bytes:   [2]int64{p.bytes[0].Load(), p.bytes[1].Load()},
		Dropped: p.dropped.Load(), Resets: p.resets.Load(), Closes: p.closes.Load(),
		DialErrors: p.dialErrors.Load(),
	}
}

// Close stops listening, resets every open connection and waits until the
// proxy's goroutines have ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var err error
	if p.ln != nil {
		err = p.ln.Close()
		p.ln = nil
	}
	p.mu.Unlock()
	for _, c := range p.open() {
		c.cut(true, nil)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) open() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		list = append(list, c)
	}
	return list
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return // closed by Refuse or Close
		}
		id := uint64(p.accepted.Add(1))
		p.wg.Add(1)
		go p.serve(nc.(*net.TCPConn), id)
	}
}

// serve dials the upstream for one accepted connection and forwards both
// ways until both are done.
func (p *Proxy) serve(client *net.TCPConn, id uint64) {
	defer p.wg.Done()
	nc, err := net.DialTimeout("tcp", p.cfg.Upstream, p.cfg.DialTimeout)
	if err != nil {
		p.dialErrors.Add(1)
		_ = client.SetLinger(0)
		_ = client.Close()
		return
	}
	c := &conn{p: p, client: client, server: nc.(*net.TCPConn), done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.cut(true, nil)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); c.pump(ClientToServer, id) }()
	go func() { defer pumps.Done(); c.pump(ServerToClient, id) }()
	pumps.Wait()
	c.cut(false, nil)
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
