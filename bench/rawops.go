package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/chunkback/chunkback/internal/targeturl"
	"github.com/chunkback/chunkback/target"
)

// Latency gives percentiles of per-object latencies, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// RawPrefix is the prefix of the objects a put stores: RawPrefix + BackupID
// + "/".
const RawPrefix = "chunkbench/"

// rawName names object i of a put or get.
func rawName(id string, i int) string { return fmt.Sprintf("%s%s/obj-%06d", RawPrefix, id, i) }

// runRaw runs a put or get of s.Objects objects of s.ObjectSize bytes on t,
// with s.Workers goroutines taking objects in turn. A put stores object i as
// the bytes of s.Source from (i x ObjectSize) mod the source's size (wrapping
// round), read into the worker's buffer before the Put is timed; a get reads
// each object whole and discards it. Seconds is the wall time of the whole;
// Latency the percentiles of the single Puts or Gets (a Get timed until its
// last byte is read).
func runRaw(ctx context.Context, t target.Target, s Spec) (*Outcome, error) {
	var src *os.File
	var srcSize int64
	if s.Kind == KindPut {
		f, err := os.Open(s.Source)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if st.Size() == 0 {
			return nil, fmt.Errorf("bench: put: source %s is empty", s.Source)
		}
		src, srcSize = f, st.Size()
	}
	lat := make([]time.Duration, s.Objects)
	next := make(chan int)
	errs := make(chan error, s.Workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for range s.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, s.ObjectSize)
			for i := range next {
				d, err := rawOne(ctx, t, s, i, src, srcSize, buf)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				lat[i] = d
			}
		}()
	}
feed:
	for i := range s.Objects {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	secs := time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := int64(s.Objects) * s.ObjectSize
	return &Outcome{Seconds: secs, Bytes: n, Objects: s.Objects, BytesStored: n, Latency: percentiles(lat)}, nil
}

// rawOne puts or gets object i, and returns the time the target took.
func rawOne(ctx context.Context, t target.Target, s Spec, i int, src *os.File, srcSize int64, buf []byte) (time.Duration, error) {
	name := rawName(s.BackupID, i)
	if s.Kind == KindPut {
		for done := 0; done < len(buf); {
			at := (int64(i)*s.ObjectSize + int64(done)) % srcSize
			n, err := src.ReadAt(buf[done:min(len(buf), done+int(srcSize-at))], at)
			if err != nil && err != io.EOF {
				return 0, err
			}
			done += n
		}
		start := time.Now()
		if err := t.Put(ctx, name, bytes.NewReader(buf), int64(len(buf)), target.PutOptions{}); err != nil {
			return 0, fmt.Errorf("bench: put %s: %w", name, err)
		}
		return time.Since(start), nil
	}
	start := time.Now()
	r, err := t.Get(ctx, name, 0, -1)
	if err != nil {
		return 0, fmt.Errorf("bench: get %s: %w", name, err)
	}
	var got int64
	for {
		n, err := r.Read(buf)
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			r.Close()
			return 0, fmt.Errorf("bench: get %s: %w", name, err)
		}
	}
	if err := r.Close(); err != nil {
		return 0, err
	}
	if got != s.ObjectSize {
		return 0, fmt.Errorf("bench: get %s: read %d bytes, want %d", name, got, s.ObjectSize)
	}
	return time.Since(start), nil
}

// percentiles returns the 50th, 90th and 99th percentiles of ds (nearest
// rank), in milliseconds.
func percentiles(ds []time.Duration) *Latency {
	if len(ds) == 0 {
		return nil
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 {
		k := int(math.Ceil(p*float64(len(s)))) - 1
		return float64(s[max(0, min(k, len(s)-1))]) / float64(time.Millisecond)
	}
	return &Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99)}
}

// deleteRaw deletes the objects a put stored under id, in this process.
func deleteRaw(ctx context.Context, url, id string) error {
	t, err := openTarget(ctx, url)
	if err != nil {
		return err
	}
	defer t.Close()
	var names []string
	if err := t.List(ctx, RawPrefix+id+"/", func(i target.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return err
	}
	for _, n := range names {
		if err := t.Delete(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// openTarget opens a --target URL as Run does: created if missing, without
// fsync on directories.
func openTarget(ctx context.Context, url string) (*targeturl.Opened, error) {
	return targeturl.Open(ctx, url, targeturl.Options{Create: true, NoSync: true})
}
