package lifecycle

import (
	"errors"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	at := time.Date(2026, 11, 28, 20, 0, 49, 900_000_000, time.UTC)
	tests := []struct {
		name   string
		t      time.Time
		event  string
		taskID int64
		fields []Field
		want   string
	}{
		{
			name: "contract example", t: at, event: DownloadSuccess, taskID: 17,
			fields: []Field{F("OrderId", int64(12)), F("Duration", 49*time.Second)},
			want:   "2026-11-28T20:00:49Z [DOWNLOAD_SUCCESS] [TaskId: 17] [OrderId: 12] [Duration: 49s]",
		},
		{
			name: "no task", t: at, event: JobRejected,
			fields: []Field{F("Reason", "bad json")},
			want:   "2026-11-28T20:00:49Z [JOB_REJECTED] [Reason: bad json]",
		},
		{
			name: "no fields", t: at, event: TaskRecovered, taskID: 3,
			want: "2026-11-28T20:00:49Z [TASK_RECOVERED] [TaskId: 3]",
		},
		{
			name: "other zone shown in UTC", t: at.In(time.FixedZone("UTC-5", -5*3600)), event: JobReceived, taskID: 1,
			want: "2026-11-28T20:00:49Z [JOB_RECEIVED] [TaskId: 1]",
		},
		{
			name: "escapes", t: at, event: TaskFailed, taskID: 9,
			fields: []Field{F("Error", "exit 1: [x] C:\\tmp\nnext"), F("Folder", "a]b")},
			want:   `2026-11-28T20:00:49Z [TASK_FAILED] [TaskId: 9] [Error: exit 1: [x\] C:\\tmp\nnext] [Folder: a\]b]`,
		},
		{
			name: "field order kept", t: at, event: WebhookFailed, taskID: 4,
			fields: []Field{{"Z", "1"}, {"A", "2"}, {"M", ""}},
			want:   "2026-11-28T20:00:49Z [WEBHOOK_FAILED] [TaskId: 4] [Z: 1] [A: 2] [M: ]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendLine(nil, tt.t, tt.event, tt.taskID, tt.fields)); got != tt.want {
				t.Fatalf("Format =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain value", "plain value"},
		{`back\slash`, `back\\slash`},
		{"close]bracket", `close\]bracket`},
		{"open[bracket", "open[bracket"},
		{"line\nbreak", `line\nbreak`},
		{"crlf\r\n", `crlf\r\n`},
		{"tab\there", `tab\there`},
		{"nul\x00esc\x1b[0m del\x7f", `nul\x00esc\x1b[0m del\x7f`},
		{"bad utf8 \xff\xfe", `bad utf8 \xff\xfe`},
		{"next line \u0085 sep \u2028 para \u2029", `next line \x85 sep \u2028 para \u2029`},
		{"unicode: Go In Depth – café ✓", "unicode: Go In Depth – café ✓"},
		{`\]`, `\\\]`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := string(appendEscaped(nil, tt.in)); got != tt.want {
				t.Fatalf("appendEscaped(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestF(t *testing.T) {
	order := int64(12)
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"seconds", 49 * time.Second, "49s"},
		{"minutes as seconds", 90 * time.Second, "90s"},
		{"hours as seconds", 2*time.Hour + 3*time.Second, "7203s"},
		{"rounded", 1500 * time.Millisecond, "2s"},
		{"zero duration", time.Duration(0), "0s"},
		{"int", 12, "12"},
		{"int64", int64(-3), "-3"},
		{"string", "x", "x"},
		{"error", errors.New("boom"), "boom"},
		{"nil", nil, "<nil>"},
		{"float", 42.5, "42.5"},
		{"nullable id", &order, "12"},
		{"null id", (*int64)(nil), "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := F("K", tt.value); got != (Field{"K", tt.want}) {
				t.Fatalf("F(%v) = %+v, want value %q", tt.value, got, tt.want)
			}
		})
	}
}
