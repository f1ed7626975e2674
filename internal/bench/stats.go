package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/testsvc"
)

// statsTimes fills the queue with jobs jobs and runs `workerctl stats` runs times
// (after one run to warm the page cache), returning each run's wall time, start
// to exit, in milliseconds.
func (b *Bench) statsTimes(ctx context.Context, jobs, runs int) ([]float64, error) {
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return nil, err
	}
	if err := fill(ctx, b.rdb, jobQueue, jobs); err != nil {
		return nil, err
	}
	defer b.rdb.FlushDB(context.WithoutCancel(ctx))
	spec := process.Spec{
		Path: b.opts.WorkerCtl,
		Args: []string{"stats"},
		Env: process.MinimalEnv(map[string]string{
			"WORKER_REDIS_ADDR":  testsvc.RedisAddr(),
			"WORKER_REDIS_DB":    strconv.Itoa(b.redisDB),
			"WORKER_REDIS_QUEUE": jobQueue,
		}),
	}
	var out []float64
	for i := range runs + 1 {
		var depth string
		spec.OnLine = func(s process.Stream, line []byte) {
			if s == process.Stdout && depth == "" {
				depth = string(line)
			}
		}
		start := time.Now()
		if _, err := process.Run(ctx, spec); err != nil {
			return nil, fmt.Errorf("workerctl stats: %w", err)
		}
		took := time.Since(start)
		if want := strconv.Itoa(jobs); !slices.Contains(strings.Fields(depth), want) {
			return nil, fmt.Errorf("workerctl stats: first line %q does not show %s jobs", depth, want)
		}
		if i > 0 {
			out = append(out, ms(took))
		}
	}
	return out, nil
}
