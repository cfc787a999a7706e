package backup

import (
	"context"
	"sync/atomic"
	"time"
)

// Progress reports how far an operation has come. Rates are averages since
// the start.
type Progress struct {
	// Op is "backup", "restore" or "verify".
	Op string
	// BackupID is the backup being made, restored or verified.
	BackupID string
	// BytesDone counts source bytes read (backup) or destination bytes
	// restored or checked (restore, verify); BytesTotal is the whole, or -1
	// when unknown.
	BytesDone, BytesTotal int64
	// BytesStored counts bytes written to (backup) or read from (restore,
	// verify) the target, after compression.
	BytesStored int64
	// BytesChanged counts uncompressed bytes of the objects stored (backup)
	// or read (restore, verify).
	BytesChanged int64
	// Objects counts the data objects stored or read.
	Objects int
	// Elapsed is the time since the operation started.
	Elapsed time.Duration
	// Rate is BytesDone per second.
	Rate float64
	// Percent is BytesDone as a share of BytesTotal (0 when unknown).
	Percent float64
	// ETA is the estimated time left (0 when unknown).
	ETA time.Duration
	// Done is true on the last report of an operation that succeeded.
	Done bool
}

// ProgressFunc receives progress reports. It is called from one goroutine at
// a time and must return quickly.
type ProgressFunc func(Progress)

// meter counts an operation's progress and reports it periodically.
type meter struct {
	op, id                       string
	total                        int64
	done, stored, changed, count atomic.Int64
	start                        time.Time
	fn                           ProgressFunc
}

func newMeter(op, id string, total int64, fn ProgressFunc) *meter {
	return &meter{op: op, id: id, total: total, start: time.Now(), fn: fn}
}

// snapshot computes a report from the counters.
func (m *meter) snapshot() Progress {
	p := Progress{
		Op: m.op, BackupID: m.id,
		BytesDone: m.done.Load(), BytesTotal: m.total,
		BytesStored: m.stored.Load(), BytesChanged: m.changed.Load(),
		Objects: int(m.count.Load()), Elapsed: time.Since(m.start),
	}
	if secs := p.Elapsed.Seconds(); secs > 0 {
		p.Rate = float64(p.BytesDone) / secs
	}
	if p.BytesTotal > 0 {
		p.Percent = 100 * float64(p.BytesDone) / float64(p.BytesTotal)
		if p.Rate > 0 && p.BytesDone < p.BytesTotal {
			p.ETA = time.Duration(float64(p.BytesTotal-p.BytesDone) / p.Rate * float64(time.Second))
		}
	} else if p.BytesTotal < 0 {
		p.BytesTotal = -1
	}
	return p
}

// run reports every interval until ctx ends; it returns a function that
// stops reporting and sends the final report (done marks success).
func (m *meter) run(ctx context.Context, interval time.Duration) (stop func(done bool)) {
	if m.fn == nil {
		return func(bool) {}
	}
	if interval <= 0 {
		interval = time.Second
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				m.fn(m.snapshot())
			case <-quit:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func(done bool) {
		close(quit)
		<-finished
		p := m.snapshot()
		p.Done = done
		if done && p.BytesTotal >= 0 {
			p.Percent = 100
			p.ETA = 0
		}
		m.fn(p)
	}
}
