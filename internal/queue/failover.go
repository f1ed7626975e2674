package queue

import (
	"time"

	"github.com/coursedl/worker/internal/rdb"
)

// failoverFetchBackoff bounds the fetch loop's back-off while Redis fails
// over (rdb.IsFailover: the master died or turned replica, a blocked fetch
// was unblocked, Sentinel has no master yet): a new master is usually there
// within seconds, and idle slots should take jobs from it soon after.
const failoverFetchBackoff = time.Second

// nextFetchBackoff is the back-off after b when a fetch failed with err:
// doubled, up to fetchBackoffMax, or up to failoverFetchBackoff for an error
// of a failover. No fetch error counts against a task: the job, if Redis
// moved one, is in the processing list, where the orphan check finds it.
func nextFetchBackoff(b time.Duration, err error) time.Duration {
	if rdb.IsFailover(err) {
		return min(2*b, failoverFetchBackoff)
	}
	return min(2*b, fetchBackoffMax)
}
