package queue

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// deadPID is a pid that runs no process.
func deadPID(t *testing.T) int {
	t.Helper()
	max := 32768
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			max = n
		}
	}
	for pid := max - 1; pid > max-100; pid-- {
		if !alive(pid) {
			return pid
		}
	}
	t.Fatal("no free pid")
	return 0
}

// Claim refuses an id that a live process on another machine, or another live
// pid of this machine, beats under; it takes over from an earlier run of this
// machine whose pid is gone, and from any process whose heartbeat is past the
// lease by Redis's clock.
func TestClaimJudgesWhoBeats(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	me := NewHeartbeat(HeartbeatParams{Redis: r, Lease: 30 * time.Second, Host: "host-a", BootID: "boot-a"})
	cases := []struct {
		name    string
		info    rdb.WorkerInfo
		age     time.Duration
		refused bool
	}{
		{"another host", rdb.WorkerInfo{Host: "host-b", BootID: "boot-b", PID: deadPID(t)}, time.Second, true},
		{"a clone: same host name, another boot id", rdb.WorkerInfo{Host: "host-a", BootID: "boot-clone", PID: deadPID(t)}, time.Second, true},
		{"another live pid here", rdb.WorkerInfo{Host: "host-a", BootID: "boot-a", PID: os.Getppid()}, time.Second, true},
		{"an earlier run here, pid gone", rdb.WorkerInfo{Host: "host-a", BootID: "boot-a", PID: deadPID(t)}, time.Second, false},
		{"an older worker here without a boot id, pid gone", rdb.WorkerInfo{Host: "host-a", PID: deadPID(t)}, time.Second, false},
		{"another host, past the lease", rdb.WorkerInfo{Host: "host-b", BootID: "boot-b", PID: 1}, 31 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc.Del(ctx, rdb.WorkersKey, rdb.WorkerInfoPrefix+"w1")
			other := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
			tc.info.Token = "tok-other"
			if _, err := other.Beat(ctx, tc.info, time.Minute); err != nil {
				t.Fatal(err)
			}
			// Aged on Redis's clock: the score moved back by age.
			now := rc.Time(ctx).Val()
			rc.ZAdd(ctx, rdb.WorkersKey, redisZ(now.Add(-tc.age), "w1"))
			err := me.Claim(ctx)
			if got := errors.Is(err, ErrIDInUse); got != tc.refused {
				t.Fatalf("Claim = %v, want refused %v", err, tc.refused)
			}
			if tc.refused && (!strings.Contains(err.Error(), "worker.id") || !strings.Contains(err.Error(), "WORKER_WORKER_ID")) {
				t.Fatalf("refusal %q does not say what to set", err)
			}
			_, info, _, _ := r.LastBeat(ctx, "w1")
			if want := map[bool]string{true: "tok-other", false: me.Token()}[tc.refused]; info.Token != want {
				t.Fatalf("token in the info %q, want %q", info.Token, want)
			}
		})
	}
}

// A beat that finds another process's token in the info logs an error: two
// processes beat under one id.
func TestHeartbeatSaysWhenAnotherProcessBeats(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	core, logs := observer.New(zap.InfoLevel)
	h := NewHeartbeat(HeartbeatParams{Redis: rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"}), Beat: 20 * time.Millisecond,
		Lease: time.Second, Log: zap.New(core)})
	if err := h.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	if u := h.Until(); time.Until(u) < 500*time.Millisecond || time.Until(u) > time.Second {
		t.Fatalf("Until in %s, want the lease less a third", time.Until(u))
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("heartbeat Run: %v", err)
		}
	}()
	rc.HSet(ctx, rdb.WorkerInfoPrefix+"w1", "token", "someone-else")
	testutil.Eventually(t, 3*time.Second, func() bool {
		return logs.FilterMessageSnippet("another process beats under this worker id").FilterLevelExact(zap.ErrorLevel).Len() > 0
	}, "an error about the other process")
}
