package pipeline

import (
	"testing"
	"time"
)

func TestBackoffDoublesWithinItsJitterAndNeverOverflows(t *testing.T) {
	cases := []struct {
		base     time.Duration
		attempt  int
		low, top time.Duration
	}{
		{30 * time.Second, 1, 24 * time.Second, 36 * time.Second},
		{30 * time.Second, 3, 96 * time.Second, 144 * time.Second},
		// 3 h doubled 21 times does not fit an int64 of nanoseconds.
		{3 * time.Hour, 22, maxBackoff - maxBackoff/5, maxBackoff + maxBackoff/5},
		{3 * time.Hour, 5, maxBackoff - maxBackoff/5, maxBackoff + maxBackoff/5},
	}
	for _, c := range cases {
		for range 50 {
			if d := backoff(c.base, c.attempt); d < c.low || d > c.top {
				t.Fatalf("backoff(%s, %d) = %s, want within [%s, %s]", c.base, c.attempt, d, c.low, c.top)
			}
		}
	}
}
