package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/trouble"
)

// Default timing of heartbeats: a worker beats every DefaultBeat and is taken for
// dead when its last beat is older than DefaultLease. With the recoverer's pass
// every DefaultRecoverEvery, a dead worker's jobs are back in the queue within
// about 40 s (the contract allows 60).
const (
	DefaultBeat         = 5 * time.Second
	DefaultLease        = 30 * time.Second
	DefaultRecoverEvery = 10 * time.Second
)

// ErrIDInUse says another live process holds this worker id.
var ErrIDInUse = errors.New("worker id in use")

// Heartbeat tells the other workers that this one is alive. It runs on its own
// goroutine, apart from the tasks, so a task of three hours never looks dead.
type Heartbeat struct {
	RDB         redis.UniversalClient
	WorkerID    string
	Concurrency int
	Beat        time.Duration // default DefaultBeat
	Lease       time.Duration // default DefaultLease
	Log         *zap.Logger
	Now         func() time.Time

	lastPass atomic.Int64 // Unix ns of the loop's last pass, answered or not
}

// Alive says whether the heartbeat loop still turns (whether or not Redis
// answers): the systemd watchdog pings only while it does.
func (h *Heartbeat) Alive() error {
	last := time.Unix(0, h.lastPass.Load())
	if age := time.Since(last); age > 3*h.Beat {
		return fmt.Errorf("heartbeat loop last ran %s ago", age.Round(time.Second))
	}
	return nil
}

func (h *Heartbeat) defaults() {
	if h.Beat <= 0 {
		h.Beat = DefaultBeat
	}
	if h.Lease <= 0 {
		h.Lease = DefaultLease
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.Log == nil {
		h.Log = zap.NewNop()
	}
}

// Claim registers this process under its worker id, refusing with ErrIDInUse when
// another process that is still alive beats under the same id: two processes
// sharing one processing list would give each other's jobs back. A process of
// this host whose pid no longer runs (a crash, then a restart) is taken over.
func (h *Heartbeat) Claim(ctx context.Context) error {
	h.defaults()
	score, err := h.RDB.ZScore(ctx, WorkersKey, h.WorkerID).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if err == nil && h.Now().Sub(time.UnixMilli(int64(score))) < h.Lease {
		info, err := h.RDB.HGetAll(ctx, WorkerInfoPrefix+h.WorkerID).Result()
		if err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		host, _ := os.Hostname()
		pid, _ := strconv.Atoi(info["pid"])
		sameHost := info["host"] == host
		if !sameHost || (pid != os.Getpid() && alive(pid)) {
			age := h.Now().Sub(time.UnixMilli(int64(score))).Round(time.Second)
			return fmt.Errorf("%w: %q beats from host %s pid %s (%s ago); give each process its own worker.id",
				ErrIDInUse, h.WorkerID, info["host"], info["pid"], age)
		}
	}
	return h.beat(ctx)
}

// Run beats until ctx ends. A failing beat is logged when the failure starts and
// when it ends, not at every beat.
func (h *Heartbeat) Run(ctx context.Context) error {
	h.defaults()
	h.lastPass.Store(time.Now().UnixNano())
	t := time.NewTicker(h.Beat)
	defer t.Stop()
	tr := trouble.New(h.Log, "heartbeat failing; Redis unreachable?", "heartbeat back")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, h.Beat)
		err := h.beat(bctx)
		cancel()
		h.lastPass.Store(time.Now().UnixNano())
		if ctx.Err() != nil {
			return nil
		}
		tr.Report(err)
	}
}

func (h *Heartbeat) beat(ctx context.Context) error {
	host, _ := os.Hostname()
	now := h.Now()
	_, err := h.RDB.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, WorkersKey, redis.Z{Score: float64(now.UnixMilli()), Member: h.WorkerID})
		key := WorkerInfoPrefix + h.WorkerID
		p.HSet(ctx, key, "host", host, "pid", os.Getpid(), "concurrency", h.Concurrency, "beat", now.UTC().Format(time.RFC3339))
		p.HSetNX(ctx, key, "started", now.UTC().Format(time.RFC3339))
		p.PExpire(ctx, key, 2*h.Lease)
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Leave removes this worker from the live ones after a clean stop, when its
// processing list is empty; a non-empty list stays for recovery.
func (h *Heartbeat) Leave(ctx context.Context) error {
	n, err := h.RDB.LLen(ctx, ProcessingKey(h.WorkerID)).Result()
	if err != nil {
		return fmt.Errorf("heartbeat leave: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("heartbeat leave: %d jobs still in %s", n, ProcessingKey(h.WorkerID))
	}
	_, err = h.RDB.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, WorkersKey, h.WorkerID)
		p.Del(ctx, WorkerInfoPrefix+h.WorkerID)
		return nil
	})
	return err
}

// alive reports whether a process with this pid runs on this host.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
