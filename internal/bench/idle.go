package bench

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coursedl/worker/internal/rdb"
)

// readyTime starts a worker and returns the time from just before its start to
// the first 200 answer of /readyz, polled every 2 ms. It returns errNoReadyz when
// the worker is up (its heartbeat is in Redis) but nothing answers /readyz for 2 s.
func (b *Bench) readyTime(ctx context.Context, w *workerProc) (time.Duration, error) {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	var upAt time.Time
	for {
		status, err := w.readyz(ctx, c)
		if err == nil && status == http.StatusOK {
			return time.Since(w.started), nil
		}
		if upAt.IsZero() && b.rdb.ZScore(ctx, rdb.WorkersKey, w.id).Err() == nil {
			upAt = time.Now()
		}
		if !upAt.IsZero() && err != nil && time.Since(upAt) > 2*time.Second {
			return 0, errNoReadyz
		}
		if time.Since(w.started) > time.Minute {
			return 0, errors.New("/readyz not 200 within a minute of the start")
		}
		select {
		case <-w.done:
			return 0, errors.New("worker exited at start-up")
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// errNoReadyz says the worker binary serves no /readyz.
var errNoReadyz = errors.New("the worker serves no /readyz")

// idleUse watches an idle worker for d: its CPU use in percent of one core and
// its highest RSS in KiB.
func idleUse(ctx context.Context, pid int, d time.Duration) (float64, int64, error) {
	cpu0, err := cpuTime(pid)
	if err != nil {
		return 0, 0, err
	}
	rss, err := watchPeak(pid)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	elapsed := time.Since(start)
	cpu1, err := cpuTime(pid)
	peak, rssErr := rss.KiB()
	if err := errors.Join(err, rssErr, ctx.Err()); err != nil {
		return 0, 0, err
	}
	return float64(cpu1-cpu0) / float64(elapsed) * 100, peak, nil
}
