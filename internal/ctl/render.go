package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/coursedl/worker/internal/progress"
)

// Report is what a command found: it renders itself for a person or as JSON.
type Report interface {
	WriteText(w io.Writer) error
}

// writeJSON writes v as one indented JSON document, without HTML escaping (an
// e-mail address or a URL stays as it is).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a tabwriter for aligned columns.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// ago renders a duration as "3s ago", "2m05s ago", "1h02m ago".
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
}

// oneLine makes s fit one line of at most n characters: line breaks and tabs
// become spaces, and a longer text ends with "…".
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// dash shows "-" for an empty value.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// barWidth is the number of cells of a progress bar.
const barWidth = 24

// progressLine renders an event as one line:
//
//	downloading [#############-----------------]  42.3%  1.23MiB/s  eta 00:07
//
// Without a percent the bar is left out.
func progressLine(ev progress.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-11s", ev.Stage)
	if ev.Percent != nil {
		p := min(max(*ev.Percent, 0), 100)
		full := int(p / 100 * barWidth)
		fmt.Fprintf(&b, " [%s%s] %5.1f%%", strings.Repeat("#", full), strings.Repeat("-", barWidth-full), p)
	}
	if ev.Speed != "" {
		b.WriteString("  " + ev.Speed)
	}
	if ev.ETA != "" {
		b.WriteString("  eta " + ev.ETA)
	}
	return strings.TrimRight(b.String(), " ")
}
