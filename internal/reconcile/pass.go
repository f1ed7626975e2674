package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/rdb"
)

// errEpochMoved says the epoch changed under a pass: another loss, or
// another worker's handling; the pass is tried again.
var errEpochMoved = errors.New("the epoch of Redis changed during the pass")

// pass is one round of the pass loop: a loss first, else the normal pass when
// it is due. It returns when it is due again.
func (r *Reconciler) pass(ctx context.Context) (time.Time, error) {
	st := r.state()
	now := r.Now()
	switch {
	case !st.intact:
		return now.Add(r.Check), nil // the watch has not read the epoch yet
	case st.loss != nil:
		return r.lossPass(ctx, st.loss, now)
	case now.Before(r.next):
		return r.next, nil
	}
	return r.normalPass(ctx, st.known, now)
}

// normalPass reconciles the rows unchanged for StaleAfter, when this worker
// takes the lock; it keeps the lock until the next pass is due, so that one
// worker in the cluster passes each Interval.
func (r *Reconciler) normalPass(ctx context.Context, known string, now time.Time) (time.Time, error) {
	held, err := r.Redis.HoldReconcile(ctx, r.token, lockTTL)
	if err != nil || !held {
		r.next = now.Add(r.Interval) // another worker passes meanwhile
		if err != nil {
			r.next = now.Add(min(r.Interval, time.Minute))
		}
		return r.next, err
	}
	v, err := r.Redis.Epoch(ctx)
	if err == nil && (v != known || strings.HasSuffix(v, handling)) {
		err = errEpochMoved
	}
	if err == nil {
		_, err = r.reconcile(ctx, v, r.StaleAfter, false)
	}
	if errors.Is(err, errEpochMoved) || errors.Is(err, rdb.ErrEpochChanged) {
		r.unhold(ctx, false)
		if errors.Is(err, rdb.ErrEpochChanged) {
			v, err = r.Redis.Epoch(ctx)
		}
		if err == nil {
			err = r.noteLoss(ctx, v)
		}
		return r.Now().Add(r.Check), err
	}
	r.unhold(ctx, err == nil)
	r.next = now.Add(r.Interval)
	if err != nil {
		r.next = now.Add(min(r.Interval, time.Minute))
	}
	return r.next, err
}

// lossPass handles a loss this worker saw, once Grace has passed since it
// last saw it: unless another worker has handled it already, or the epoch
// changed again (a further loss: the grace starts afresh), it takes the lock
// and recovers.
func (r *Reconciler) lossPass(ctx context.Context, l *loss, now time.Time) (time.Time, error) {
	if at := l.seen.Add(r.Grace); now.Before(at) {
		return at, nil
	}
	v, err := r.Redis.Epoch(ctx)
	if err != nil {
		return now.Add(r.Check), err
	}
	switch {
	case handledElsewhere(v, l.before):
		r.settle(v)
		r.Log.Info("loss of Redis data handled by another worker")
		r.next = now.Add(r.Interval)
		return r.next, nil
	case v != r.state().known || !strings.HasSuffix(v, handling):
		return now.Add(r.Check), r.noteLoss(ctx, v)
	}
	held, err := r.Redis.HoldReconcile(ctx, r.token, lockTTL)
	if err != nil || !held {
		return now.Add(r.Check), err
	}
	err = r.recover(ctx, v, l)
	r.unhold(ctx, err == nil)
	switch {
	case errors.Is(err, errEpochMoved) || errors.Is(err, rdb.ErrEpochChanged):
		return r.Now().Add(r.Check), nil // seen again by the next pass or the watch
	case err != nil:
		return r.Now().Add(r.Check), err
	}
	r.next = now.Add(r.Interval)
	return r.next, nil
}

// recover handles a loss under the lock, the epoch marked lost as target:
// every unfinished row without a job or lock has it pushed again whatever its
// age, the events of the tasks that ended since the epoch was last whole are
// sent again, and the epoch is written whole. A further loss meanwhile stops it
// (errEpochMoved, rdb.ErrEpochChanged).
func (r *Reconciler) recover(ctx context.Context, target string, l *loss) error {
	v, err := r.Redis.Epoch(ctx)
	if err != nil {
		return err
	}
	if v != target {
		return errEpochMoved
	}
	pushed, err := r.reconcile(ctx, target, 0, true)
	if err != nil {
		return err
	}
	from := l.since.Add(-r.Margin)
	resent, err := r.resend(ctx, r.Now().Sub(from))
	if err != nil {
		return err
	}
	if err := r.swap(ctx, target, generation(target)); err != nil {
		return err
	}
	r.settle(generation(target))
	r.Log.Warn("loss of Redis data handled", zap.Int("jobs_pushed", pushed), zap.Int("events_resent", resent),
		zap.Time("ended_since", from))
	return nil
}

// swap sets the epoch from old to next and keeps next as known.
func (r *Reconciler) swap(ctx context.Context, old, next string) error {
	ok, err := r.Redis.SwapEpoch(ctx, old, next)
	if err != nil {
		return err
	}
	if !ok {
		return errEpochMoved
	}
	r.mu.Lock()
	r.known = next
	r.mu.Unlock()
	return nil
}

// unhold ends this worker's hold of the lock after a pass: kept until the
// next pass is due after a pass that worked, freed after one that did not.
func (r *Reconciler) unhold(ctx context.Context, ok bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var err error
	if ok {
		_, err = r.Redis.HoldReconcile(ctx, r.token, r.Interval)
	} else {
		err = r.Redis.DropReconcile(ctx, r.token)
	}
	if err != nil {
		r.Log.Warn("reconcile lock not handed on; it expires by itself", zap.Error(err))
	}
}

// reason is the TASK_RECONCILED reason of a row in status.
func (r *Reconciler) reason(status string, lost bool) string {
	if lost {
		return fmt.Sprintf("Redis lost data; status %s and no job in Redis", status)
	}
	return fmt.Sprintf("status %s unchanged for %s and no job in Redis", status, r.StaleAfter)
}
