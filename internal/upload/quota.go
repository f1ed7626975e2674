package upload

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/coursedl/worker/internal/process"
)

// DefaultQuotaWait is how long uploads wait after a quota error when Gate.Wait
// is zero; upload.quota_wait's default.
const DefaultQuotaWait = time.Hour

// quotaMarkers are the reasons Google's APIs give for a quota or rate limit
// (googleapi's "Error 403: ..., <reason>"), as rclone logs them.
var quotaMarkers = [][]byte{
	[]byte("uploadLimitExceeded"),
	[]byte("userRateLimitExceeded"),
	[]byte("storageQuotaExceeded"),
	[]byte("rateLimitExceeded"),
}

// ErrQuotaWait is the cause of the quota error an upload gets while the Gate is
// closed: rclone was not run.
var ErrQuotaWait = errors.New("not run: this host waits for the destination's quota")

// IsQuota reports whether err is an upload refused for the destination's quota
// or rate limit, by rclone or by the Gate: the task should wait (until the
// Error's Until) without using up an attempt, the files not yet moved kept for
// the upload.
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

// Gate holds back the uploads of this host once the destination reported a
// quota or rate limit: until Wait has passed, Upload returns a quota error at
// once, without running rclone. Uploads already running go on. The zero Gate is
// open and ready; it is safe for concurrent use and must not be copied.
type Gate struct {
	// Wait is upload.quota_wait; DefaultQuotaWait when zero.
	Wait time.Duration
	// Now is the clock; time.Now when nil (tests set it).
	Now func() time.Time

	mu    sync.Mutex
	until time.Time
	limit string // the marker that closed the gate
}

// Until returns when the gate opens again, or the zero time while it is open.
func (g *Gate) Until() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.now().Before(g.until) {
		return time.Time{}
	}
	return g.until
}

// trip closes the gate for Wait from now, or keeps it closed until later if it
// was already, and returns when it opens.
func (g *Gate) trip(limit string) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	wait := g.Wait
	if wait <= 0 {
		wait = DefaultQuotaWait
	}
	if until := g.now().Add(wait); until.After(g.until) {
		g.until, g.limit = until, limit
	}
	return g.until
}

// refuse returns the quota error of an upload that must not run now, nil when
// the gate is open.
func (g *Gate) refuse() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.now().Before(g.until) {
		return nil
	}
	return &Error{Op: "move", Limit: g.limit, Until: g.until, Err: ErrQuotaWait}
}

func (g *Gate) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}
