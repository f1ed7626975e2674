// Package notify tells the web app that a task has ended: it builds the
// webhook body of contract section 4, signs it as the Standard Webhooks
// specification says, and makes one delivery attempt per call (Send),
// classifying a failure as permanent or worth retrying.
//
// It keeps no state: package outbox holds undelivered events in Redis and
// retries them on the schedule, across restarts.
package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Event types, the value of Event.Type.
const (
	// TypeCompleted is sent when a task uploaded its course.
	TypeCompleted = "task.completed"
	// TypeFailed is sent when a task ended without a course; Error says why.
	TypeFailed = "task.failed"
)

// Event is the JSON body POSTed to the web app (contract section 4).
//
// OrderID is nil for a task without an order and is then sent as null.
// DriveURL is omitted on task.failed; Error is set only on task.failed.
type Event struct {
	Type            string `json:"type"`
	TaskID          int64  `json:"taskId"`
	OrderID         *int64 `json:"orderId"`
	Email           string `json:"email"`
	DriveURL        string `json:"driveUrl,omitempty"`
	Folder          string `json:"folder"`
	Error           string `json:"error,omitempty"`
	DurationSeconds int64  `json:"durationSeconds"`
	// Timestamp is when the task ended, as FormatTime renders it.
	Timestamp string `json:"timestamp"`
}

// FormatTime renders t as the contract's timestamp: RFC 3339, UTC, whole
// seconds ("2026-11-28T20:00:49Z").
func FormatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// CompletedID is the webhook-id of a task's task.completed: however often the
// task's job comes back, the web app sees one event it can de-duplicate.
func CompletedID(taskID int64) string { return fmt.Sprintf("msg_task%d_completed", taskID) }

// FailedID is the webhook-id of a task's task.failed for reason: a run that
// crashed after staging it and fails again the same way sends the same id.
func FailedID(taskID int64, reason string) string {
	sum := sha256.Sum256([]byte(reason))
	return fmt.Sprintf("msg_task%d_failed_%s", taskID, hex.EncodeToString(sum[:8]))
}
