package outbox

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver answers with the statuses given, then 200, and records every request.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	ids      []string
	bodies   []string
	signer   *notify.Signer
	badSigs  int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	id := req.Header.Get("webhook-id")
	if r.signer.Verify(id, req.Header.Get("webhook-timestamp"), body, req.Header.Get("webhook-signature"), time.Now(), time.Minute) != nil {
		r.badSigs++
	}
	r.ids = append(r.ids, id)
	r.bodies = append(r.bodies, string(body))
	status := http.StatusOK
	if len(r.statuses) > 0 {
		status, r.statuses = r.statuses[0], r.statuses[1:]
	}
	w.WriteHeader(status)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

// sent returns the webhook-ids received, in order.
func (r *receiver) sent() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// setup returns a Deliverer on a Redis database of the test's own (rc, for
// looking at keys directly) sending to a receiver.
func setup(t *testing.T, statuses ...int) (*redis.Client, *Deliverer, *receiver) {
	t.Helper()
	signer, err := notify.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	rec := &receiver{statuses: statuses, signer: signer}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	rc := testutil.Redis(t)
	d := NewDeliverer(Params{
		Redis:    rdb.New(rc, rdb.Options{Queue: "queue:downloads"}),
		Sender:   &notify.Sender{URL: srv.URL, Signer: signer, Timeout: 2 * time.Second},
		Schedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		Timeout:  2 * time.Second,
		Poll:     10 * time.Millisecond,
	})
	return rc, d, rec
}

// due puts ev in the outbox as id, due now, as a task and its recovery do:
// staged, then released (not handed to the deliverer: a look finds it).
func due(t *testing.T, d *Deliverer, id string, ev notify.Event) {
	t.Helper()
	ctx := context.Background()
	if err := d.Stage(ctx, id, ev); err != nil {
		t.Fatal(err)
	}
	if err := d.Redis.ReleaseEvent(ctx, id, ev.TaskID); err != nil {
		t.Fatal(err)
	}
}

// depths reads how many events wait in the outbox and how many are buried.
func depths(t *testing.T, d *Deliverer) (waiting, dead int64) {
	t.Helper()
	n, err := d.Redis.Depths(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n.Outbox, n.OutboxDead
}

func run(t *testing.T, d *Deliverer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func event(taskID int64) notify.Event {
	return notify.Event{Type: notify.TypeCompleted, TaskID: taskID, Email: "b@x.io", DriveURL: "https://d/1", Folder: "F", Timestamp: "2026-11-28T20:00:49Z"}
}

func TestRetriedUntilAcceptedWithOneID(t *testing.T) {
	_, d, rec := setup(t, 503, 503)
	due(t, d, "msg_a", event(1))
	run(t, d)
	testutil.Eventually(t, 10*time.Second, func() bool {
		w, _ := depths(t, d)
		return rec.count() == 3 && w == 0
	}, "3 attempts and an empty outbox; got %d attempts", rec.count())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, id := range rec.ids {
		if id != "msg_a" {
			t.Fatalf("webhook-ids %v, want msg_a on every attempt", rec.ids)
		}
	}
	if rec.badSigs != 0 {
		t.Fatalf("%d attempts with a bad signature", rec.badSigs)
	}
}

func TestRefusedIsRetriedThenBuriedNotDropped(t *testing.T) {
	// A 4xx is retried like any answer but 2xx (contract section 4), and kept
	// for an operator once the schedule is over.
	_, d, rec := setup(t, 400, 404, 401, 410)
	ctx := context.Background()
	due(t, d, "msg_b", event(2))
	run(t, d)
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, dead := depths(t, d)
		return dead == 1
	}, "refused event in %s", rdb.OutboxDeadKey)
	if rec.count() != 4 {
		t.Fatalf("a refused event was sent %d times, want 4 (the first attempt and one per delay)", rec.count())
	}
	e, err := d.Redis.Event(ctx, "msg_b")
	if err != nil || e.Attempts != 4 || !strings.Contains(e.LastError, "410") {
		t.Fatalf("buried entry = %+v, %v", e, err)
	}
	// An operator redelivers it.
	if err := d.Redis.RequeueEvent(ctx, "msg_b"); err != nil {
		t.Fatal(err)
	}
	d.Wake()
	testutil.Eventually(t, 10*time.Second, func() bool { return rec.count() == 5 }, "redelivery")
}

func TestExhaustedIsBuried(t *testing.T) {
	_, d, rec := setup(t, 500, 500, 500, 500, 500)
	due(t, d, "msg_c", event(3))
	run(t, d)
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, dead := depths(t, d)
		return dead == 1
	}, "exhausted event in %s", rdb.OutboxDeadKey)
	if rec.count() != 4 { // the first attempt and one per delay of the schedule
		t.Fatalf("%d attempts, want 4", rec.count())
	}
}

// Two deliverers on one outbox send each event once.
func TestTwoDeliverersSendOnce(t *testing.T) {
	_, d1, rec := setup(t)
	d2 := NewDeliverer(Params{Redis: d1.Redis, Sender: d1.Sender, Schedule: d1.Schedule, Timeout: d1.Timeout, Poll: 5 * time.Millisecond})
	for i := range 50 {
		due(t, d1, "msg_"+string(rune('A'+i)), event(int64(i+10)))
	}
	run(t, d1)
	run(t, d2)
	testutil.Eventually(t, 10*time.Second, func() bool {
		w, _ := depths(t, d1)
		return w == 0
	}, "outbox emptied")
	if n := rec.count(); n != 50 {
		t.Fatalf("%d requests for 50 events", n)
	}
}

// A staged event is not sent until released, and a crash between the row and the
// release is repaired by ReleaseStaged.
func TestStageRelease(t *testing.T) {
	_, d, rec := setup(t)
	ctx := context.Background()
	ev := event(77)
	if err := d.Stage(ctx, "msg_s", ev); err != nil {
		t.Fatal(err)
	}
	run(t, d)
	d.Wake()
	// Nothing is due: a pass of the deliverer sends nothing. Wait for a few
	// polls (Poll is 10 ms) by watching a second, released event go out.
	due(t, d, "msg_other", event(78))
	d.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 1 }, "the released event sent")
	if got := rec.sent(); len(got) != 1 || got[0] != "msg_other" {
		t.Fatalf("sent %v: the staged event went out before its release", got)
	}
	ok, err := d.Redis.ReleaseStaged(ctx, 77)
	if err != nil || !ok {
		t.Fatalf("ReleaseStaged = %v, %v", ok, err)
	}
	d.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 2 }, "the staged event sent after release")
	if ok, _ := d.Redis.ReleaseStaged(ctx, 77); ok {
		t.Fatal("released twice")
	}
}

// Release hands the event to the deliverer claimed: it is sent once, at once,
// and no other deliverer takes it in between; a second release sends nothing.
func TestDelivererRelease(t *testing.T) {
	rc, d, rec := setup(t)
	ctx := context.Background()
	if err := d.Stage(ctx, "msg_h", event(81)); err != nil {
		t.Fatal(err)
	}
	if err := d.Release(ctx, "msg_h", 81); err != nil {
		t.Fatal(err)
	}
	// Not yet sent (Run is not running): claimed, so a pass elsewhere finds
	// nothing due, and the staged mark is gone.
	if got, _, err := d.Redis.ClaimEvents(ctx, time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("another deliverer claimed %+v, %v", got, err)
	}
	if rc.HExists(ctx, rdb.OutboxStagedKey, "81").Val() {
		t.Fatal("still marked staged after the release")
	}
	run(t, d)
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 1 }, "the released event sent")
	testutil.Eventually(t, 5*time.Second, func() bool { w, _ := depths(t, d); return w == 0 }, "the outbox empty once sent")
	if err := d.Release(ctx, "msg_h", 81); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.ReleaseStaged(ctx, 81); ok || err != nil {
		t.Fatalf("ReleaseStaged after the release = %v, %v", ok, err)
	}
	// A marker due now: the look that sends it would send msg_h too, had the
	// second release made it due again.
	due(t, d, "msg_mark", event(90))
	d.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 2 }, "the marker sent")
	if got := rec.sent(); !slices.Equal(got, []string{"msg_h", "msg_mark"}) {
		t.Fatalf("sent %v, want msg_h once, then the marker", got)
	}
}

// An event handed over by Release and left waiting past its claim (a slow web
// app ahead of it) is not tried by the hand-off: another deliverer may have
// claimed and sent it meanwhile, and the web app would get it twice.
func TestDelivererSkipsAHandOffPastItsClaim(t *testing.T) {
	rc, d, rec := setup(t)
	ctx := context.Background()
	var waited atomic.Int64 // how long the hand-off has waited, as the deliverer's clock tells
	d.Now = func() time.Time { return time.Now().Add(time.Duration(waited.Load())) }
	if err := d.Stage(ctx, "msg_late", event(82)); err != nil {
		t.Fatal(err)
	}
	if err := d.Release(ctx, "msg_late", 82); err != nil {
		t.Fatal(err)
	}
	waited.Store(int64(d.lease() - time.Second)) // within Timeout of the claim's end
	// The claim has ended, by Redis's clock, for another deliverer, which
	// sends the event.
	ended := rc.Time(ctx).Val().Add(-time.Second)
	rc.ZAddXX(ctx, rdb.OutboxKey, redis.Z{Score: float64(ended.UnixMilli()), Member: "msg_late"})
	other := NewDeliverer(Params{Redis: d.Redis, Sender: d.Sender, Schedule: d.Schedule, Timeout: d.Timeout})
	if _, err := other.pass(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(); n != 1 {
		t.Fatalf("%d deliveries by the other deliverer, want 1", n)
	}
	run(t, d)
	// A marker handed over after it: hand-offs are taken in order, so once the
	// marker is sent, the late one has been dropped or sent again.
	if err := d.Stage(ctx, "msg_mark", event(90)); err != nil {
		t.Fatal(err)
	}
	if err := d.Release(ctx, "msg_mark", 90); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() >= 2 }, "the marker sent")
	if got := rec.sent(); !slices.Equal(got, []string{"msg_late", "msg_mark"}) {
		t.Fatalf("sent %v, want msg_late once (by the other deliverer), then the marker", got)
	}
}

// More released events than the deliverer holds: the rest wait in the outbox
// as due, and every one is sent.
func TestDelivererReleaseWhenBusy(t *testing.T) {
	_, d, rec := setup(t)
	ctx := context.Background()
	const n = 100 // the hand-off holds 64
	for i := range n {
		id := fmt.Sprintf("msg_b%d", i)
		if err := d.Stage(ctx, id, event(int64(1000+i))); err != nil {
			t.Fatal(err)
		}
		if err := d.Release(ctx, id, int64(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if w, _ := depths(t, d); w != n {
		t.Fatalf("%d events waiting, want %d", w, n)
	}
	run(t, d)
	testutil.Eventually(t, 10*time.Second, func() bool { return rec.count() == n }, "all %d events sent", n)
	if w, _ := depths(t, d); w != 0 {
		t.Fatalf("%d events left", w)
	}
}

// A retry is sent when it is due, not at the next look: with Poll an hour, the
// deliverer sleeps until the retry's time.
func TestDelivererWakesForTheNextRetry(t *testing.T) {
	_, d, rec := setup(t, http.StatusServiceUnavailable)
	d.Poll, d.Schedule = time.Hour, []time.Duration{300 * time.Millisecond}
	run(t, d)
	due(t, d, "msg_r", event(7))
	d.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 2 }, "the retry about 300 ms after the 503")
}
