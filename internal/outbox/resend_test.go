package outbox

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/testutil"
)

// TestResendSendsWithItsIDOnce: an event Redis lost is sent again under its
// own id; resending one the outbox still holds changes nothing.
func TestResendSendsWithItsIDOnce(t *testing.T) {
	_, d, rec := setup(t)
	ctx := context.Background()
	due(t, d, "msg_waiting", event(2))
	// Not due for an hour: as after a failed attempt.
	if err := d.Redis.RetryEvent(ctx, "msg_waiting", 1, "503", time.Hour); err != nil {
		t.Fatal(err)
	}
	run(t, d)
	ok, err := d.Resend(ctx, "msg_task1_completed", event(1))
	if err != nil || !ok {
		t.Fatalf("resend: %v %v", ok, err)
	}
	if ok, err := d.Resend(ctx, "msg_waiting", event(2)); err != nil || ok {
		t.Fatalf("resend of an event in the outbox: %v %v", ok, err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 1 }, "one delivery")
	testutil.Consistently(t, 200*time.Millisecond, func() bool { return rec.count() == 1 }, "one delivery only")
	if got := rec.sent(); !slices.Equal(got, []string{"msg_task1_completed"}) {
		t.Fatalf("sent %q", got)
	}
	if w, _ := depths(t, d); w != 1 {
		t.Fatalf("%d waiting, want the hour-long one only", w)
	}
}
