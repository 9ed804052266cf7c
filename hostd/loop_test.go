package hostd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestBackoff: exponential from the base, jittered within ±20 %, never above the cap, and reset by the caller.
func TestBackoff(t *testing.T) {
	r := &reporter{cfg: Config{BackoffBase: time.Second, BackoffMax: 10 * time.Second}}
	for i, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		got := r.backoff()
		lo, hi := time.Duration(float64(want*time.Second)*0.8), min(time.Duration(float64(want*time.Second)*1.2), 10*time.Second)
		assert.True(t, got >= lo && got <= hi, "failure %d: %s not in [%s, %s]", i+1, got, lo, hi)
	}
	for range 1000 {
		d := jitter(time.Minute)
		assert.True(t, d >= 48*time.Second && d < 72*time.Second, "%s", d)
	}
}
