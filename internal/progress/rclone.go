package progress

import (
	"bytes"
	"encoding/json"
	"math"
)

// rcloneLine is the part of an rclone --use-json-log line that ParseRclone reads.
type rcloneLine struct {
	Stats *struct {
		Bytes      int64    `json:"bytes"`
		TotalBytes int64    `json:"totalBytes"`
		Speed      float64  `json:"speed"` // bytes per second
		ETA        *float64 `json:"eta"`   // seconds, null while unknown
	} `json:"stats"`
}

var statsKey = []byte(`"stats"`)

// ParseRclone reads one line of `rclone --use-json-log --stats ...` output. A stats
// line carries a "stats" object; its update has Percent = bytes/totalBytes*100,
// rounded down to a tenth so that 100 means done (no percent while totalBytes is 0,
// as when rclone renames instead of copying), Speed like "1.23MiB/s" (empty while
// rclone reports 0), and ETA like "00:07", or "1:02:03" past an hour (empty while
// rclone reports null). A line that is not JSON, or JSON without stats, gives false.
func ParseRclone(line []byte) (Update, bool) {
	if !bytes.Contains(line, statsKey) {
		return Update{}, false
	}
	var l rcloneLine
	if err := json.Unmarshal(bytes.TrimSpace(line), &l); err != nil || l.Stats == nil {
		return Update{}, false
	}
	s := l.Stats
	// Counts below zero are not counts: taken as unknown.
	s.Bytes, s.TotalBytes = max(s.Bytes, 0), max(s.TotalBytes, 0)
	u := Update{Bytes: s.Bytes, TotalBytes: s.TotalBytes, Speed: formatSpeed(s.Speed)}
	if s.TotalBytes > 0 {
		p := float64(s.Bytes) / float64(s.TotalBytes) * 100
		u.Percent, u.HasPercent = clampPercent(math.Floor(p*10+1e-9)/10), true
	}
	if s.ETA != nil {
		u.ETA = formatETA(*s.ETA)
	}
	return u, true
}
