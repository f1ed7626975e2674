package notify

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEventJSON(t *testing.T) {
	order := int64(12)
	ended := time.Date(2026, 11, 28, 21, 0, 49, 987654321, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{
			name: "completed",
			ev: Event{Type: TypeCompleted, TaskID: 17, OrderID: &order, Email: "buyer@example.com",
				DriveURL: "https://drive.google.com/drive/folders/x", Folder: "Go In Depth",
				DurationSeconds: 49, Timestamp: FormatTime(ended)},
			want: `{"type":"task.completed","taskId":17,"orderId":12,"email":"buyer@example.com",` +
				`"driveUrl":"https://drive.google.com/drive/folders/x","folder":"Go In Depth",` +
				`"durationSeconds":49,"timestamp":"2026-11-28T20:00:49Z"}`,
		},
		{
			name: "failed without order",
			ev: Event{Type: TypeFailed, TaskID: 18, Email: "b@example.com", Folder: "task-18",
				Error: "enrollment required", DurationSeconds: 15, Timestamp: FormatTime(ended)},
			want: `{"type":"task.failed","taskId":18,"orderId":null,"email":"b@example.com",` +
				`"folder":"task-18","error":"enrollment required","durationSeconds":15,` +
				`"timestamp":"2026-11-28T20:00:49Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("json =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestEventIDsAreStable(t *testing.T) {
	if got := CompletedID(17); got != "msg_task17_completed" || got == CompletedID(18) {
		t.Fatalf("CompletedID(17) = %q, want one id per task", got)
	}
	a, b := FailedID(17, "download failed: exit 1"), FailedID(17, "download failed: exit 1")
	if a != b {
		t.Fatalf("FailedID of one failure differs across runs: %s, %s", a, b)
	}
	for _, other := range []string{FailedID(17, "enrollment required"), FailedID(18, "download failed: exit 1"), CompletedID(17)} {
		if other == a {
			t.Fatalf("FailedID(17, download failed) = %s collides with %s", a, other)
		}
	}
	if len(a) > 64 || a[:4] != "msg_" {
		t.Fatalf("FailedID = %q, want a short msg_ id", a)
	}
}
