package faults

import (
	"context"
	"testing"
	"time"
)

// testWebhookOutage: the web app's webhook endpoint is down (connections
// refused) for 60 s while tasks complete and two fail (never enrolled).
// Tasks must not wait for it; every event must arrive once it is back, each
// webhook-id accepted once.
func testWebhookOutage(t *testing.T, c *cluster) {
	const outage = 60 * time.Second
	ctx := testContext(t)
	w := c.worker("webhook", map[string]string{"WORKER_ENROLLMENT_MAX_WAIT": "2s"})
	tasks := c.addTasks(10, func(i int) bool { return i < 8 })
	for _, tk := range tasks[8:] {
		tk.want = "failed"
	}
	w.start()
	c.push(tasks[:3]...)
	waitFor(t, 60*time.Second, "two events accepted before the outage", func(context.Context) bool {
		return c.hook.accepted() >= 2
	})
	c.hook.down()
	down := time.Now()
	c.push(tasks[3:]...)
	waitFor(t, outage-5*time.Second, "every task ended while the web app is down", func(ctx context.Context) bool {
		return c.statusCount(ctx, "completed")+c.statusCount(ctx, "failed") == len(tasks)
	})
	pause(ctx, outage-time.Since(down))
	c.hook.up()
	c.verdict("webhook_outage", 1, false, "")
}
