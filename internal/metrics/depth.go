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
// trip); how long the oldest queued job has waited (rdb.Client.OldestQueued);
// and how many workers are alive (rdb.Client.LiveWorkers). These are the same
// for every worker on one Redis: aggregate them with max, not sum. When Redis
// does not answer within Timeout it reports coursedl_redis_up 0 and leaves the
// rest out of that scrape rather than show stale numbers.
type Depths struct {
	Redis   *rdb.Client
	Timeout time.Duration // default DefaultDepthTimeout
	// Lease is the heartbeat age past which a worker is taken for dead
	// (queue.DefaultLease, which this package cannot import). Zero leaves
	// coursedl_workers_alive out.
	Lease time.Duration
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
	// The web app pushes jobs with no time in them: rdb.Client.OldestQueued dates
	// them by marking, at each scrape, the newest job with Redis's time.
	descOldest = prometheus.NewDesc(Namespace+"_queue_oldest_age_seconds",
		"Seconds the oldest job in the queue (redis.queue) has waited, 0 when it is empty. "+
			"Dated by the first scrape that saw it or a later job at the queue's newest end (dl:queue:marks), "+
			"so exact to the scrape interval and counted from the first scrape.", nil, nil)
	descAlive = prometheus.NewDesc(Namespace+"_workers_alive",
		"Workers whose heartbeat in dl:workers is younger than the lease, by Redis's clock.", nil, nil)
)

// Describe sends the descriptors of the gauges Collect may send.
func (d *Depths) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{descUp, descQueue, descDead, descDelayed, descOutbox, descOutboxDead, descOldest, descAlive} {
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
	gauges, err := d.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for desc, v := range gauges {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
}

// read reads every gauge from Redis, or none.
func (d *Depths) read(ctx context.Context) (map[*prometheus.Desc]float64, error) {
	n, err := d.Redis.Depths(ctx)
	if err != nil {
		return nil, err
	}
	age, err := d.Redis.OldestQueued(ctx)
	if err != nil {
		return nil, err
	}
	gauges := map[*prometheus.Desc]float64{
		descQueue: float64(n.Queue), descDead: float64(n.Dead), descDelayed: float64(n.Delayed),
		descOutbox: float64(n.Outbox), descOutboxDead: float64(n.OutboxDead), descOldest: age.Seconds(),
	}
	if d.Lease > 0 {
		alive, err := d.Redis.LiveWorkers(ctx, d.Lease)
		if err != nil {
			return nil, err
		}
		gauges[descAlive] = float64(alive)
	}
	return gauges, nil
}
