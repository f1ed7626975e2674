package queue

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// The fetch loop backs off up to a second while Redis fails over, and up to
// fetchBackoffMax on other errors.
func TestNextFetchBackoff(t *testing.T) {
	for _, c := range []struct {
		name string
		b    time.Duration
		err  error
		want time.Duration
	}{
		{"connection reset", 250 * time.Millisecond, fmt.Errorf("fetch: %w", io.EOF), 500 * time.Millisecond},
		{"failover capped", 800 * time.Millisecond, fmt.Errorf("fetch: %w", io.ErrUnexpectedEOF), failoverFetchBackoff},
		{"refused", 8 * time.Second, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), failoverFetchBackoff},
		{"other", 8 * time.Second, errors.New("NOPERM this user has no permissions"), fetchBackoffMax},
		{"other doubles", time.Second, errors.New("WRONGTYPE"), 2 * time.Second},
	} {
		if got := nextFetchBackoff(c.b, c.err); got != c.want {
			t.Errorf("%s: nextFetchBackoff(%s) = %s, want %s", c.name, c.b, got, c.want)
		}
	}
}
