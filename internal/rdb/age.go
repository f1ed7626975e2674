package rdb

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// The age of the oldest queued job. The web app LPUSHes bare jobs, with no time
// in them, and we ask nothing more of it. So each call of OldestQueued marks
// the newest job of the queue with Redis's time when it first sees it there
// (QueueMarksKey). The queue is FIFO: every job behind a mark (nearer the end
// workers take from) was in the queue when the mark was made, and every job in
// front of it came later. The oldest mark whose job is still queued therefore
// dates the oldest job: it waited at least that long, and at most until the
// mark before, which is gone. The figure is exact to the interval between two
// calls (a scrape of any worker), and starts from the first call that saw a job:
// a backlog found by the first call counts from then.
//
// A job put back at the taking end (a retry falling due, a job recovered from a
// dead worker, one requeued at a stop) is dated by the oldest mark, as if it had
// waited since then. A job pushed twice with the same bytes can keep a mark
// alive after its first copy was taken, and the age is then too high until the
// copy is taken too.

// queueMarksTTL is how long the marks outlive the last call: they hold copies
// of jobs (buyers' addresses), which should not stay in Redis for good when
// nothing reads the age any more. A later call starts counting afresh.
const queueMarksTTL = 24 * time.Hour

// queueMarksMax bounds the marks kept. One mark is made per call that finds a
// new job at the newest end; at 5,000 a queue would have had jobs waiting and
// new ones coming for hours of scrapes. Past it, new jobs get no mark until
// old ones go, and the age is too low by the time the marks were full.
const queueMarksMax = 5000

// queueAgeScript drops the marks whose jobs have left the queue KEYS[1], marks
// its newest job unless it is marked already, and answers the age in ms of the
// oldest mark left (0 for an empty queue, whose marks it deletes).
//
// KEYS[1] the queue, KEYS[2] the marks (newest first); ARGV[1] most marks
// kept, ARGV[2] how long (ms) they outlive this call.
//
// Whether a mark's job is still queued is one LPOS from the taking end: cheap
// for the oldest mark, which the common case checks alone. When it is gone, a
// binary search over the marks (a mark's job gone means every older one is
// gone too) finds the oldest still there in a few LPOS, whatever the number of
// marks passed since the last call.
var queueAgeScript = redis.NewScript(luaNow + `
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 0
end
local function split(mark)
  local sp = string.find(mark, ' ', 1, true)
  return tonumber(string.sub(mark, 1, sp - 1)), string.sub(mark, sp + 1)
end
local function queued(i)
  local _, job = split(redis.call('LINDEX', KEYS[2], i))
  return redis.call('LPOS', KEYS[1], job, 'RANK', -1) ~= false
end
local n = redis.call('LLEN', KEYS[2])
if n > 0 and not queued(n - 1) then
  local lo, hi = -1, n - 2
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if queued(mid) then lo = mid else hi = mid - 1 end
  end
  if lo < 0 then redis.call('DEL', KEYS[2]) else redis.call('LTRIM', KEYS[2], 0, lo) end
  n = lo + 1
end
local newest = redis.call('LINDEX', KEYS[1], 0)
local top = redis.call('LINDEX', KEYS[2], 0)
local marked = false
if top then
  local _, job = split(top)
  marked = job == newest
end
if not marked and n < tonumber(ARGV[1]) then
  redis.call('LPUSH', KEYS[2], now .. ' ' .. newest)
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local at = split(redis.call('LINDEX', KEYS[2], -1))
return math.max(now - at, 0)`)

// OldestQueued returns how long the oldest job of the web app's queue has been
// waiting, by Redis's clock, as the marks described above date it; zero for an
// empty queue. Each call also makes and drops marks, so call it regularly (each
// scrape of /metrics does).
func (r *Client) OldestQueued(ctx context.Context) (time.Duration, error) {
	ms, err := queueAgeScript.Run(ctx, r.c, []string{r.queue, QueueMarksKey}, queueMarksMax, millis(queueMarksTTL)).Int64()
	if err != nil {
		return 0, wrap("read the age of the oldest job in "+r.queue, err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}
