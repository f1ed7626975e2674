package rdb

import "strconv"

// Keys of the contract (section 1 and 3): the web app and its developers read them.
const (
	// DeadKey is the dead-letter list of rejected jobs.
	DeadKey = "dl:dead"
	// ProgressChannel is the pub/sub channel of progress events.
	ProgressChannel = "dl:progress"
	// ProgressPrefix + task id is the hash that keeps a task's latest event.
	ProgressPrefix = "dl:task:"
)

// The worker's own keys. Every worker process and workerctl use these names.
const (
	// ProcessingPrefix + worker id is the list of jobs a worker has taken and not
	// yet settled.
	ProcessingPrefix = "dl:processing:"
	// WorkersKey is a sorted set: worker id -> Unix milliseconds of its last
	// heartbeat, on Redis's clock (TIME). A worker whose heartbeat is older
	// than the lease is dead, and the recoverer of any live worker gives its
	// processing list back.
	WorkersKey = "dl:workers"
	// WorkerInfoPrefix + id is a hash describing a live worker (host, pid,
	// boot id, the process's token, started, concurrency), expiring with its
	// lease.
	WorkerInfoPrefix = "dl:worker:"
	// DelayedKey is a sorted set: job payload -> Unix milliseconds, on Redis's
	// clock, when it is due again (a retry waiting for its backoff).
	DelayedKey = "dl:delayed"
	// AttemptsKey is a hash: task id -> attempts made so far of its current run.
	AttemptsKey = "dl:attempts"
	// LockPrefix + task id is the per-task lock: its value is the owner's token,
	// "<worker id>/<random>".
	LockPrefix = "dl:lock:task:"
	// OutboxKey is the webhook outbox: a sorted set of event ids by the Unix
	// milliseconds, on Redis's clock, of their next attempt.
	OutboxKey = "dl:outbox"
	// OutboxDeadKey lists the ids of events an operator must look at (refused,
	// or past the schedule); their hashes are kept.
	OutboxDeadKey = "dl:outbox:dead"
	// OutboxStagedKey is a hash: task id -> the id of an event written before
	// the task's row and not yet due.
	OutboxStagedKey = "dl:outbox:staged"
	// OutboxEventPrefix + event id is the hash holding one event.
	OutboxEventPrefix = "dl:outbox:event:"
)

// ProcessingKey is the processing list of the worker with the given id.
func ProcessingKey(workerID string) string { return ProcessingPrefix + workerID }

// ProgressKey is the hash that keeps the latest progress event of a task.
func ProgressKey(taskID int64) string { return ProgressPrefix + itoa(taskID) }

// LockKey is the lock of a task.
func LockKey(taskID int64) string { return LockPrefix + itoa(taskID) }

// OutboxEventKey is the hash of webhook event id.
func OutboxEventKey(id string) string { return OutboxEventPrefix + id }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// IntakeKey is a hash of the pauses of intake: "*" (every worker) or a worker
// id -> why. A worker fetches no job while either its own field or "*" is set.
const IntakeKey = "dl:intake:paused"

// QueueMarksKey is a list of marks "<Unix ms> <job>", newest first: the job at
// the newest end of the web app's queue, and when OldestQueued first saw it
// there, on Redis's clock. The web app writes no time into a job; these marks
// date the jobs behind them.
const QueueMarksKey = "dl:queue:marks"

// AllWorkers names every worker in IntakeKey.
const AllWorkers = "*"

// The reconciler's keys (package reconcile).
const (
	// EpochKey holds the epoch: a random value written once, which every worker
	// keeps in memory and reads again every few seconds. Missing or changed, it
	// says that Redis lost data (a flush, a restart without its files, a
	// failover to a replica that lacked it).
	EpochKey = "dl:epoch"
	// ReconcileLockKey is held by the one worker comparing the database with
	// Redis; its value is that worker's token.
	ReconcileLockKey = "dl:reconcile:lock"
)
