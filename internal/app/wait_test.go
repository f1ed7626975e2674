package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func TestWaitForWaitsOnlyForUnreachable(t *testing.T) {
	log := zaptest.NewLogger(t)
	calls := 0
	err := waitFor(context.Background(), log, "svc", func(context.Context) error {
		calls++
		if calls < 3 {
			return fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("waitFor = %v after %d calls; want success on the third", err, calls)
	}

	calls = 0
	err = waitFor(context.Background(), log, "svc", func(context.Context) error {
		calls++
		return errors.New("Error 1045: Access denied for user")
	})
	if err == nil || calls != 1 || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("a refusal waited: %v after %d calls", err, calls)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = waitFor(ctx, log, "svc", func(context.Context) error { return syscall.ECONNREFUSED })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitFor ignored its context: %v", err)
	}
}

// A worker whose MySQL password is wrong stops at start-up with the reason, at once.
func TestStartStopsOnBadCredentials(t *testing.T) {
	e := newEnv(t)
	e.settings["WORKER_MYSQL_DSN"] = strings.Replace(e.dsn, "root@", "root:wrongpw@", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := New(ctx, e.config(), zaptest.NewLogger(t))
	if err == nil {
		_ = a.Close() // the test has failed already
		t.Fatal("started with a wrong password")
	}
	if ctx.Err() != nil || !strings.Contains(err.Error(), "Access denied") || strings.Contains(err.Error(), "wrongpw") {
		t.Fatalf("err = %v", err)
	}
}

// A stop that comes while the worker is starting is a clean stop, not a failure.
func TestStopDuringStartUp(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, e.config(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close() }()
	cancel() // SIGTERM before Run claimed the id and recovered its jobs
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run after a stop during start-up = %v, want nil", err)
	}
}
