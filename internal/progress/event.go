package progress

import (
	"strconv"
	"time"
)

// Stage values of contract section 3, in the order a task normally passes them.
// StageCompleted and StageFailed end a task: nothing is published for it after them.
const (
	StageWaitingEnrollment = "waiting_enrollment"
	StageDownloading       = "downloading"
	StageUploading         = "uploading"
	StageNotifying         = "notifying"
	StageCompleted         = "completed"
	StageFailed            = "failed"
)

// IsFinal reports whether stage ends a task (completed or failed).
func IsFinal(stage string) bool { return stage == StageCompleted || stage == StageFailed }

// Event is the JSON of contract section 3:
//
//	{"taskId": 17, "stage": "downloading", "percent": 42.3, "speed": "1.23MiB/s", "eta": "00:07", "at": "2026-11-28T20:00:00Z"}
//
// taskId and percent are JSON numbers; percent, speed and eta are omitted when
// unknown (Percent is a pointer so that a known 0% is still sent). At is written as
// RFC 3339 in UTC with whole seconds once the event has gone through Publish (which
// also fills a zero At with the publisher's clock).
type Event struct {
	TaskID  int64     `json:"taskId"`
	Stage   string    `json:"stage"`
	Percent *float64  `json:"percent,omitempty"`
	Speed   string    `json:"speed,omitempty"`
	ETA     string    `json:"eta,omitempty"`
	At      time.Time `json:"at"`
}

// hash field names: the event's JSON keys.
const (
	fieldTaskID  = "taskId"
	fieldStage   = "stage"
	fieldPercent = "percent"
	fieldSpeed   = "speed"
	fieldETA     = "eta"
	fieldAt      = "at"
)

// fields returns the hash fields the event sets (values as strings, as the JSON
// would read them) and the optional fields it leaves out, which the hash must drop so
// that it holds exactly the latest event.
func (e Event) fields() (set []any, drop []string) {
	set = append(make([]any, 0, 12),
		fieldTaskID, strconv.FormatInt(e.TaskID, 10),
		fieldStage, e.Stage,
		fieldAt, e.At.Format(time.RFC3339),
	)
	if e.Percent != nil {
		set = append(set, fieldPercent, strconv.FormatFloat(*e.Percent, 'f', -1, 64))
	} else {
		drop = append(drop, fieldPercent)
	}
	if e.Speed != "" {
		set = append(set, fieldSpeed, e.Speed)
	} else {
		drop = append(drop, fieldSpeed)
	}
	if e.ETA != "" {
		set = append(set, fieldETA, e.ETA)
	} else {
		drop = append(drop, fieldETA)
	}
	return set, drop
}

// Update is what one output line says about progress. Fields the line does not give
// are zero: HasPercent false, Speed and ETA empty, Bytes and TotalBytes 0.
type Update struct {
	// Percent of the current file (Downloader) or of the whole transfer (rclone),
	// within 0..100; meaningful only when HasPercent is true.
	Percent    float64
	HasPercent bool
	// Speed as the tool prints it, e.g. "1.23MiB/s"; empty when unknown.
	Speed string
	// ETA as mm:ss, or h:mm:ss past an hour ("00:07", "01:02:03"); empty when unknown.
	ETA string
	// Bytes done and TotalBytes expected (an estimate when yt-dlp prints "of ~"),
	// when known; for metrics.
	Bytes, TotalBytes int64
	// Item and Items are yt-dlp's position in a playlist ("Downloading item 3 of
	// 42") when it downloads one; 0 otherwise.
	Item, Items int
}

// clampPercent keeps p within 0..100.
func clampPercent(p float64) float64 {
	switch {
	case p < 0 || p != p: // NaN counts as 0
		return 0
	case p > 100:
		return 100
	}
	return p
}

// FromFields reads the fields of a task's kept event (its Redis hash, as
// Publisher writes it) back into an event; nil when there are none.
func FromFields(h map[string]string) *Event {
	if len(h) == 0 {
		return nil
	}
	ev := &Event{Stage: h["stage"], Speed: h["speed"], ETA: h["eta"]}
	ev.TaskID, _ = strconv.ParseInt(h["taskId"], 10, 64)
	if p, err := strconv.ParseFloat(h["percent"], 64); err == nil {
		ev.Percent = &p
	}
	ev.At, _ = time.Parse(time.RFC3339, h["at"])
	return ev
}
