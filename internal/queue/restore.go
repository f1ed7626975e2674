package queue

import (
	"context"
	"maps"
)

// taken notes the token of a lock this process took.
func (l *Locks) taken(taskID int64, token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens[taskID] = token
}

// Restore writes back the locks of the tasks this process runs, after Redis
// lost them (a flush, a failover to a replica that lacked them): each is set to
// its own token again, for a whole TTL, unless someone holds it by now. Until
// then another worker could take a running task's lock and run it a second
// time; the reconciler calls Restore as soon as it sees the loss, before any job
// is pushed again. It returns how many locks it wrote.
func (l *Locks) Restore(ctx context.Context) (int, error) {
	l.mu.Lock()
	tokens := maps.Clone(l.tokens)
	l.mu.Unlock()
	return l.Redis.RestoreLocks(ctx, tokens, l.TTL)
}
