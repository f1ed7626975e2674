package rdb

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis replicates to its replicas after it has answered a write: a master
// that dies (kill -9, a failover) loses the writes its replicas had not
// received yet. The few writes whose loss costs most (the acknowledgement of
// an ended task, the staging and release of a webhook event) are followed, in
// the same pipeline, by WAIT 1: they return once one replica has them, or
// after Options.WaitReplica. They wait only while the master has a replica
// (INFO replication: connected_slaves), which is looked at before the first
// such write, again every replicaLookEvery, and after a failover error.

// replicaLookEvery is how long a look at the master's replicas holds.
const replicaLookEvery = 10 * time.Second

// replication is what a Client knows of the master's replicas.
type replication struct {
	wait   time.Duration     // Options.WaitReplica; 0: never wait
	onAck  func(acked int64) // Options.OnReplicaAck
	acked  atomic.Int32      // last WAIT: 0 none yet, 1 a replica had it, 2 none had it
	mu     sync.Mutex        // guards the fields below
	looked time.Time         // zero: look before the next write
	has    bool              // connected_slaves > 0 at the last look
}

// errExecReplies says EXEC answered with other than one reply a command.
var errExecReplies = errors.New("EXEC replies do not match the commands")

// Replicas returns the number of replicas connected to the master, as INFO
// replication says (connected_slaves), and notes it for the writes that wait.
func (r *Client) Replicas(ctx context.Context) (int64, error) {
	info, err := r.c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, wrap("info replication", err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	r.repl.mu.Lock()
	r.repl.looked, r.repl.has = time.Now(), n > 0
	r.repl.mu.Unlock()
	return n, nil
}

// waitsForReplica reports whether a write that costs most when lost must be
// followed by WAIT: WaitReplica is set and the master has a replica.
func (r *Client) waitsForReplica(ctx context.Context) bool {
	if r.repl.wait <= 0 {
		return false
	}
	r.repl.mu.Lock()
	fresh, has := time.Since(r.repl.looked) < replicaLookEvery, r.repl.has
	r.repl.mu.Unlock()
	if fresh {
		return has
	}
	// A failed look keeps what the last one said and is made again next time.
	if _, err := r.Replicas(ctx); err != nil {
		return has
	}
	r.repl.mu.Lock()
	defer r.repl.mu.Unlock()
	return r.repl.has
}

// afterWrite notes the outcome of a write that waited: a failover error has
// the replicas looked at again, and a change between some replica and none
// having the write is reported to OnReplicaAck.
func (r *Client) afterWrite(err error, wait *redis.Cmd) {
	if IsFailover(err) {
		r.repl.mu.Lock()
		r.repl.looked = time.Time{}
		r.repl.mu.Unlock()
	}
	if err != nil || wait == nil {
		return
	}
	n, werr := wait.Int64()
	if werr != nil {
		return
	}
	state := int32(1)
	if n == 0 {
		state = 2
	}
	if old := r.repl.acked.Swap(state); old != state && (state == 2 || old == 2) && r.repl.onAck != nil {
		r.repl.onAck(n)
	}
}

// waited runs write on r, followed by WAIT 1 in the same pipeline when the
// master has a replica, and returns write's command. WAIT's own outcome is no
// error of the write's: a replica that did not answer in time only delays it.
func waited[C redis.Cmder](ctx context.Context, r *Client, write func(redis.Cmdable) C) C {
	if !r.waitsForReplica(ctx) {
		return write(r.c)
	}
	var cmd C
	var wait *redis.Cmd
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmd = write(p)
		wait = r.waitCmd(ctx, p)
		return nil
	})
	r.afterWrite(cmd.Err(), wait)
	return cmd
}

// waitCmd queues WAIT 1 on p (Pipeliner has no Wait). The client's read
// timeout must exceed WaitReplica.
func (r *Client) waitCmd(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
	return p.Do(ctx, "wait", 1, r.repl.wait.Milliseconds())
}

// runScript runs s as Script.Run does (EVALSHA, then EVAL when Redis does not
// know the script), each followed by WAIT when the master has a replica.
func (r *Client) runScript(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := waited(ctx, r, func(c redis.Cmdable) *redis.Cmd { return s.EvalSha(ctx, c, keys, args...) })
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd = waited(ctx, r, func(c redis.Cmdable) *redis.Cmd { return s.Eval(ctx, c, keys, args...) })
	}
	return cmd
}

// multiWaited runs cmds in one MULTI/EXEC followed by WAIT 1, in one round
// trip (WAIT inside MULTI would not wait), and returns EXEC's replies. It is
// the TxPipelined of the writes that wait for a replica.
func (r *Client) multiWaited(ctx context.Context, cmds ...[]any) ([]any, error) {
	var exec *redis.Cmd
	var wait *redis.Cmd
	_, _ = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Do(ctx, "multi")
		for _, c := range cmds {
			p.Do(ctx, c...)
		}
		exec = p.Do(ctx, "exec")
		wait = r.waitCmd(ctx, p)
		return nil
	})
	err := exec.Err()
	r.afterWrite(err, wait)
	if err != nil {
		return nil, err
	}
	replies, _ := exec.Val().([]any)
	if len(replies) != len(cmds) {
		return nil, errExecReplies
	}
	return replies, nil
}
