package progress_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// clock is the fixed time of the tests' events: 20:00:00.7 in UTC+1, published as
// 19:00:00Z (UTC, whole seconds).
var clock = time.Date(2026, 11, 28, 20, 0, 0, 700_000_000, time.FixedZone("CET", 3600))

const clockText = "2026-11-28T19:00:00Z"

// newPublisher returns a Publisher on a private Redis database with the fixed clock.
func newPublisher(t *testing.T) (*progress.Publisher, *redis.Client) {
	t.Helper()
	rc := testutil.Redis(t)
	p := progress.NewPublisher(rdb.New(rc, rdb.Options{}), zap.NewNop())
	p.Now = func() time.Time { return clock }
	return p, rc
}

func ptr(f float64) *float64 { return &f }

func TestPublishEventJSON(t *testing.T) {
	p, rc := newPublisher(t)
	tests := []struct {
		name string
		ev   progress.Event // TaskID is set by the test
		want map[string]any // the JSON as decoded into a map
	}{
		{
			name: "all fields",
			ev:   progress.Event{Stage: progress.StageDownloading, Percent: ptr(42.3), Speed: "1.23MiB/s", ETA: "00:07"},
			want: map[string]any{"stage": "downloading", "percent": 42.3, "speed": "1.23MiB/s", "eta": "00:07", "at": clockText},
		},
		{
			name: "zero percent is known",
			ev:   progress.Event{Stage: progress.StageUploading, Percent: ptr(0)},
			want: map[string]any{"stage": "uploading", "percent": 0.0, "at": clockText},
		},
		{
			name: "stage only",
			ev:   progress.Event{Stage: progress.StageWaitingEnrollment},
			want: map[string]any{"stage": "waiting_enrollment", "at": clockText},
		},
		{
			name: "time given",
			ev:   progress.Event{Stage: progress.StageNotifying, At: time.Date(2026, 11, 28, 20, 0, 49, 999, time.UTC)},
			want: map[string]any{"stage": "notifying", "at": "2026-11-28T20:00:49Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newTaskID()
			sub := subscribe(t, rc, id)
			ev := tt.ev
			ev.TaskID = id
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Publish(ctx, ev); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			got := sub.waitFor(t, id, "any stage", func(progress.Event) bool { return true })

			var m map[string]any
			if err := json.Unmarshal(got[0].raw, &m); err != nil {
				t.Fatalf("event %s: %v", got[0].raw, err)
			}
			want := maps.Clone(tt.want)
			want["taskId"] = float64(id) // a JSON number
			if !maps.Equal(m, want) {
				t.Errorf("event %s\n got %v\nwant %v", got[0].raw, m, want)
			}
			checkHash(t, rc, id, got[0].raw)
			checkTTL(t, rc, id, progress.ActiveTTL)
		})
	}
}

// TestPublishReplacesHash: the hash holds exactly the latest event, without the
// optional fields of an earlier one.
func TestPublishReplacesHash(t *testing.T) {
	p, rc := newPublisher(t)
	id := newTaskID()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, ev := range []progress.Event{
		{TaskID: id, Stage: progress.StageDownloading, Percent: ptr(100), Speed: "1.00MiB/s", ETA: "00:00"},
		{TaskID: id, Stage: progress.StageNotifying},
	} {
		if err := p.Publish(ctx, ev); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	got, err := rc.HGetAll(ctx, rdb.ProgressKey(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"taskId": strconv.FormatInt(id, 10), "stage": "notifying", "at": clockText}
	if !maps.Equal(got, want) {
		t.Errorf("hash %v, want %v", got, want)
	}
}

func TestPublishRejectsBadTaskID(t *testing.T) {
	p, _ := newPublisher(t)
	if err := p.Publish(context.Background(), progress.Event{Stage: progress.StageDownloading}); err == nil {
		t.Error("Publish of task 0: no error")
	}
}

// checkHash compares the task's hash with the JSON of its latest event.
func checkHash(t *testing.T, rc *redis.Client, id int64, last []byte) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(last, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			want[k] = v
		case float64:
			want[k] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			t.Fatalf("event field %s is a %T", k, v)
		}
	}
	got, err := rc.HGetAll(context.Background(), rdb.ProgressKey(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("hash %s = %v\nwant (latest event) %v", rdb.ProgressKey(id), got, want)
	}
}

// checkTTL asserts the task's hash expires within a minute under ttl.
func checkTTL(t *testing.T, rc *redis.Client, id int64, ttl time.Duration) {
	t.Helper()
	got, err := rc.TTL(context.Background(), rdb.ProgressKey(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got <= ttl-time.Minute || got > ttl {
		t.Errorf("TTL of %s = %s, want within a minute under %s", rdb.ProgressKey(id), got, ttl)
	}
}

// stagesOf returns the stages of events in order, each run of one stage once.
func stagesOf(evs []received) []string {
	var out []string
	for _, r := range evs {
		if len(out) == 0 || out[len(out)-1] != r.ev.Stage {
			out = append(out, r.ev.Stage)
		}
	}
	return slices.Clip(out)
}
