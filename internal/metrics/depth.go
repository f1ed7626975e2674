package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// DefaultDepthTimeout bounds the Redis reads of one scrape.
const DefaultDepthTimeout = 2 * time.Second

// Depths is a collector that reads, at each scrape, how many entries wait in the
// worker's Redis lists and sets: the job queue, the dead-letter list, the delayed
// retries, the webhook outbox and its dead list. It reads them in one pipeline under
// Timeout; when Redis does not answer in time it reports coursedl_redis_up 0 and
// leaves the depths out of that scrape rather than show stale numbers.
//
// The key names are the caller's (package queue and package outbox own them); an
// empty name leaves its gauge out.
type Depths struct {
	Redis      redis.UniversalClient
	Queue      string // redis.queue: LLEN
	Dead       string // dl:dead: LLEN
	Delayed    string // dl:delayed: ZCARD
	Outbox     string // dl:outbox: ZCARD
	OutboxDead string // dl:outbox:dead: LLEN
	Timeout    time.Duration
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
	ch <- descUp
	for _, g := range d.gauges() {
		ch <- g.desc
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
	gauges := d.gauges()
	pipe := d.Redis.Pipeline()
	cmds := make([]*redis.IntCmd, len(gauges))
	for i, g := range gauges {
		if g.sorted {
			cmds[i] = pipe.ZCard(ctx, g.key)
		} else {
			cmds[i] = pipe.LLen(ctx, g.key)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for i, g := range gauges {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(cmds[i].Val()))
	}
}

type depthGauge struct {
	desc   *prometheus.Desc
	key    string
	sorted bool // ZCARD, else LLEN
}

func (d *Depths) gauges() []depthGauge {
	all := []depthGauge{
		{descQueue, d.Queue, false},
		{descDead, d.Dead, false},
		{descDelayed, d.Delayed, true},
		{descOutbox, d.Outbox, true},
		{descOutboxDead, d.OutboxDead, false},
	}
	out := all[:0]
	for _, g := range all {
		if g.key != "" {
			out = append(out, g)
		}
	}
	return out
}
