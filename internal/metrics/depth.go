package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coursedl/worker/internal/rdb"
)

// DefaultDepthTimeout bounds the Redis reads of one scrape.
const DefaultDepthTimeout = 2 * time.Second

// Depths is a collector that reads, at each scrape, how many entries wait in the
// worker's Redis lists and sets: the job queue, the dead-letter list, the delayed
// retries, the webhook outbox and its dead list (rdb.Client.Depths, one round
// trip). When Redis does not answer within Timeout it reports coursedl_redis_up 0
// and leaves the depths out of that scrape rather than show stale numbers.
type Depths struct {
	Redis   *rdb.Client
	Timeout time.Duration // default DefaultDepthTimeout
}

var (
	descUp = prometheus.NewDesc(Namespace+"_redis_up",
		"1 when the last scrape read the queue depths from Redis, 0 when Redis did not answer in time.", nil, nil)
	descQueue = prometheus.NewDesc(Namespace+"_queue_depth",
		"Jobs waiting in the queue the web app pushes to (redis.queue).", nil, nil)
	descDead = prometheus.NewDesc(Namespace+"_dead_letter_depth",
		"Rejected jobs in the dead-letter list dl:dead, waiting for an operator.", nil, nil)
	descDelayed = prometheus.NewDesc(Namespace+"_delayed_depth",
		"Jobs waiting for their retry's backoff in dl:delayed.", nil, nil)
	descOutbox = prometheus.NewDesc(Namespace+"_outbox_depth",
		"Webhook events waiting for delivery in dl:outbox.", nil, nil)
	descOutboxDead = prometheus.NewDesc(Namespace+"_outbox_dead_depth",
		"Webhook events refused or past the retry schedule in dl:outbox:dead, waiting for an operator.", nil, nil)
)

// Describe sends the descriptors of the gauges Collect may send.
func (d *Depths) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{descUp, descQueue, descDead, descDelayed, descOutbox, descOutboxDead} {
		ch <- desc
	}
}

// Collect reads the depths from Redis.
func (d *Depths) Collect(ch chan<- prometheus.Metric) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDepthTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n, err := d.Redis.Depths(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for _, g := range []struct {
		desc *prometheus.Desc
		n    int64
	}{{descQueue, n.Queue}, {descDead, n.Dead}, {descDelayed, n.Delayed}, {descOutbox, n.Outbox}, {descOutboxDead, n.OutboxDead}} {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.n))
	}
}
