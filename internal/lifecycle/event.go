// Package lifecycle writes the business event lines of contract section 5:
// one line per event in <logs dir>/lifecycle-YYYY-MM-DD.log, one file per UTC
// day, such as
//
//	2026-11-28T20:00:49Z [DOWNLOAD_SUCCESS] [TaskId: 17] [OrderId: 12] [Duration: 49s]
//
// It owns the line format, the escaping of values and the choice of file; it
// does not decide which events happen (the pipeline and the queue do) and it
// does not rotate or remove old files.
package lifecycle

import (
	"fmt"
	"strconv"
	"time"
)

// Events, the names of contract section 5.
const (
	JobReceived     = "JOB_RECEIVED"
	JobRejected     = "JOB_REJECTED"
	EnrollConfirmed = "ENROLL_CONFIRMED"
	EnrollTimeout   = "ENROLL_TIMEOUT"
	DownloadStart   = "DOWNLOAD_START"
	DownloadSuccess = "DOWNLOAD_SUCCESS"
	DownloadFailed  = "DOWNLOAD_FAILED"
	UploadSuccess   = "UPLOAD_SUCCESS"
	UploadFailed    = "UPLOAD_FAILED"
	WebhookSent     = "WEBHOOK_SENT"
	WebhookFailed   = "WEBHOOK_FAILED"
	TaskCompleted   = "TASK_COMPLETED"
	TaskFailed      = "TASK_FAILED"
	TaskRetry       = "TASK_RETRY"
	TaskRecovered   = "TASK_RECOVERED"
	TaskReconciled  = "TASK_RECONCILED"
	TaskDeferred    = "TASK_DEFERRED"
	IntakePaused    = "INTAKE_PAUSED"
	IntakeResumed   = "INTAKE_RESUMED"
)

// Field is one "[Key: value]" of a line, written in the order given.
type Field struct {
	Key, Value string
}

// F makes a Field from any value: a time.Duration is written as whole
// seconds ("49s", "90s", never "1m30s"); a *int64 (a nullable id such as an
// order id) as its number or "null"; anything else as fmt's %v.
func F(key string, value any) Field {
	switch v := value.(type) {
	case string:
		return Field{key, v}
	case time.Duration:
		return Field{key, strconv.FormatInt(int64(v.Round(time.Second)/time.Second), 10) + "s"}
	case int64:
		return Field{key, strconv.FormatInt(v, 10)}
	case int:
		return Field{key, strconv.Itoa(v)}
	case *int64:
		if v == nil {
			return Field{key, "null"}
		}
		return Field{key, strconv.FormatInt(*v, 10)}
	default:
		return Field{key, fmt.Sprint(v)}
	}
}
