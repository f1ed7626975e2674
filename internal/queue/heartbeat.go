package queue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
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
	// Now gives the start time written in the info, for people; no decision
	// reads it. time.Now when nil.
	Now func() time.Time
	// Host and BootID name this machine in the info; os.Hostname and the
	// kernel's boot id (BootID) when empty.
	Host   string
	BootID string
	// Version names this build in the info; BuildVersion when empty.
	Version string
}

// Heartbeat tells the other workers that this one is alive. It runs on its own
// goroutine, apart from the tasks, so a task of three hours never looks dead.
//
// Each process holds a random token beside its worker id, written in its
// info with the host name, the pid and the machine's boot id: Claim refuses an
// id a live process elsewhere uses, and a beat that finds another token in the
// info says loudly that someone else beats under this id.
type Heartbeat struct {
	HeartbeatParams
	token    string
	pid      int
	started  string
	base     time.Time    // origin of answered, on the monotonic clock
	answered atomic.Int64 // ns after base at which the last beat Redis took was sent; -1 none
	lastPass atomic.Int64 // ns after base of the loop's last pass, answered or not
	lapsed   atomic.Bool  // the last beat found no info, or another process's
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
	if p.Host == "" {
		p.Host, _ = os.Hostname()
	}
	if p.BootID == "" {
		p.BootID = BootID()
	}
	if p.Version == "" {
		p.Version = BuildVersion()
	}
	h := &Heartbeat{HeartbeatParams: p, token: rand.Text(), pid: os.Getpid(),
		started: p.Now().UTC().Format(time.RFC3339), base: time.Now()}
	h.answered.Store(-1)
	return h
}

// BootID is the kernel's boot id (/proc/sys/kernel/random/boot_id): it tells
// machines apart that share a host name, as cloned virtual machines do. ""
// where there is none.
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// BuildVersion names the running build: the main module's version when it was
// built from a tagged module, else its VCS revision (12 characters, "+dirty"
// when the tree had changes), else "devel".
func BuildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "devel"
	}
	return rev[:min(len(rev), 12)] + dirty
}

// Token is this process's own token, written in its heartbeat's info.
func (h *Heartbeat) Token() string { return h.token }

// Alive says whether the heartbeat loop still turns (whether or not Redis
// answers): the systemd watchdog pings only while it does.
func (h *Heartbeat) Alive() error {
	last := h.base.Add(time.Duration(h.lastPass.Load()))
	if age := time.Since(last); age > 3*h.Beat {
		return fmt.Errorf("heartbeat loop last ran %s ago", age.Round(time.Second))
	}
	return nil
}

// Until is the time, on this process's monotonic clock, until which no other
// worker can take this one for dead and give its jobs back: the moment the
// last beat that Redis took was sent, plus the lease, less a third of it. The
// margin leaves a task's process tree time to be stopped (SIGTERM, then
// SIGKILL after process.DefaultKillGrace) before a recoverer could act. Zero
// before the first beat. Task locks are fenced by it (see Locks).
func (h *Heartbeat) Until() time.Time {
	n := h.answered.Load()
	if n < 0 {
		return time.Time{}
	}
	return h.base.Add(time.Duration(n) + h.Lease - h.Lease/3)
}

// Claim registers this process under its worker id, refusing with ErrIDInUse when
// another process that is still alive beats under the same id: two processes
// sharing one processing list would give each other's jobs back. Alive means
// a heartbeat within the lease, by Redis's clock, from another machine (another
// host name or boot id) or from a pid of this machine that runs and is not this
// one. An earlier run of this worker on this machine whose pid no longer runs
// (a crash, then a restart) is taken over at once.
func (h *Heartbeat) Claim(ctx context.Context) error {
	id := h.Redis.Worker()
	age, info, ok, err := h.Redis.LastBeat(ctx, id)
	if err != nil {
		return err
	}
	if ok && age < h.Lease && info.Token != h.token {
		if other := h.other(info); other != "" {
			return fmt.Errorf("%w: worker.id %q is used by a live process %s, whose last heartbeat was %s ago; "+
				"each process needs a worker.id of its own: set worker.id (WORKER_WORKER_ID) to differ per process",
				ErrIDInUse, id, other, age.Round(time.Millisecond))
		}
		h.Log.Info("taking over the worker id from an earlier run on this machine",
			zap.Int("earlier_pid", info.PID), zap.Duration("last_beat", age))
	}
	_, err = h.beat(ctx)
	return err
}

// other describes the process of info when it is another live one than an
// earlier run of this worker on this machine; "" when it is not.
func (h *Heartbeat) other(info rdb.WorkerInfo) string {
	switch {
	case info.Host != h.Host:
		return fmt.Sprintf("on host %s (this is %s), pid %d", info.Host, h.Host, info.PID)
	case info.BootID != "" && h.BootID != "" && info.BootID != h.BootID:
		return fmt.Sprintf("on another machine named %s (boot id %s; this one's is %s), pid %d", info.Host, info.BootID, h.BootID, info.PID)
	case info.PID != h.pid && alive(info.PID):
		return fmt.Sprintf("on this machine, pid %d", info.PID)
	}
	return ""
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
		prev, err := h.beat(ctx)
		h.lastPass.Store(int64(time.Since(h.base)))
		if err == nil {
			h.check(prev)
		}
		return time.Time{}, err
	})
}

// check looks at the token the info held before a beat: another process's
// means two processes beat under one id, and is logged as an error at every
// beat that finds it; none means this worker's heartbeat lapsed (its jobs may
// have been given back meanwhile).
func (h *Heartbeat) check(prev string) {
	switch {
	case prev == h.token:
		h.lapsed.Store(false)
	case prev != "":
		h.lapsed.Store(true)
		h.Log.Error("another process beats under this worker id: both use one processing list and may give each other's "+
			"jobs back; set worker.id (WORKER_WORKER_ID) to differ per process",
			zap.String("worker_id", h.Redis.Worker()), zap.String("token", h.token), zap.String("other_token", prev))
	case !h.lapsed.Swap(true):
		h.Log.Warn("this worker's heartbeat had lapsed: other workers may have given its jobs back",
			zap.String("worker_id", h.Redis.Worker()))
	}
}

// beat writes one heartbeat, and notes when it was sent if Redis took it.
func (h *Heartbeat) beat(ctx context.Context) (prev string, err error) {
	info := rdb.WorkerInfo{Host: h.Host, PID: h.pid, Concurrency: h.Concurrency, BootID: h.BootID, Token: h.token, Started: h.started, Version: h.Version}
	sent := time.Now()
	prev, err = h.Redis.Beat(ctx, info, 2*h.Lease)
	if err == nil {
		h.answered.Store(int64(sent.Sub(h.base)))
	}
	return prev, err
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
