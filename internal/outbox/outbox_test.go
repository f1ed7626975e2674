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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/notify"
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

func setup(t *testing.T, statuses ...int) (*Store, *Deliverer, *receiver) {
	t.Helper()
	signer, err := notify.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	rec := &receiver{statuses: statuses, signer: signer}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	s := NewStore(testutil.Redis(t))
	d := (&Deliverer{
		Store:    s,
		Sender:   &notify.Sender{URL: srv.URL, Signer: signer, Timeout: 2 * time.Second},
		Schedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		Timeout:  2 * time.Second,
		Poll:     10 * time.Millisecond,
	}).Init()
	return s, d, rec
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
	s, d, rec := setup(t, 503, 503)
	if err := s.Add(context.Background(), "msg_a", event(1), time.Now()); err != nil {
		t.Fatal(err)
	}
	run(t, d)
	testutil.Eventually(t, 10*time.Second, func() bool {
		w, _, _ := s.Depth(context.Background())
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

func TestRefusedIsBuriedNotDropped(t *testing.T) {
	s, d, rec := setup(t, 400)
	ctx := context.Background()
	s.Add(ctx, "msg_b", event(2), time.Now())
	run(t, d)
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, dead, _ := s.Depth(ctx)
		return dead == 1
	}, "refused event in %s", DeadKey)
	if rec.count() != 1 {
		t.Fatalf("a refused event was sent %d times", rec.count())
	}
	e, err := s.Get(ctx, "msg_b")
	if err != nil || e.Attempts != 1 || e.LastError == "" {
		t.Fatalf("buried entry = %+v, %v", e, err)
	}
	// An operator redelivers it.
	if err := s.Requeue(ctx, "msg_b", time.Now()); err != nil {
		t.Fatal(err)
	}
	d.Wake()
	testutil.Eventually(t, 10*time.Second, func() bool { return rec.count() == 2 }, "redelivery")
}

func TestExhaustedIsBuried(t *testing.T) {
	s, d, rec := setup(t, 500, 500, 500, 500, 500)
	ctx := context.Background()
	s.Add(ctx, "msg_c", event(3), time.Now())
	run(t, d)
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, dead, _ := s.Depth(ctx)
		return dead == 1
	}, "exhausted event in %s", DeadKey)
	if rec.count() != 4 { // the first attempt and one per delay of the schedule
		t.Fatalf("%d attempts, want 4", rec.count())
	}
}

func TestAddIsIdempotent(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	s.Add(ctx, "msg_d", event(4), time.Now())
	s.Retry(ctx, "msg_d", 2, "503", time.Now().Add(time.Hour))
	s.Add(ctx, "msg_d", event(4), time.Now())
	e, _ := s.Get(ctx, "msg_d")
	if e.Attempts != 2 {
		t.Fatalf("a second Add reset the event: %+v", e)
	}
}

// Two deliverers on one outbox send each event once.
func TestTwoDeliverersSendOnce(t *testing.T) {
	s, d1, rec := setup(t)
	d2 := (&Deliverer{Store: s, Sender: d1.Sender, Schedule: d1.Schedule, Timeout: d1.Timeout, Poll: 5 * time.Millisecond}).Init()
	ctx := context.Background()
	for i := range 50 {
		s.Add(ctx, "msg_"+string(rune('A'+i)), event(int64(i+10)), time.Now())
	}
	run(t, d1)
	run(t, d2)
	testutil.Eventually(t, 10*time.Second, func() bool {
		w, _, _ := s.Depth(ctx)
		return w == 0
	}, "outbox emptied")
	if n := rec.count(); n != 50 {
		t.Fatalf("%d requests for 50 events", n)
	}
}

// A staged event is not sent until released, and a crash between the row and the
// release is repaired by ReleaseStaged.
func TestStageRelease(t *testing.T) {
	s, d, rec := setup(t)
	ctx := context.Background()
	ev := event(77)
	if err := s.Stage(ctx, "msg_s", ev); err != nil {
		t.Fatal(err)
	}
	run(t, d)
	d.Wake()
	// Nothing is due: a pass of the deliverer sends nothing. Wait for a few
	// polls (Poll is 10 ms) by watching a second, released event go out.
	s.Add(ctx, "msg_other", event(78), time.Now())
	d.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 1 }, "the released event sent")
	if rec.count() != 1 || rec.ids[0] != "msg_other" {
		t.Fatalf("sent %v: the staged event went out before its release", rec.ids)
	}
	ok, err := s.ReleaseStaged(ctx, 77, time.Now())
	if err != nil || !ok {
		t.Fatalf("ReleaseStaged = %v, %v", ok, err)
	}
	d.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 2 }, "the staged event sent after release")
	if ok, _ := s.ReleaseStaged(ctx, 77, time.Now()); ok {
		t.Fatal("released twice")
	}
}

// Release hands the event to the deliverer claimed: it is sent once, at once,
// and no other deliverer takes it in between; a second release sends nothing.
func TestDelivererRelease(t *testing.T) {
	s, d, rec := setup(t)
	ctx := context.Background()
	if err := d.Stage(ctx, "msg_h", event(81)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := d.Release(ctx, "msg_h", 81, now); err != nil {
		t.Fatal(err)
	}
	// Not yet sent (Run is not running): claimed, so a pass elsewhere finds
	// nothing due, and the staged mark is gone.
	if got, _, _ := s.Claim(ctx, now.Add(time.Second), time.Minute, 10); len(got) != 0 {
		t.Fatalf("another deliverer claimed %+v", got)
	}
	if s.rdb.HExists(ctx, StagedKey, "81").Val() {
		t.Fatal("still marked staged after the release")
	}
	run(t, d)
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 1 }, "the released event sent")
	testutil.Eventually(t, 5*time.Second, func() bool { w, _, _ := s.Depth(ctx); return w == 0 }, "the outbox empty once sent")
	if err := d.Release(ctx, "msg_h", 81, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.ReleaseStaged(ctx, 81, time.Now()); ok || err != nil {
		t.Fatalf("ReleaseStaged after the release = %v, %v", ok, err)
	}
	// A marker due now: the look that sends it would send msg_h too, had the
	// second release made it due again.
	if err := s.Add(ctx, "msg_mark", event(90), time.Now()); err != nil {
		t.Fatal(err)
	}
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
	s, d, rec := setup(t)
	ctx := context.Background()
	d.Now = func() time.Time { return time.Now().Add(d.lease() - time.Second) } // within Timeout of the claim's end
	if err := d.Stage(ctx, "msg_late", event(82)); err != nil {
		t.Fatal(err)
	}
	if err := d.Release(ctx, "msg_late", 82, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The claim has ended for another deliverer, which sends the event.
	other := (&Deliverer{Store: s, Sender: d.Sender, Schedule: d.Schedule, Timeout: d.Timeout,
		Now: func() time.Time { return time.Now().Add(d.lease() + time.Second) }}).Init()
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
	if err := d.Release(ctx, "msg_mark", 90, d.Now()); err != nil {
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
	s, d, rec := setup(t)
	ctx := context.Background()
	const n = 100 // the hand-off holds 64
	for i := range n {
		id := fmt.Sprintf("msg_b%d", i)
		if err := d.Stage(ctx, id, event(int64(1000+i))); err != nil {
			t.Fatal(err)
		}
		if err := d.Release(ctx, id, int64(1000+i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if w, _, _ := s.Depth(ctx); w != n {
		t.Fatalf("%d events waiting, want %d", w, n)
	}
	run(t, d)
	testutil.Eventually(t, 10*time.Second, func() bool { return rec.count() == n }, "all %d events sent", n)
	if w, _, _ := s.Depth(ctx); w != 0 {
		t.Fatalf("%d events left", w)
	}
}

// Claim returns each due event whole, and drops an id whose event is gone.
func TestClaimReturnsEvents(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	now := time.Now()
	if err := s.Add(ctx, "msg_e", event(5), now); err != nil {
		t.Fatal(err)
	}
	s.Retry(ctx, "msg_e", 2, "503 Service Unavailable", now)
	s.rdb.ZAdd(ctx, DueKey, redis.Z{Score: float64(now.UnixMilli()), Member: "msg_gone"})
	got, next, err := s.Claim(ctx, now.Add(time.Millisecond), time.Minute, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Claim = %+v, %v", got, err)
	}
	// The one event left is the one claimed, due again when its lease ends.
	if lease := now.Add(time.Millisecond + time.Minute); next.UnixMilli() != lease.UnixMilli() {
		t.Fatalf("next due %v, want the end of the lease %v", next, lease)
	}
	e := got[0]
	if e.ID != "msg_e" || e.TaskID != 5 || e.Type != notify.TypeCompleted || e.Attempts != 2 ||
		e.LastError != "503 Service Unavailable" || !strings.Contains(string(e.Body), `"taskId":5`) {
		t.Fatalf("claimed %+v", e)
	}
	if s.rdb.ZScore(ctx, DueKey, "msg_gone").Err() == nil {
		t.Fatal("an id without its event stays due")
	}
	if again, _, _ := s.Claim(ctx, now.Add(time.Millisecond), time.Minute, 10); len(again) != 0 {
		t.Fatalf("claimed twice within the lease: %+v", again)
	}
	s.Delivered(ctx, "msg_e")
	if _, next, err := s.Claim(ctx, now, time.Minute, 10); err != nil || !next.IsZero() {
		t.Fatalf("empty outbox: next due %v, %v; want none", next, err)
	}
}

// A retry is sent when it is due, not at the next look: with Poll an hour, the
// deliverer sleeps until the retry's time.
func TestDelivererWakesForTheNextRetry(t *testing.T) {
	s, d, rec := setup(t, http.StatusServiceUnavailable)
	d.Poll, d.Schedule = time.Hour, []time.Duration{300 * time.Millisecond}
	run(t, d)
	if err := s.Add(context.Background(), "msg_r", event(7), time.Now()); err != nil {
		t.Fatal(err)
	}
	d.Wake()
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count() == 2 }, "the retry about 300 ms after the 503")
}
