package rdb_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// deadEntries decodes the dead-letter list, oldest first.
func deadEntries(t *testing.T, r *rdb.Client) []rdb.Dead {
	t.Helper()
	raw, err := r.DeadList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]rdb.Dead, 0, len(raw))
	for _, e := range raw {
		var d rdb.Dead
		if err := json.Unmarshal([]byte(e), &d); err != nil {
			t.Fatalf("dead entry %q: %v", e, err)
		}
		out = append(out, d)
	}
	return out
}

func TestDeadLetter(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w7"})
	rc.LPush(ctx, "q", `{"taskId": "x"}`)
	p, _ := r.Fetch(ctx, time.Second)
	at := time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
	if err := r.DeadLetter(ctx, p, "taskId: not a number", at); err != nil {
		t.Fatal(err)
	}
	want := []rdb.Dead{{Payload: `{"taskId": "x"}`, Reason: "taskId: not a number", At: "2026-11-28T20:00:00Z", Worker: "w7"}}
	if dead := deadEntries(t, r); !reflect.DeepEqual(dead, want) {
		t.Fatalf("dead = %+v", dead)
	}
	if n := rc.LLen(ctx, rdb.ProcessingKey("w7")).Val(); n != 0 {
		t.Fatalf("processing holds %d after dead letter", n)
	}
}

func TestDeadLetterKeepsAGiantJobWhole(t *testing.T) {
	ctx := context.Background()
	rc := testutil.Redis(t)
	r := rdb.New(rc, rdb.Options{Queue: "q", Worker: "w1"})
	giant := `{"taskId": 1, "pad": "` + strings.Repeat("\x01", 1<<20) + `"}`
	rc.LPush(ctx, "q", giant)
	p, _ := r.Fetch(ctx, time.Second)
	if err := r.DeadLetter(ctx, p, "payload too large", time.Now()); err != nil {
		t.Fatal(err)
	}
	d := deadEntries(t, r)
	if len(d) != 1 {
		t.Fatalf("%d dead entries, want 1", len(d))
	}
	if d[0].Payload != giant {
		t.Fatalf("dead entry holds %d bytes of a %d-byte job, want it whole", len(d[0].Payload), len(giant))
	}
	if rc.LLen(ctx, rdb.ProcessingKey("w1")).Val() != 0 {
		t.Fatal("giant job left in the processing list")
	}
}
