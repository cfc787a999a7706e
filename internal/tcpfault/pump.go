package tcpfault

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one proxied connection: the client's side and the upstream's.
type conn struct {
	p              *Proxy
	client, server *net.TCPConn
	dead           atomic.Bool // a blackhole dropped data: forward nothing ever again
	once           sync.Once
	done           chan struct{} // closed when the connection is cut
}

// chunk is a piece of the stream waiting to be forwarded at due.
type chunk struct {
	data []byte
	due  time.Time
}

// queueLen bounds the chunks in flight per direction: the proxy holds at
// most queueLen x ChunkSize bytes of each connection's stream.
const queueLen = 16

// cut ends both sides of the connection, with a TCP RST if reset, and
// reports whether this call did it; if so it first counts it in counter
// (if not nil), so the count is there when the peers see the cut.
func (c *conn) cut(reset bool, counter *atomic.Int64) bool {
	did := false
	c.once.Do(func() {
		did = true
		if counter != nil {
			counter.Add(1)
		}
		if reset {
			_ = c.client.SetLinger(0)
			_ = c.server.SetLinger(0)
		}
		_ = c.client.Close()
		_ = c.server.Close()
		close(c.done)
	})
	return did
}

// pump forwards one direction: a reader fills a queue of chunks stamped
// with their due time (so latency pipelines), and the writer applies the
// faults as it forwards them.
func (c *conn) pump(dir Direction, id uint64) {
	src, dst := c.client, c.server
	if dir == ServerToClient {
		src, dst = c.server, c.client
	}
	// One generator per connection and direction, so goroutine scheduling
	// does not change which chunk gets which random value.
	// The reader draws the jitter and the writer the resets: each has its own.
	jitter := rand.New(rand.NewPCG(c.p.cfg.Seed, id<<2|uint64(dir)<<1))
	rng := rand.New(rand.NewPCG(c.p.cfg.Seed, id<<2|uint64(dir)<<1|1))
	q := make(chan chunk, queueLen)
	readErr := make(chan error, 1)
	go func() { readErr <- c.read(dir, src, q, jitter) }()

	var s *settings
	var sent int64 // bytes forwarded on this connection under s's faults, once active
	var nextFree time.Time
	for ch := range q {
		if !c.sleepUntil(ch.due) {
			return
		}
		if cur := c.p.state.Load(); cur != s {
			s, sent = cur, 0
		}
		f := s.faults[dir]
		active := s.active(dir)
		if c.dead.Load() || (active && f.Blackhole) {
			c.dead.Store(true)
			c.p.dropped.Add(int64(len(ch.data)))
			continue
		}
		data := ch.data
		cut, reset := false, false
		if active && f.cuts() {
			n := int64(len(data))
			switch {
			case f.ResetProbability > 0 && rng.Float64() < f.ResetProbability && s.takeCut(dir):
				data, cut, reset = nil, true, true
			case f.ResetAfter > 0 && sent+n >= f.ResetAfter && s.takeCut(dir):
				data, cut, reset = data[:max(0, f.ResetAfter-sent)], true, true
			case f.CloseAfter > 0 && sent+n >= f.CloseAfter && s.takeCut(dir):
				data, cut = data[:max(0, f.CloseAfter-sent)], true
			}
		}
		if active && f.BytesPerSecond > 0 {
			now := time.Now()
			if nextFree.Before(now) {
				nextFree = now
			}
			if !c.sleepUntil(nextFree) {
				return
			}
			nextFree = nextFree.Add(time.Duration(float64(len(data)) / float64(f.BytesPerSecond) * float64(time.Second)))
		}
		if len(data) > 0 {
			if _, err := dst.Write(data); err != nil {
				c.cut(true, nil)
				return
			}
			n := int64(len(data))
			s.flowed[dir].Add(n)
			c.p.bytes[dir].Add(n)
			if active {
				sent += n
			}
		}
		if cut {
			if reset {
				c.cut(true, &c.p.resets)
			} else {
				c.cut(false, &c.p.closes)
			}
			return
		}
	}
	// The source ended: pass an orderly end on, or a reset as a reset.
	if err := <-readErr; err != nil && !errors.Is(err, io.EOF) {
		c.cut(true, nil)
		return
	}
	if c.dead.Load() {
		// Nothing more will cross a dead connection: end it whole.
		c.cut(false, nil)
		return
	}
	_ = dst.CloseWrite()
}

// read reads dir's source into q until it ends, and returns why it ended
// (io.EOF for an orderly end). Bytes that arrive while a blackhole is on
// are dropped here already.
func (c *conn) read(dir Direction, src *net.TCPConn, q chan<- chunk, rng *rand.Rand) error {
	defer close(q)
	for {
		buf := make([]byte, c.p.cfg.ChunkSize)
		n, err := src.Read(buf)
		if n > 0 {
			s := c.p.state.Load()
			f := s.faults[dir]
			active := s.active(dir)
			if c.dead.Load() || (active && f.Blackhole) {
				c.dead.Store(true)
				c.p.dropped.Add(int64(n))
			} else {
				due := time.Now()
				if active && f.Latency+f.Jitter > 0 {
					d := f.Latency
					if f.Jitter > 0 {
						d += time.Duration(rng.Int64N(int64(f.Jitter)))
					}
					due = due.Add(d)
				}
				select {
				case q <- chunk{data: buf[:n], due: due}:
				case <-c.done:
					return nil
				}
			}
		}
		if err != nil {
			return err
		}
	}
}

// sleepUntil waits until t, or reports false if the connection is cut
// first.
func (c *conn) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-c.done:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-c.done:
		return false
	}
}
