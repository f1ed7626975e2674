package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testsvc"
)

// Replica figure: what WAIT 1 after the acknowledgement of a task costs
// (rdb.Options.WaitReplica, on while the master has a replica), against a
// master and a replica of the bench's own on this machine: acks with and
// without the WAIT, in interleaved rounds on the same master.

// replicaFigures: wait_ack_cost_ms.
func (b *Bench) replicaFigures(ctx context.Context) error {
	rounds, acks := 7, 2000
	if b.opts.Quick {
		rounds, acks = 2, 300
	}
	master, stop, err := b.masterReplica(ctx)
	if err != nil {
		return err
	}
	defer stop()
	plain := rdb.New(master, rdb.Options{Worker: "bench-plain"})
	waiting := rdb.New(master, rdb.Options{Worker: "bench-wait", WaitReplica: time.Second})
	if n, err := waiting.Replicas(ctx); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("the bench's master has %d replicas, want 1", n)
	}
	var without, with, cost []float64
	for i := range rounds {
		p, err := ackPass(ctx, master, plain, "bench-plain", acks)
		if err != nil {
			return err
		}
		w, err := ackPass(ctx, master, waiting, "bench-wait", acks)
		if err != nil {
			return err
		}
		without, with, cost = append(without, p), append(with, w), append(cost, w-p)
		b.progressf("replica round %d/%d: ack %.3f ms, with WAIT %.3f ms", i+1, rounds, p, w)
	}
	b.add(Figure{Name: "wait_ack_cost_ms", Value: median(cost), Unit: "ms", Decimals: 3,
		Note: fmt.Sprintf("median of %d rounds of %d acks one after another: %.3f ms with WAIT 1, %.3f ms without; master and replica on this machine",
			rounds, acks, median(with), median(without))})
	return nil
}

// ackPass puts n jobs in the processing list of worker and times their Acks,
// one after another; it returns the mean ms an ack.
func ackPass(ctx context.Context, c *redis.Client, r *rdb.Client, worker string, n int) (float64, error) {
	key := rdb.ProcessingKey(worker)
	jobs := make([]any, n)
	for i := range jobs {
		jobs[i] = `{"taskId":` + strconv.Itoa(i+1) + `}`
	}
	if err := c.LPush(ctx, key, jobs...).Err(); err != nil {
		return 0, err
	}
	start := time.Now()
	for _, j := range jobs {
		if err := r.Ack(ctx, j.(string)); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000 / float64(n), nil
}

// masterReplica starts a master and its replica, waits until the replica is in
// sync, and returns a client on the master and what stops them both.
func (b *Bench) masterReplica(ctx context.Context) (*redis.Client, func(), error) {
	var servers []*testsvc.RedisServer
	stop := func() {
		for _, s := range servers {
			_ = s.Stop()
		}
	}
	start := func(name string, extra ...string) (*testsvc.RedisServer, error) {
		dir := filepath.Join(b.dir, name)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		s, err := testsvc.StartRedis(ctx, dir, extra...)
		if err == nil {
			servers = append(servers, s)
		}
		return s, err
	}
	m, err := start("master", "--repl-diskless-sync-delay", "0")
	if err != nil {
		return nil, nil, err
	}
	host, port, _ := net.SplitHostPort(m.Addr)
	r, err := start("replica", "--replicaof", host, port)
	if err != nil {
		stop()
		return nil, nil, err
	}
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer func() { _ = rc.Close() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		info, err := rc.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("replica %s not in sync within 30 s (%v)", r.Addr, err) //nolint:errorlint // err may be nil
		}
		select {
		case <-ctx.Done():
			stop()
			return nil, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The worker's settings (app.New).
	mc := redis.NewClient(&redis.Options{Addr: m.Addr, ContextTimeoutEnabled: true, ReadTimeout: 10 * time.Second})
	return mc, func() { _ = mc.Close(); stop() }, nil
}
