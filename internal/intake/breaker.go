package intake

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"go.uber.org/zap"
)

// streak is the run of downloader failures of one kind, task after task.
type streak struct {
	kind  string
	count int
}

// httpStatus finds the HTTP status a downloader reports ("HTTP Error 403:
// Forbidden", yt-dlp's; "403 Forbidden", "status 401", others').
// A bare "403:" is not enough: "Downloading lecture 401: Setting up" is a title.
var httpStatus = regexp.MustCompile(`(?i)(?:\bHTTP Error (401|403)\b|\bHTTP/\d(?:\.\d)? (401|403)\b|\bstatus[: ]+(401|403)\b|\b(401|403) (?:Unauthorized|Forbidden)\b)`)

// Kind names the kind of a downloader failure from its message and the end of
// its stderr, when it is one that fails every task alike on this host: the
// course site refusing us (HTTP 401 or 403: the cookies expired, the account
// was logged out). It returns "" for any other failure.
func Kind(message string, stderr []string) string {
	for _, s := range append([]string{message}, stderr...) {
		if m := httpStatus.FindStringSubmatch(s); m != nil {
			for _, code := range m[1:] {
				if code != "" {
					return "course site refused: HTTP " + code
				}
			}
		}
	}
	return ""
}

// DownloadFailed counts a task whose downloader failed with a failure of kind
// (from Kind; "" for any other). When BreakerFailures tasks in a row failed
// with the same kind, it pauses this worker's intake in Redis and reports true:
// the breaker tripped.
func (i *Intake) DownloadFailed(ctx context.Context, kind string) bool {
	i.mu.Lock()
	if kind == "" || kind != i.streak.kind {
		i.streak = streak{kind: kind}
	}
	if kind == "" {
		i.mu.Unlock()
		return false
	}
	i.streak.count++
	n, paused := i.streak.count, i.paused != ""
	i.mu.Unlock()
	if n < i.BreakerFailures || paused {
		return false // not yet; or intake is paused already, by us or an operator
	}
	why := fmt.Sprintf("%d tasks in a row failed in the downloader: %s (check download.cookies_file); resume with `workerctl resume`",
		n, strings.TrimPrefix(kind, "course site refused: "))
	if _, err := i.Redis.Pause(ctx, i.Redis.Worker(), why); err != nil {
		i.Log.Error("breaker tripped but the pause could not be written to Redis", zap.Error(err))
	}
	i.setPaused(why)
	return true
}

// DownloadSucceeded ends the run of failures: the downloader worked.
func (i *Intake) DownloadSucceeded() {
	i.mu.Lock()
	i.streak = streak{}
	i.mu.Unlock()
}
