package faults

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
)

// testRedisRestart: 20 tasks on two workers while Redis (AOF, fsync always)
// is shut down and started again on the same folder three times, down 3 s
// each time:
//
//   - first with both workers idle, waiting in BLMOVE, as the web app pushes a
//     job in the same breath as the SHUTDOWN: Redis moves the job into a
//     processing list and exits before it answers, so the worker never hears
//     of the job it was given;
//   - then twice mid-run, with every slot busy.
//
// No task may be lost. A webhook may come twice (a delivery whose record in
// the outbox did not reach Redis), never as two events.
func testRedisRestart(t *testing.T, c *cluster, r *redisServer) {
	ctx := testContext(t)
	tasks := c.addTasks(20, nil)
	ws := []*worker{c.worker("redis-a", nil), c.worker("redis-b", nil)}
	for _, w := range ws {
		w.start()
	}
	for _, w := range ws {
		w.waitReady()
	}
	// Both wait in BLMOVE once their processing lists are empty and a moment
	// has passed; the push and the SHUTDOWN go in one write.
	waitFor(t, 10*time.Second, "idle workers", func(ctx context.Context) bool {
		n, err := c.rdb.Exists(ctx, rdb.ProcessingKey(ws[0].id), rdb.ProcessingKey(ws[1].id)).Result()
		return err == nil && n == 0
	})
	pause(ctx, 500*time.Millisecond)
	// A client that never sends a command twice: the push must happen once.
	once := redis.NewClient(&redis.Options{Addr: r.addr, DB: c.rdb.Options().DB, MaxRetries: -1})
	defer func() { _ = once.Close() }()
	r.stopWith(func() error {
		_, err := once.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.LPush(ctx, queueKey, tasks[0].payload)
			p.Shutdown(ctx)
			return nil
		})
		return err
	})
	restarts := 1
	pause(ctx, 3*time.Second)
	r.start()
	c.push(tasks[1:]...)
	for _, after := range []int{5, 13} {
		c.waitCompleted(after, 90*time.Second)
		r.shutdown()
		pause(ctx, 3*time.Second)
		r.start()
		restarts++
	}
	c.verdict("redis_restart", restarts, true, "")
}

// testMariaDBStop: 15 tasks on two workers; MariaDB is stopped for 20 s once
// a few tasks have completed. Every task must complete after it returns.
func testMariaDBStop(t *testing.T, c *cluster, m *mariaDB) {
	ctx := testContext(t)
	tasks := c.addTasks(15, nil)
	for _, id := range []string{"mariadb-a", "mariadb-b"} {
		c.worker(id, nil).start()
	}
	c.push(tasks...)
	c.waitCompleted(3, 90*time.Second)
	m.stop()
	pause(ctx, 20*time.Second)
	m.start()
	c.verdict("mariadb_stop", 1, false, "")
}
