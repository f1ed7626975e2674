package rdb

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// Dead is one entry of the dead-letter list, as contract section 1 spells it:
// the whole payload, whatever its size (it was in Redis already, and a cut
// would lose the evidence).
type Dead struct {
	Payload string `json:"payload"`
	Reason  string `json:"reason"`
	At      string `json:"at"`
	Worker  string `json:"worker"`
}

// DeadLetter moves a job to the dead-letter list with the reason it was
// rejected, atomically with its removal from the processing list.
func (r *Client) DeadLetter(ctx context.Context, payload, reason string, at time.Time) error {
	entry, err := json.Marshal(Dead{Payload: payload, Reason: reason, At: at.UTC().Format(time.RFC3339), Worker: r.worker})
	if err != nil {
		return wrap("dead letter", err)
	}
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, DeadKey, entry)
		p.LRem(ctx, r.processing, 1, payload)
		return nil
	})
	return wrap("dead letter", err)
}

// DeadList returns the raw entries of the dead-letter list, oldest first.
func (r *Client) DeadList(ctx context.Context) ([]string, error) {
	raw, err := r.c.LRange(ctx, DeadKey, 0, -1).Result()
	if err != nil {
		return nil, wrap("read "+DeadKey, err)
	}
	for i, j := 0, len(raw)-1; i < j; i, j = i+1, j-1 {
		raw[i], raw[j] = raw[j], raw[i]
	}
	return raw, nil
}

// requeueDeadScript removes one dead entry and pushes its payload onto the
// queue, in one step: the payload is pushed only if the entry was still there,
// so two operators requeueing at once cannot run a job twice. The task's attempt
// count starts afresh.
var requeueDeadScript = redis.NewScript(`
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  if ARGV[3] ~= '0' then redis.call('HDEL', KEYS[3], ARGV[3]) end
  return 1
end
return 0`)

// RequeueDead removes the dead-letter entry entry (as DeadList gave it) and
// pushes payload, the job it holds, onto the queue as the web app does, with
// the attempts of taskID forgotten. It reports false when the entry was gone
// already (requeued or purged by someone else), and pushes nothing then.
func (r *Client) RequeueDead(ctx context.Context, entry, payload string, taskID int64) (bool, error) {
	n, err := requeueDeadScript.Run(ctx, r.c, []string{DeadKey, r.queue, AttemptsKey}, entry, payload, itoa(taskID)).Int()
	return n == 1, wrap("requeue dead letter", err)
}

// PurgeDead deletes the dead-letter list and returns how many entries it held.
func (r *Client) PurgeDead(ctx context.Context) (int64, error) {
	var n *redis.IntCmd
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.LLen(ctx, DeadKey)
		p.Del(ctx, DeadKey)
		return nil
	})
	if err != nil {
		return 0, wrap("purge "+DeadKey, err)
	}
	return n.Val(), nil
}
