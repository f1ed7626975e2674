package reconcile

import (
	"context"
	"crypto/rand"
	"strings"

	"go.uber.org/zap"
)

// handling ends the epoch while a loss is being handled: "<generation>" is
// written as "<generation>/handling" before the pass pushes and resends, and
// without the suffix once it is done. A worker that finds the suffix left
// (its writer died) handles the loss itself; one that finds a new generation
// without it knows another worker handled it.
const handling = "/handling"

// generation is the epoch without the handling mark.
func generation(epoch string) string { return strings.TrimSuffix(epoch, handling) }

func newGeneration() string { return rand.Text() }

// watch reads the epoch once: the first time it writes one unless Redis
// holds one; after that, missing or of another generation, it is a loss.
func (r *Reconciler) watch(ctx context.Context) error {
	if r.state().known == "" {
		return r.init(ctx)
	}
	v, err := r.Redis.Epoch(ctx)
	if err != nil {
		return err
	}
	if v != "" && generation(v) == generation(r.state().known) {
		r.mu.Lock()
		r.known = v
		if r.loss == nil {
			r.intact = r.Now()
		}
		r.mu.Unlock()
		return nil
	}
	r.noteLoss(ctx, v)
	return nil
}

// init writes a fresh epoch unless Redis holds one, and keeps what it holds.
func (r *Reconciler) init(ctx context.Context) error {
	v, fresh, err := r.Redis.InitEpoch(ctx, newGeneration())
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.known, r.intact = v, r.Now()
	r.mu.Unlock()
	if fresh {
		r.Log.Info("epoch of Redis written")
	}
	r.Wake()
	return nil
}

// snapshot is what a pass reads of the shared state.
type snapshot struct {
	known  string
	intact bool // the epoch has been read
	loss   *loss
}

func (r *Reconciler) state() snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	var l *loss
	if r.loss != nil {
		c := *r.loss
		l = &c
	}
	return snapshot{known: r.known, intact: r.known != "", loss: l}
}

// noteLoss records that Redis lost data, as the epoch now reads v ("" when
// missing), restores what the loss took from this worker and asks for a pass.
func (r *Reconciler) noteLoss(ctx context.Context, v string) {
	r.mu.Lock()
	first := r.loss == nil
	if first {
		r.loss = &loss{since: r.intact, seen: r.Now(), before: r.known}
	}
	if v != "" {
		r.known = v
	}
	since := r.loss.since
	r.mu.Unlock()
	if first {
		r.Log.Error("Redis lost data: its epoch is missing or changed; rebuilding its jobs and events from the database",
			zap.Bool("epoch_missing", v == ""), zap.Time("intact_at", since))
	}
	if r.OnLoss != nil {
		r.OnLoss(ctx)
	}
	r.Wake()
}

// handledElsewhere reports whether epoch v says that another worker handled
// the loss of the epoch before: a new generation, written whole.
func handledElsewhere(v, before string) bool {
	return v != "" && !strings.HasSuffix(v, handling) && generation(v) != generation(before)
}

// settle ends the loss: v is the epoch now whole.
func (r *Reconciler) settle(v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known, r.loss, r.intact = v, nil, r.Now()
}
