package rdb

import (
	"strconv"
	"time"
)

// One clock: every due time, lease and heartbeat the worker keeps in Redis is
// on Redis's clock, read with TIME inside the script that writes or compares
// it, never on a host's. Hosts whose clocks disagree by minutes then still
// agree on which worker is alive and which job is due. Scripts answer "due
// in" and "age" as durations, which a process measures on its own monotonic
// clock. Redis 7 replicates a script's effects, not the script, so TIME in a
// script that writes is safe.

// luaNow sets the local now to Redis's clock in Unix milliseconds; scripts
// that need the time begin with it.
const luaNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// millis is d in whole milliseconds, as the scripts take durations.
func millis(d time.Duration) int64 { return d.Milliseconds() }

// msDuration reads a script's answer of milliseconds (an integer, or a
// string); ok is false when it is none.
func msDuration(v any) (time.Duration, bool) {
	switch x := v.(type) {
	case int64:
		return time.Duration(x) * time.Millisecond, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, false
		}
		return time.Duration(f) * time.Millisecond, true
	}
	return 0, false
}

// first is the first element of a script's answer, nil when it is empty.
func first(res []any) any {
	if len(res) == 0 {
		return nil
	}
	return res[0]
}
