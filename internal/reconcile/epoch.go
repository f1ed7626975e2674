package reconcile

import (
	"context"
	"crypto/rand"
	"strings"

	"go.uber.org/zap"
)

// handling ends the epoch while a loss is known and not yet handled: the
// first worker to see the epoch missing writes "<generation>/handling" at
// once, so that a further loss (another flush) shows as one, and the pass that
// handles the loss writes "<generation>" when it is done. A worker that finds
// another generation without the mark knows that another worker handled the
// loss.
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
	return r.noteLoss(ctx, v)
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

// noteLoss records a sighting of a loss of data, the epoch reading v (""
// when missing): what the loss took from this worker is restored (OnLoss), the
// epoch is marked as lost unless it is, and the grace before jobs are pushed
// again starts afresh, as the other workers must see this loss too.
func (r *Reconciler) noteLoss(ctx context.Context, v string) error {
	r.mu.Lock()
	first := r.loss == nil
	if first {
		r.loss = &loss{since: r.intact, before: r.known}
	}
	r.loss.seen = r.Now()
	since, before := r.loss.since, r.loss.before
	r.mu.Unlock()
	if first {
		r.Log.Error("Redis lost data: its epoch is missing or changed; rebuilding its jobs and events from the database",
			zap.Bool("epoch_missing", v == ""), zap.Time("intact_at", since))
	}
	if r.OnLoss != nil {
		r.OnLoss(ctx)
	}
	err := r.mark(ctx, v, before)
	r.Wake()
	return err
}

// mark writes the epoch as lost ("<new generation>/handling") unless it is
// marked so already or says that the loss was handled, and keeps the epoch it
// reads then.
func (r *Reconciler) mark(ctx context.Context, v, before string) error {
	if !strings.HasSuffix(v, handling) && !handledElsewhere(v, before) {
		if _, err := r.Redis.SwapEpoch(ctx, v, newGeneration()+handling); err != nil {
			return err
		}
		var err error
		if v, err = r.Redis.Epoch(ctx); err != nil {
			return err
		}
	}
	if v != "" {
		r.mu.Lock()
		r.known = v
		r.mu.Unlock()
	}
	return nil
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
