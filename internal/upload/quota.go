package upload

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/coursedl/worker/internal/process"
)

// quotaMarkers are the reasons Google's APIs give for a quota or rate limit
// (googleapi's "Error 403: ..., <reason>"), as rclone logs them.
var quotaMarkers = [][]byte{
	[]byte("uploadLimitExceeded"),
	[]byte("userRateLimitExceeded"),
	[]byte("storageQuotaExceeded"),
	[]byte("rateLimitExceeded"),
}

// IsQuota reports whether err is an upload refused for the destination's quota
// or rate limit: the task should wait without using up an attempt, the files
// not yet moved kept for the upload.
func IsQuota(err error) bool {
	var ue *Error
	return errors.As(err, &ue) && ue.Quota()
}

// quotaScan watches the lines of one rclone move for a quota marker. OnLine
// calls are serialized and all happen before process.Run returns, so limit
// needs no lock.
type quotaScan struct {
	limit string // the first marker seen
}

// wrap returns an OnLine that scans each line, then hands it to next.
func (q *quotaScan) wrap(next func(process.Stream, []byte)) func(process.Stream, []byte) {
	return func(s process.Stream, line []byte) {
		if q.limit == "" {
			q.limit = quotaMarker(line)
		}
		if next != nil {
			next(s, line)
		}
	}
}

// quotaMarker returns the quota marker a line of rclone's log reports, "" if
// none. A JSON line counts when the marker is in its message and its level is
// above info: the stats lines (info) repeat the last error, and a file's name
// could hold a marker. A line that is not JSON (rclone's final "Failed to
// move: ...") counts whenever it holds one.
func quotaMarker(line []byte) string {
	for _, m := range quotaMarkers {
		if !bytes.Contains(line, m) {
			continue
		}
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) != nil {
			return string(m)
		}
		if entry.Level != "info" && entry.Level != "debug" && bytes.Contains([]byte(entry.Msg), m) {
			return string(m)
		}
	}
	return ""
}

// exitedNonZero reports whether rclone ended by itself with a non-zero status:
// not killed, timed out or canceled. Only such an end is classified by markers.
func exitedNonZero(err error) bool {
	var pe *process.ExitError
	return errors.As(err, &pe) && pe.ExitCode > 0 && pe.Signal == 0 && !pe.TimedOut && !pe.Canceled
}
