package backup

import (
	"context"
	"errors"
	"sync"
)

// objectCache keeps the most recently used decompressed objects of an
// Image. Concurrent readers of one object share a single fetch. It holds at
// most capacity finished objects; fetches in progress are not evicted, so
// in the worst case it also holds one object per concurrent reader.
type objectCache struct {
	capacity int

	mu      sync.Mutex
	clock   uint64
	entries map[*restoreObject]*cacheEntry
}

type cacheEntry struct {
	ready chan struct{} // closed when data or err is set
	data  []byte
	err   error
	used  uint64 // the clock at the last use, for LRU eviction
}

func newObjectCache(capacity int) *objectCache {
	return &objectCache{capacity: capacity, entries: map[*restoreObject]*cacheEntry{}}
}

// get returns ro's data, from the cache or by calling fetch once for all
// who wait. A failed fetch is not kept: the next get tries again (at once,
// for a waiter whose own context is live when the fetcher's was cancelled).
func (c *objectCache) get(ctx context.Context, ro *restoreObject, fetch func(context.Context, *restoreObject) ([]byte, error)) ([]byte, error) {
	for {
		data, waited, err := c.getOnce(ctx, ro, fetch)
		if waited && err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue
		}
		return data, err
	}
}

// getOnce is one try of get; waited reports that another caller fetched.
func (c *objectCache) getOnce(ctx context.Context, ro *restoreObject, fetch func(context.Context, *restoreObject) ([]byte, error)) (data []byte, waited bool, err error) {
	c.mu.Lock()
	c.clock++
	if e, ok := c.entries[ro]; ok {
		e.used = c.clock
		c.mu.Unlock()
		select {
		case <-e.ready:
			return e.data, true, e.err
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
	}
	e := &cacheEntry{ready: make(chan struct{}), used: c.clock}
	c.entries[ro] = e
	c.evictLocked()
	c.mu.Unlock()

	e.data, e.err = fetch(ctx, ro)
	if e.err != nil {
		c.mu.Lock()
		if c.entries[ro] == e {
			delete(c.entries, ro)
		}
		c.mu.Unlock()
	}
	close(e.ready)
	return e.data, false, e.err
}

// evictLocked drops the least recently used finished entries until at most
// capacity remain (or only fetches in progress do).
func (c *objectCache) evictLocked() {
	for len(c.entries) > c.capacity {
		var oldest *restoreObject
		var oldestUse uint64
		for ro, e := range c.entries {
			select {
			case <-e.ready:
			default:
				continue // in progress: its fetcher and waiters need it
			}
			if oldest == nil || e.used < oldestUse {
				oldest, oldestUse = ro, e.used
			}
		}
		if oldest == nil {
			return
		}
		delete(c.entries, oldest)
	}
}
