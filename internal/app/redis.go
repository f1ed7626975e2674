package app

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/rdb"
)

// replicaWait bounds how long an acknowledgement or a webhook event waits for
// a replica to have it (rdb.Options.WaitReplica); under redisReadTimeout.
const replicaWait = 500 * time.Millisecond

// redisReadTimeout bounds a Redis reply; go-redis adds a blocking command's
// own block to it.
const redisReadTimeout = 10 * time.Second

// connectRedis makes the worker's Redis client (through Sentinel when
// redis.sentinel.master is set), waits until Redis answers, and says whether
// the master has replicas: while it has, acknowledgements and webhook events
// wait for one (rdb.Options.WaitReplica).
func (a *App) connectRedis(ctx context.Context) (rdb.DialOptions, error) {
	cfg, log := a.cfg, a.log
	dial := rdb.DialConfig(cfg.Redis)
	dial.ReadTimeout = redisReadTimeout
	a.client = rdb.Dial(dial)
	a.closers = append(a.closers, a.client.Close)
	a.redis = rdb.New(a.client, rdb.Options{
		Queue:        cfg.Redis.Queue,
		Worker:       cfg.Worker.ID,
		WaitReplica:  replicaWait,
		OnReplicaAck: replicaAck(log.Named("redis")),
	})
	if err := waitFor(ctx, log, "redis at "+dial.Where(), a.redis.Ping); err != nil {
		return dial, err
	}
	n, err := a.redis.Replicas(ctx)
	switch {
	case err != nil:
		log.Warn("cannot tell whether Redis has replicas; looking again at the first ack", zap.Error(err))
	case n > 0:
		log.Info("redis master has replicas: acks and webhook events wait for one",
			zap.Int64("replicas", n), zap.Duration("wait", replicaWait))
	}
	return dial, nil
}

// replicaAck logs when the replicas stop, or start again, acknowledging the
// writes that wait for one.
func replicaAck(log *zap.Logger) func(int64) {
	return func(acked int64) {
		if acked == 0 {
			log.Warn("no replica acknowledged a write in time; a failover now could lose the latest acks and webhook events",
				zap.Duration("wait", replicaWait))
			return
		}
		log.Info("a replica acknowledges writes again", zap.Int64("replicas", acked))
	}
}
