package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/testutil"
)

// TestFaults runs every fault test at once. Those that leave the servers up
// share one Redis (a database each) and one MariaDB (a database each); the
// Redis restart, the Redis flushes and the MariaDB stop have their own server
// of the kind they stop or flush; Sentinel has its own master, replica and
// Sentinels.
func TestFaults(t *testing.T) {
	redisShared := startRedis(t, false)
	mysqlShared := startMariaDB(t)
	t.Run("Kill9", func(t *testing.T) {
		t.Parallel()
		testKill9(t, newCluster(t, "kill9", redisShared, 1, mysqlShared))
	})
	t.Run("Kill9Streamed", func(t *testing.T) {
		t.Parallel()
		testKill9Streamed(t, newCluster(t, "kill9streamed", redisShared, 5, mysqlShared))
	})
	t.Run("SIGTERM", func(t *testing.T) {
		t.Parallel()
		testSIGTERM(t, newCluster(t, "sigterm", redisShared, 2, mysqlShared))
	})
	t.Run("RedisRestart", func(t *testing.T) {
		t.Parallel()
		r := startRedis(t, true)
		testRedisRestart(t, newCluster(t, "redis", r, 0, mysqlShared), r)
	})
	t.Run("MariaDBStop", func(t *testing.T) {
		t.Parallel()
		m := startMariaDB(t)
		testMariaDBStop(t, newCluster(t, "mariadb", redisShared, 3, m), m)
	})
	t.Run("Sentinel", func(t *testing.T) {
		t.Parallel()
		s := startSentinels(t)
		testSentinel(t, newSentinelCluster(t, s, mysqlShared), s)
	})
	t.Run("RedisForgets", func(t *testing.T) {
		t.Parallel()
		testRedisForgets(t, newCluster(t, "forgets", startRedis(t, false), 0, mysqlShared))
	})
	t.Run("WebhookOutage", func(t *testing.T) {
		t.Parallel()
		testWebhookOutage(t, newCluster(t, "webhook", redisShared, 4, mysqlShared))
	})
	// The clock and identity tests have a Redis of their own each: no
	// database number to share with other tests.
	t.Run("ClockSkew", func(t *testing.T) {
		t.Parallel()
		testClockSkew(t, newCluster(t, "skew", startRedis(t, false), 0, mysqlShared))
	})
	t.Run("Partition", func(t *testing.T) {
		t.Parallel()
		r := startRedis(t, false)
		testPartition(t, newCluster(t, "partition", r, 0, mysqlShared), startProxy(t, r.addr))
	})
	t.Run("SameName", func(t *testing.T) {
		t.Parallel()
		testSameName(t, newCluster(t, "samename", startRedis(t, false), 0, mysqlShared))
	})
}

// waitFor polls cond until it holds, failing the test after within; cond's
// context ends then too, so a query under way does not outlive the wait.
func waitFor(t *testing.T, within time.Duration, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	testutil.Eventually(t, within, func() bool { return cond(ctx) }, "%s", what)
}

// statusCount counts the cluster's rows in status.
func (c *cluster) statusCount(ctx context.Context, status string) int {
	var n int
	if err := c.db.GetContext(ctx, &n, "SELECT COUNT(*) FROM download_tasks WHERE status = ?", status); err != nil {
		return -1
	}
	return n
}

// waitCompleted waits until at least n rows are completed.
func (c *cluster) waitCompleted(n int, within time.Duration) {
	c.t.Helper()
	waitFor(c.t, within, fmt.Sprintf("%d tasks completed", n), func(ctx context.Context) bool {
		return c.statusCount(ctx, "completed") >= n
	})
}

// pause waits d: the length of an outage, which is the fault itself.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
