package queue

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/rdb"
)

// DefaultOrphanCheck is how often a Consumer looks for jobs in its processing
// list that it does not hold (see Consumer.OrphanCheck).
const DefaultOrphanCheck = 15 * time.Second

// held is the multiset of jobs a Consumer holds: taken into its processing
// list and not yet settled.
type held struct {
	mu   sync.Mutex
	jobs map[string]int
}

func (h *held) add(payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.jobs == nil {
		h.jobs = map[string]int{}
	}
	h.jobs[payload]++
}

func (h *held) remove(payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.jobs[payload] <= 1 {
		delete(h.jobs, payload)
		return
	}
	h.jobs[payload]--
}

// extra returns the jobs of list beyond those held, with their counts.
func (h *held) extra(list []string) map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, p := range list {
		out[p]++
	}
	for p, n := range out {
		if n -= h.jobs[p]; n > 0 {
			out[p] = n
		} else {
			delete(out, p)
		}
	}
	return out
}

// reclaim gives back to the queue, every OrphanCheck, the jobs of this
// worker's processing list that the consumer does not hold, until ctx ends.
//
// Such a job was moved into the list by a BLMOVE or an AckFetch whose reply
// never came: Redis stopped after running the command and before answering
// (its AOF keeps the move), or go-redis tried a command again after the reply
// of a first run was lost. No recoverer takes it while this worker beats, and
// the worker does not know it has it. A job is given back only when two
// passes in a row found it so, since a fetch under way during one pass holds
// a job the consumer does not know yet.
func (c *Consumer) reclaim(ctx context.Context) {
	every := c.OrphanCheck
	t := time.NewTicker(every)
	defer t.Stop()
	suspects := map[string]int{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		suspects = c.reclaimPass(pctx, suspects)
		cancel()
	}
}

// reclaimPass gives back the jobs found not held now and by the pass before
// (suspects), and returns the jobs found not held only now.
func (c *Consumer) reclaimPass(ctx context.Context, suspects map[string]int) map[string]int {
	list, err := c.Redis.InHand(ctx)
	if err != nil {
		return suspects // Redis away: the next pass looks again
	}
	next := map[string]int{}
	for p, n := range c.held.extra(list) {
		for range min(n, suspects[p]) {
			if err := c.Redis.Requeue(ctx, p); err != nil {
				next[p]++
				continue
			}
			n--
			c.Log.Warn("job found in this worker's processing list that it was never handed (a reply lost to a Redis restart); given back to the queue",
				zap.String("processing", rdb.ProcessingKey(c.Redis.Worker())))
			if c.OnReclaimed != nil {
				c.OnReclaimed(p)
			}
		}
		next[p] += n
	}
	return next
}
