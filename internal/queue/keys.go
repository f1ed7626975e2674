package queue

// Redis keys of the worker, besides the contract's (redis.queue, dl:dead,
// dl:progress, dl:task:<id>). Every worker process and workerctl use these names.
const (
	// WorkersKey is a sorted set: worker id -> Unix milliseconds of its last
	// heartbeat. A worker whose heartbeat is older than the lease is dead, and
	// the recoverer of any live worker gives its processing list back.
	WorkersKey = "dl:workers"
	// WorkerInfoPrefix + id is a hash describing a live worker (host, pid,
	// started, concurrency), expiring with its lease.
	WorkerInfoPrefix = "dl:worker:"
	// DelayedKey is a sorted set: job payload -> Unix milliseconds when it is
	// due again (a retry waiting for its backoff).
	DelayedKey = "dl:delayed"
	// AttemptsKey is a hash: task id -> attempts made so far of its current run.
	AttemptsKey = "dl:attempts"
	// LockPrefix + task id is the per-task lock: its value is the owner's token.
	LockPrefix = "dl:lock:task:"
)
