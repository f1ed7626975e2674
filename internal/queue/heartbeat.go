package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/loop"
	"github.com/coursedl/worker/internal/rdb"
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

// HeartbeatParams configure a Heartbeat.
type HeartbeatParams struct {
	Redis       *rdb.Client // its Worker is the id that beats
	Concurrency int
	Beat        time.Duration // default DefaultBeat
	Lease       time.Duration // default DefaultLease
	Log         *zap.Logger
	Now         func() time.Time
}

// Heartbeat tells the other workers that this one is alive. It runs on its own
// goroutine, apart from the tasks, so a task of three hours never looks dead.
type Heartbeat struct {
	HeartbeatParams
	host     string
	lastPass atomic.Int64 // Unix ns of the loop's last pass, answered or not
}

// NewHeartbeat returns a Heartbeat with the defaults applied.
func NewHeartbeat(p HeartbeatParams) *Heartbeat {
	if p.Beat <= 0 {
		p.Beat = DefaultBeat
	}
	if p.Lease <= 0 {
		p.Lease = DefaultLease
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = zap.NewNop()
	}
	host, _ := os.Hostname()
	h := &Heartbeat{HeartbeatParams: p, host: host}
	h.lastPass.Store(time.Now().UnixNano())
	return h
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

// Claim registers this process under its worker id, refusing with ErrIDInUse when
// another process that is still alive beats under the same id: two processes
// sharing one processing list would give each other's jobs back. A process of
// this host whose pid no longer runs (a crash, then a restart) is taken over.
func (h *Heartbeat) Claim(ctx context.Context) error {
	id := h.Redis.Worker()
	last, info, ok, err := h.Redis.LastBeat(ctx, id)
	if err != nil {
		return err
	}
	if age := h.Now().Sub(last); ok && age < h.Lease {
		sameHost := info.Host == h.host
		if !sameHost || (info.PID != os.Getpid() && alive(info.PID)) {
			return fmt.Errorf("%w: %q beats from host %s pid %d (%s ago); give each process its own worker.id",
				ErrIDInUse, id, info.Host, info.PID, age.Round(time.Second))
		}
	}
	return h.beat(ctx)
}

// Run beats every Beat until ctx ends. A failing beat is logged when the
// failure starts and when it ends, not at every beat.
func (h *Heartbeat) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Params{
		Every:   h.Beat,
		Timeout: h.Beat,
		Log:     h.Log,
		Failing: "heartbeat failing; Redis unreachable?",
		Back:    "heartbeat back",
	}, func(ctx context.Context) (time.Time, error) {
		err := h.beat(ctx)
		h.lastPass.Store(time.Now().UnixNano())
		return time.Time{}, err
	})
}

func (h *Heartbeat) beat(ctx context.Context) error {
	info := rdb.WorkerInfo{Host: h.host, PID: os.Getpid(), Concurrency: h.Concurrency}
	return h.Redis.Beat(ctx, info, h.Now(), 2*h.Lease)
}

// Leave removes this worker from the live ones after a clean stop, when its
// processing list is empty; a non-empty list stays for recovery.
func (h *Heartbeat) Leave(ctx context.Context) error { return h.Redis.Leave(ctx) }

// alive reports whether a process with this pid runs on this host.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
