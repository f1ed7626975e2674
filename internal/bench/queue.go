package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/coursedl/worker/internal/queue"
	"github.com/coursedl/worker/internal/rdb"
)

// Queue figure: the worker's real queue code (queue.Consumer with its fetch, ack
// and settle, and the heartbeat, recoverer and scheduler beside it, as app runs
// them) against a plain BRPOP loop, both with a no-op handler and 16 consumers,
// in interleaved rounds on the same Redis client settings.
const (
	queueConsumers = 16
	queueKey       = "bench:queue"
)

// queueRounds runs rounds pairs of (naive, real) passes of jobs jobs each and
// returns the jobs/s of each pass.
func (b *Bench) queueRounds(ctx context.Context, rounds, jobs int) (naive, real []float64, err error) {
	rdb := b.redisClient()
	defer func() { _ = rdb.Close() }()
	for i := range rounds {
		n, err := b.queuePass(ctx, rdb, jobs, naiveLoop)
		if err != nil {
			return nil, nil, fmt.Errorf("naive loop: %w", err)
		}
		r, err := b.queuePass(ctx, rdb, jobs, b.realConsumer)
		if err != nil {
			return nil, nil, fmt.Errorf("worker's queue: %w", err)
		}
		naive, real = append(naive, n), append(real, r)
		b.progressf("queue round %d/%d: naive %.0f jobs/s, worker %.0f jobs/s (%.2f)", i+1, rounds, n, r, r/n)
	}
	return naive, real, nil
}

// consume takes every job of queueKey with a no-op handler, calling handled once
// per job, until ctx ends; it returns when its goroutines have stopped.
type consume func(ctx context.Context, rdb *redis.Client, handled func()) error

// queuePass fills the queue with jobs jobs, then times consume taking them all.
func (b *Bench) queuePass(ctx context.Context, rdb *redis.Client, jobs int, run consume) (float64, error) {
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return 0, err
	}
	if err := fill(ctx, rdb, queueKey, jobs); err != nil {
		return 0, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var count atomic.Int64
	all := make(chan struct{})
	handled := func() {
		if count.Add(1) == int64(jobs) {
			close(all)
		}
	}
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- run(runCtx, rdb, handled) }()
	select {
	case <-all:
	case err := <-errc:
		return 0, fmt.Errorf("stopped after %d of %d jobs: %v", count.Load(), jobs, err) //nolint:errorlint // err may be nil, which %w would print as %!w(<nil>)
	case <-time.After(2 * time.Minute):
		stop()
		<-errc //nolint:errcheck // waits for the consumers to stop; the timeout is the error to report
		return 0, fmt.Errorf("only %d of %d jobs taken in 2 minutes", count.Load(), jobs)
	}
	elapsed := time.Since(start)
	stop()
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(jobs) / elapsed.Seconds(), nil
}

// naiveLoop is the floor: BRPOP and nothing else, no crash safety.
func naiveLoop(ctx context.Context, rdb *redis.Client, handled func()) error {
	var wg sync.WaitGroup
	for range queueConsumers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := rdb.BRPop(ctx, time.Second, queueKey).Result(); err == nil {
					handled()
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// realConsumer runs the worker's queue code as app.Run does, with a handler that
// acknowledges every job at once.
func (b *Bench) realConsumer(ctx context.Context, client *redis.Client, handled func()) error {
	const id = "bench-queue"
	log := zap.NewNop()
	door := rdb.New(client, rdb.Options{Queue: queueKey, Worker: id})
	hb := queue.NewHeartbeat(queue.HeartbeatParams{Redis: door, Concurrency: queueConsumers, Log: log})
	if err := hb.Claim(ctx); err != nil {
		return err
	}
	helpers, stopHelpers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHelpers()
	g, gctx := errgroup.WithContext(helpers)
	g.Go(func() error { return hb.Run(gctx) })
	g.Go(func() error { return queue.NewRecoverer(queue.RecovererParams{Redis: door, Log: log}).Run(gctx) })
	g.Go(func() error { return queue.NewScheduler(queue.SchedulerParams{Redis: door, Log: log}).Run(gctx) })
	g.Go(func() error {
		defer stopHelpers()
		return queue.NewConsumer(queue.ConsumerParams{
			Redis:         door,
			Handler:       ackAll(handled),
			Concurrency:   queueConsumers,
			ShutdownGrace: 5 * time.Second,
			Log:           log,
		}).Run(ctx)
	})
	return g.Wait()
}

// ackAll is a no-op handler.
type ackAll func()

func (h ackAll) Handle(context.Context, string) queue.Result {
	h()
	return queue.Result{Outcome: queue.Ack}
}

// fill LPUSHes jobs distinct jobs shaped as the web app's, in batches.
func fill(ctx context.Context, rdb *redis.Client, key string, jobs int) error {
	const batch = 2000
	args := make([]any, 0, batch)
	for i := 1; i <= jobs; i++ {
		args = append(args, jobPayload(int64(i), "https://www.udemy.com/course/go-in-depth/"))
		if len(args) == batch || i == jobs {
			if err := rdb.LPush(ctx, key, args...).Err(); err != nil {
				return fmt.Errorf("fill %s: %w", key, err)
			}
			args = args[:0]
		}
	}
	return nil
}

// jobPayload is a job as contract section 1 shows it.
func jobPayload(taskID int64, url string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"taskId": %d, "email": "buyer@example.com", "courseUrl": %q, "orderId": %d}`, taskID, url, taskID)
	return b.String()
}
