package lifecycle

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestTaskLines(t *testing.T) {
	dir := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 20, 0, 0, 0, time.UTC) }
	write := func(d int, lines ...string) {
		t.Helper()
		var b []byte
		for _, l := range lines {
			b = append(b, l+"\n"...)
		}
		if err := os.WriteFile(Path(dir, day(d)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Day 1 holds an old line of task 17, beyond a day without any: not read.
	write(1, "2026-11-01T20:00:00Z [JOB_RECEIVED] [TaskId: 17]")
	write(2, "2026-11-02T20:00:00Z [JOB_RECEIVED] [TaskId: 18]")
	write(3, "2026-11-03T20:00:00Z [JOB_RECEIVED] [TaskId: 17]",
		"2026-11-03T20:00:01Z [JOB_RECEIVED] [TaskId: 170]",
		`2026-11-03T20:00:02Z [JOB_REJECTED] [Reason: a value [TaskId: 17]]`,
		`2026-11-03T20:00:03Z [ODD\] [TaskId: 17\]] [TaskId: 17]`)
	write(4, "2026-11-04T20:00:00Z [DOWNLOAD_START] [TaskId: 17]",
		"2026-11-04T20:00:09Z [TASK_COMPLETED] [TaskId: 17] [Duration: 9s]")
	got, err := TaskLines(dir, 17, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2026-11-03T20:00:00Z [JOB_RECEIVED] [TaskId: 17]",
		`2026-11-03T20:00:03Z [ODD\] [TaskId: 17\]] [TaskId: 17]`,
		"2026-11-04T20:00:00Z [DOWNLOAD_START] [TaskId: 17]",
		"2026-11-04T20:00:09Z [TASK_COMPLETED] [TaskId: 17] [Duration: 9s]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("TaskLines = %q\nwant %q", got, want)
	}
	if got, _ := TaskLines(dir, 17, 1); !slices.Equal(got, want[3:]) {
		t.Fatalf("TaskLines max 1 = %q", got)
	}
	if got, err := TaskLines(filepath.Join(dir, "none"), 17, 0); err != nil || got != nil {
		t.Fatalf("no files: %q %v", got, err)
	}
}
