package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// until is a Liveness that says a fixed time.
type until time.Time

func (u until) Until() time.Time { return time.Time(u) }

// A lock whose renewals do not reach Redis is fenced (Lost closed, ErrFenced)
// at TTL less its margin after the last renewal, while its key still lives:
// before any other runner could take it.
func TestLockFencedWhenRedisIsOutOfReach(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	cut := redis.NewClient(&redis.Options{Addr: rc.Options().Addr, DB: rc.Options().DB, MaxRetries: -1})
	const ttl = 900 * time.Millisecond
	locks := NewLocks(LocksParams{Redis: rdb.New(cut, rdb.Options{Worker: "w1"}), TTL: ttl, Log: zaptest.NewLogger(t)})
	began := time.Now()
	lk, err := locks.Acquire(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.Confirm(ctx); err != nil {
		t.Fatalf("Confirm of a held lock: %v", err)
	}
	_ = cut.Close() // every later call fails: Redis is out of reach
	if err := lk.Confirm(ctx); err == nil {
		t.Fatal("Confirm without Redis succeeded")
	}
	select {
	case <-lk.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("lock not fenced")
	}
	took := time.Since(began)
	if !errors.Is(lk.Err(), ErrFenced) || took < ttl-ttl/6-50*time.Millisecond {
		t.Fatalf("lost after %s with %v, want ErrFenced after %s", took, lk.Err(), ttl-ttl/6)
	}
	if pttl := rc.PTTL(ctx, rdb.LockKey(7)).Val(); pttl <= 0 {
		t.Fatalf("the key had expired (PTTL %s) when the lock was fenced", pttl)
	}
	if err := lk.Confirm(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("Confirm of a fenced lock: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_ = lk.Release(rctx)
}

// A lock is fenced by the worker's heartbeat too, while Redis renews it: the
// recoverer of another worker frees the locks of a worker it takes for dead.
func TestLockFencedByTheHeartbeat(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	locks := NewLocks(LocksParams{Redis: rdb.New(rc, rdb.Options{Worker: "w1"}), TTL: time.Minute,
		Alive: until(time.Now().Add(300 * time.Millisecond)), Log: zaptest.NewLogger(t)})
	lk, err := locks.Acquire(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lk.Release(ctx) }()
	select {
	case <-lk.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("lock not fenced by the heartbeat")
	}
	if !errors.Is(lk.Err(), ErrFenced) {
		t.Fatalf("lost with %v, want ErrFenced", lk.Err())
	}
}

// Confirm renews a held lock, and says when another runner has it.
func TestLockConfirm(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	locks := NewLocks(LocksParams{Redis: rdb.New(rc, rdb.Options{Worker: "w1"}), TTL: time.Minute, Log: zaptest.NewLogger(t)})
	lk, err := locks.Acquire(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	rc.PExpire(ctx, rdb.LockKey(9), time.Second)
	if err := lk.Confirm(ctx); err != nil {
		t.Fatal(err)
	}
	if pttl := rc.PTTL(ctx, rdb.LockKey(9)).Val(); pttl < 50*time.Second {
		t.Fatalf("Confirm did not renew: PTTL %s", pttl)
	}
	rc.Set(ctx, rdb.LockKey(9), "w2/other", time.Minute)
	if err := lk.Confirm(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Confirm of a lock taken by another: %v", err)
	}
	select {
	case <-lk.Lost():
	default:
		t.Fatal("Lost not closed when Confirm found the lock taken")
	}
	if !errors.Is(lk.Err(), ErrLockLost) {
		t.Fatalf("Err %v", lk.Err())
	}
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
