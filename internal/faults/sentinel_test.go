package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// masterName is the Sentinel name of the test's master.
const masterName = "faults"

// testSentinel: 20 tasks on two workers that find Redis through three
// Sentinels, a master and a replica. Mid-run the master gets SIGKILL;
// Sentinel promotes the replica and the workers follow it. The old master is
// started again as a replica of the new one; once Sentinel counts it, the new
// master gets SIGKILL too, mid-run, and the old master becomes master again.
// Every task must complete, once, with its webhook; no task may run twice at
// once (the downloader records the start and end of every run).
func testSentinel(t *testing.T, c *cluster, s *sentinels) {
	ctx := testContext(t)
	tasks := c.addTasks(20, nil)
	ws := []*worker{c.worker("sentinel-a", nil), c.worker("sentinel-b", nil)}
	for _, w := range ws {
		w.start()
	}
	c.push(tasks[:12]...)
	c.waitCompleted(3, 60*time.Second)

	first := s.master(ctx)
	s.kill9(first)
	second := s.waitFailover(first)
	t.Logf("failover 1: %s -> %s", first.addr, second.addr)
	s.restartAsReplica(first, second)
	c.push(tasks[12:]...)
	c.waitCompleted(12, 60*time.Second)

	s.kill9(second)
	third := s.waitFailover(second)
	t.Logf("failover 2: %s -> %s", second.addr, third.addr)
	s.restartAsReplica(second, third)
	c.verdict("sentinel", 2, true, "")
	overlapping(t, readSpans(t, c.spans))
}

// newSentinelCluster makes a cluster on database 0 of s's master whose
// workers, and the test's own client, find Redis through s's Sentinels.
func newSentinelCluster(t *testing.T, s *sentinels, m *mariaDB) *cluster {
	t.Helper()
	first := s.servers[0]
	c := newCluster(t, "sentinel", &redisServer{server: first.server, addr: first.addr, dir: first.dir}, 0, m)
	c.rdb = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: masterName, SentinelAddrs: s.addrs})
	t.Cleanup(func() { _ = c.rdb.Close() })
	addrs, _ := json.Marshal(s.addrs)
	c.settings["WORKER_REDIS_SENTINEL_MASTER"] = masterName
	c.settings["WORKER_REDIS_SENTINEL_ADDRS"] = string(addrs)
	c.spans = c.recordSpans(1)
	return c
}

// sentinels is a master, its replica and three Sentinels watching them, all
// on loopback ports of their own.
type sentinels struct {
	t       *testing.T
	servers []*redisNode // the master and the replica, in either role
	addrs   []string     // the Sentinels'
	client  *redis.SentinelClient
}

// redisNode is a redis-server that may be master or replica.
type redisNode struct {
	*server
	addr string
	port int
	dir  string
}

// startSentinels starts the master, the replica and the Sentinels, and waits
// until the Sentinels know the replica and each other (a failover needs two of
// three to agree).
func startSentinels(t *testing.T) *sentinels {
	t.Helper()
	s := &sentinels{t: t}
	m := s.startNode(nil)
	s.startNode(m)
	var watchers []string
	for i := range 3 {
		dir := t.TempDir()
		port := freePort(t)
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %s
sentinel resolve-hostnames no
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 4000
sentinel parallel-syncs %s 1
`, port, dir, masterName, m.port, masterName, masterName, masterName)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		ping := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		t.Cleanup(func() { _ = ping.Close() })
		newServer(t, fmt.Sprintf("sentinel-%d-%d", i+1, port), "redis-server", []string{conf, "--sentinel"}, dir,
			func(ctx context.Context) error { return ping.Ping(ctx).Err() })
		watchers = append(watchers, addr)
	}
	s.addrs = watchers
	s.client = redis.NewSentinelClient(&redis.Options{Addr: watchers[0]})
	t.Cleanup(func() { _ = s.client.Close() })
	waitFor(t, 30*time.Second, "Sentinels know the replica and each other", func(ctx context.Context) bool {
		for _, a := range watchers {
			sc := redis.NewSentinelClient(&redis.Options{Addr: a})
			peers, perr := sc.Sentinels(ctx, masterName).Result()
			replicas, rerr := sc.Replicas(ctx, masterName).Result()
			_ = sc.Close()
			if perr != nil || rerr != nil || len(peers) != 2 || len(replicas) != 1 || replicas[0]["flags"] != "slave" {
				return false
			}
		}
		return true
	})
	return s
}

// startNode starts a redis-server without persistence, a replica of of when
// it is not nil.
func (s *sentinels) startNode(of *redisNode) *redisNode {
	t := s.t
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	n := &redisNode{addr: "127.0.0.1:" + strconv.Itoa(port), port: port, dir: dir}
	ping := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = ping.Close() })
	n.server = newServer(t, "redis-"+strconv.Itoa(port), "redis-server", nodeArgs(n, of), dir, func(ctx context.Context) error {
		if err := ping.Ping(ctx).Err(); err != nil {
			return err
		}
		if of == nil {
			return nil
		}
		// A replica is up once it has its master's data.
		info, err := ping.Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "master_link_status:up") {
			err = fmt.Errorf("replica of %s not in sync yet", of.addr)
		}
		return err
	})
	s.servers = append(s.servers, n)
	return n
}

// nodeArgs are the arguments of node n, a replica of of when it is not nil.
func nodeArgs(n, of *redisNode) []string {
	args := []string{
		"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1", "--dir", n.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
		// A replica that joins gets the data at once, not after 5 s.
		"--repl-diskless-sync-delay", "0",
	}
	if of != nil {
		args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(of.port))
	}
	return args
}

// master returns the node the Sentinels name master now.
func (s *sentinels) master(ctx context.Context) *redisNode {
	s.t.Helper()
	addr, err := s.client.GetMasterAddrByName(ctx, masterName).Result()
	if err != nil || len(addr) != 2 {
		s.t.Fatalf("sentinel get-master-addr-by-name: %v %v", addr, err)
	}
	for _, n := range s.servers {
		if n.addr == net.JoinHostPort(addr[0], addr[1]) {
			return n
		}
	}
	s.t.Fatalf("the Sentinels name %v master, none of the test's servers", addr)
	return nil
}

// kill9 ends node n with SIGKILL, as a crash would: what it had not sent to
// its replica is lost.
func (s *sentinels) kill9(n *redisNode) {
	s.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.out.printf("SIGKILL to %s", n.name)
	if err := n.proc.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("SIGKILL to %s: %v", n.name, err)
	}
	_, _ = n.proc.Wait() // killed: the error says so
	n.proc = nil
}

// waitFailover waits until the Sentinels name a master other than old, and
// that master says it is one.
func (s *sentinels) waitFailover(old *redisNode) *redisNode {
	s.t.Helper()
	var now *redisNode
	waitFor(s.t, 30*time.Second, "failover away from "+old.addr, func(ctx context.Context) bool {
		addr, err := s.client.GetMasterAddrByName(ctx, masterName).Result()
		if err != nil || len(addr) != 2 || net.JoinHostPort(addr[0], addr[1]) == old.addr {
			return false
		}
		now = s.master(ctx)
		c := redis.NewClient(&redis.Options{Addr: now.addr})
		defer func() { _ = c.Close() }()
		info, err := c.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "role:master")
	})
	return now
}

// restartAsReplica starts node n again, empty, as a replica of master, and
// waits until it is in sync and the Sentinels count it as a replica that can
// be promoted.
func (s *sentinels) restartAsReplica(n, master *redisNode) {
	s.t.Helper()
	n.args = nodeArgs(n, master)
	n.up = replicaUp(n, master)
	n.start()
	waitFor(s.t, 40*time.Second, n.addr+" counted as a replica by every Sentinel", func(ctx context.Context) bool {
		for _, a := range s.addrs {
			sc := redis.NewSentinelClient(&redis.Options{Addr: a})
			replicas, err := sc.Replicas(ctx, masterName).Result()
			_ = sc.Close()
			if err != nil || !promotable(replicas, n.addr) {
				return false
			}
		}
		return true
	})
}

// replicaUp is the up check of n restarted as a replica of master.
func replicaUp(n, master *redisNode) func(context.Context) error {
	return func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: n.addr, MaxRetries: -1, DialTimeout: time.Second})
		defer func() { _ = c.Close() }()
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "master_link_status:up") {
			err = fmt.Errorf("replica of %s not in sync yet", master.addr)
		}
		return err
	}
}

// promotable reports whether the Sentinel's replicas hold addr as a replica
// in good health, its link to the master up.
func promotable(replicas []map[string]string, addr string) bool {
	for _, r := range replicas {
		if net.JoinHostPort(r["ip"], r["port"]) == addr {
			return r["flags"] == "slave" && r["master-link-status"] == "ok"
		}
	}
	return false
}
