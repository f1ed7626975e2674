package console

import (
	"sync"
	"time"
)

// The login limiter counts failed logins per client address and per user
// name. The first freeFailures-1 failures of a key cost nothing more than the
// slow answer of each; from then on each failure closes the key for a delay
// that doubles, from firstDelay up to maxDelay, during which a login for it is
// refused with 429 before its password is looked at: after five failures in
// a row, the sixth try waits. A key is forgotten
// forgetAfter after its last failure, and a successful login forgets its
// user's and its address's failures.
const (
	freeFailures = 5
	firstDelay   = 2 * time.Second
	maxDelay     = 15 * time.Minute
	forgetAfter  = time.Hour
	// maxLimited bounds the keys remembered: past it, a tenth are forgotten,
	// those not closed first (an attacker spraying addresses cannot grow the
	// map without end).
	maxLimited = 100_000
)

// limiter is the login limiter.
type limiter struct {
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*failures
}

// failures is one key's record.
type failures struct {
	n     int
	last  time.Time
	until time.Time // refused before this
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, keys: map[string]*failures{}}
}

// wait returns how long the keys are still closed: zero when a login may be
// tried.
func (l *limiter) wait(keys ...string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		if f := l.keys[k]; f != nil {
			longest = max(longest, f.until.Sub(now))
		}
	}
	return longest
}

// failed counts a failed login against each key.
func (l *limiter) failed(keys ...string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		f := l.keys[k]
		if f == nil {
			if len(l.keys) >= maxLimited {
				l.makeRoomLocked(now)
			}
			f = &failures{}
			l.keys[k] = f
		}
		f.n++
		f.last = now
		if over := f.n - freeFailures + 1; over > 0 {
			d := firstDelay
			for i := 1; i < over && d < maxDelay; i++ {
				d *= 2
			}
			f.until = now.Add(min(d, maxDelay))
		}
	}
}

// succeeded forgets the keys' failures.
func (l *limiter) succeeded(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.keys, k)
	}
}

// prune forgets the keys whose last failure is older than forgetAfter.
func (l *limiter) prune() {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.keys {
		if now.Sub(f.last) > forgetAfter && !now.Before(f.until) {
			delete(l.keys, k)
		}
	}
}

// makeRoomLocked forgets a tenth of the keys: those not closed now first
// (the map's order picks which), then any.
func (l *limiter) makeRoomLocked(now time.Time) {
	n := len(l.keys) / 10
	for _, closedToo := range []bool{false, true} {
		for k, f := range l.keys {
			if n <= 0 {
				return
			}
			if closedToo || !now.Before(f.until) {
				delete(l.keys, k)
				n--
			}
		}
	}
}
