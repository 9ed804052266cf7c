package fleetsim

import (
	"sort"
	"sync"
	"time"
)

// Latency records the durations of one kind of call (heartbeats, API GETs) and the calls that failed. Every
// sample is kept: a 10,000-node run records a few hundred thousand, a few MiB, and exact percentiles are worth it.
type Latency struct {
	mu      sync.Mutex
	samples []time.Duration
	errors  int
}

// Add records one successful call.
func (l *Latency) Add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// Fail records one failed call (an error answer or no answer).
func (l *Latency) Fail() {
	l.mu.Lock()
	l.errors++
	l.mu.Unlock()
}

// Reset forgets everything recorded so far (the start of a measurement window).
func (l *Latency) Reset() {
	l.mu.Lock()
	l.samples, l.errors = nil, 0
	l.mu.Unlock()
}

// Summary is what a Latency recorded: counts and percentiles (nearest rank).
type Summary struct {
	Count, Errors int
	P50, P99, Max time.Duration
}

// Summary computes the percentiles of the samples recorded so far.
func (l *Latency) Summary() Summary {
	l.mu.Lock()
	s := append([]time.Duration(nil), l.samples...)
	errs := l.errors
	l.mu.Unlock()
	return Summarize(s, errs)
}

// Summarize computes the percentiles of samples (it sorts them in place).
func Summarize(samples []time.Duration, errs int) Summary {
	out := Summary{Count: len(samples), Errors: errs}
	if len(samples) == 0 {
		return out
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	out.P50, out.P99, out.Max = Percentile(samples, 50), Percentile(samples, 99), samples[len(samples)-1]
	return out
}

// Percentile returns the nearest-rank p-th percentile of sorted (ascending) samples; 0 when there are none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// Nearest rank: the smallest sample with at least p % of the samples at or below it.
	rank := int(p/100*float64(len(sorted)) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}
