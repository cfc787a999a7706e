package bench

import (
	"runtime/metrics"
	"sync"
	"time"
)

// heapMetrics are the Go runtime's in-use heap spans and stacks:
// runtime.MemStats HeapInuse + StackInuse, read without stopping the world.
var heapMetrics = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/stacks:bytes",
}

// HeapInuse returns the Go heap and stack memory in use, in bytes: what
// runtime.MemStats reports as HeapInuse + StackInuse.
func HeapInuse() uint64 {
	samples := make([]metrics.Sample, len(heapMetrics))
	return readHeap(samples)
}

func readHeap(samples []metrics.Sample) uint64 {
	for i, name := range heapMetrics {
		samples[i].Name = name
	}
	metrics.Read(samples)
	var total uint64
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			total += s.Value.Uint64()
		}
	}
	return total
}

// SampleHeap samples HeapInuse every interval (5 ms when 0) until the
// returned function is called; that function returns the largest value seen.
// It measures the peak memory of an operation run in this process (the Go
// benchmarks use it); RunChild measures a child's whole RSS instead.
func SampleHeap(interval time.Duration) (stop func() uint64) {
	if interval <= 0 {
		interval = 5 * time.Millisecond
	}
	samples := make([]metrics.Sample, len(heapMetrics))
	peak := readHeap(samples)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				peak = max(peak, readHeap(samples))
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() uint64 {
		once.Do(func() {
			close(quit)
			wg.Wait()
			peak = max(peak, readHeap(samples))
		})
		return peak
	}
}
