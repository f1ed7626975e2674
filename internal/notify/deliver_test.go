package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// short is a retry schedule fast enough for tests.
var short = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}

func TestDeliver(t *testing.T) {
	tests := []struct {
		name         string
		codes        []int
		schedule     []time.Duration
		wantAttempts int
		wantErr      bool
		permanent    bool
		exhausted    bool
	}{
		{name: "first try", codes: []int{200}, schedule: short, wantAttempts: 1},
		{name: "503 503 200", codes: []int{503, 503, 200}, schedule: short, wantAttempts: 3},
		{name: "429 then 204", codes: []int{429, 204}, schedule: short, wantAttempts: 2},
		{name: "408 then 200", codes: []int{408, 200}, schedule: short, wantAttempts: 2},
		{name: "400 is permanent", codes: []int{400, 200}, schedule: short, wantAttempts: 1, wantErr: true, permanent: true},
		{name: "exhausted", codes: []int{500}, schedule: short, wantAttempts: 4, wantErr: true, exhausted: true},
		{name: "no schedule", codes: []int{502, 200}, schedule: nil, wantAttempts: 1, wantErr: true, exhausted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, statuses(tt.codes...))
			id := NewID()
			var calls []int
			err := newSender(t, rc.srv.URL).Deliver(context.Background(), id, []byte(`{"taskId":17}`), tt.schedule,
				func(attempt int, _ error) { calls = append(calls, attempt) })

			if (err != nil) != tt.wantErr || IsPermanent(err) != tt.permanent || errors.Is(err, ErrExhausted) != tt.exhausted {
				t.Fatalf("Deliver = %v; want error %v, permanent %v, exhausted %v", err, tt.wantErr, tt.permanent, tt.exhausted)
			}
			if err != nil && strings.Contains(err.Error(), testKey) {
				t.Fatalf("error %q contains the secret", err)
			}
			hits := rc.seen()
			if len(hits) != tt.wantAttempts || len(calls) != tt.wantAttempts {
				t.Fatalf("%d requests, %d onAttempt calls; want %d", len(hits), len(calls), tt.wantAttempts)
			}
			for i, h := range hits {
				if h.id != id {
					t.Errorf("attempt %d: webhook-id %q, want %q", i+1, h.id, id)
				}
				if h.verifyErr != nil {
					t.Errorf("attempt %d: signature does not verify against its own timestamp: %v", i+1, h.verifyErr)
				}
				if calls[i] != i+1 {
					t.Errorf("onAttempt call %d got attempt %d", i, calls[i])
				}
			}
		})
	}
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name   string
		client *http.Client
	}{
		{"default client", nil},
		{"client that follows redirects", &http.Client{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSender(t, srv.URL+"/hook")
			s.Client = tc.client
			attempts := 0
			err := s.Deliver(context.Background(), NewID(), []byte(`{}`), short[:1], func(int, error) { attempts++ })
			var de *DeliveryError
			if !errors.As(err, &de) || de.Status != http.StatusFound || de.Permanent || !errors.Is(err, ErrExhausted) {
				t.Fatalf("Deliver = %v, want a transient 302 failure and an exhausted schedule", err)
			}
			if attempts != 2 {
				t.Fatalf("%d attempts, want 2", attempts)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("redirect target was hit %d times", n)
			}
		})
	}
}

func TestDeliverRetriesAfterTimeout(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select { // hang until the sender gives up
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	s := newSender(t, rc.srv.URL)
	s.Timeout = 50 * time.Millisecond

	var first error
	err := s.Deliver(context.Background(), NewID(), []byte(`{}`), short, func(n int, err error) {
		if n == 1 {
			first = err
		}
	})
	if err != nil {
		t.Fatalf("Deliver = %v, want success on the second attempt", err)
	}
	var de *DeliveryError
	if !errors.As(first, &de) || de.Status != 0 || de.Permanent || !errors.Is(first, context.DeadlineExceeded) {
		t.Fatalf("first attempt = %v, want a transient timeout", first)
	}
	if n := len(rc.seen()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestDeliverStopsWhenContextEnds(t *testing.T) {
	rc := newReceiver(t, statuses(http.StatusServiceUnavailable))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	start := time.Now()
	err := newSender(t, rc.srv.URL).Deliver(ctx, NewID(), []byte(`{}`), []time.Duration{time.Hour},
		func(int, error) { time.AfterFunc(20*time.Millisecond, cancel) }) // cancel during the hour's wait
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver = %v, want context.Canceled", err)
	}
	var de *DeliveryError
	if !errors.As(err, &de) || de.Status != http.StatusServiceUnavailable {
		t.Fatalf("Deliver = %v, want the last attempt's error kept", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("Deliver took %s after cancel", waited)
	}
}

func TestJitter(t *testing.T) {
	tests := []time.Duration{0, time.Nanosecond, 10 * time.Millisecond, 5 * time.Minute, 24 * time.Hour}
	for _, d := range tests {
		for range 200 {
			got := jitter(d)
			if lo, hi := d-d/10, d+d/10; got < lo || got > hi {
				t.Fatalf("jitter(%s) = %s, outside [%s, %s]", d, got, lo, hi)
			}
		}
	}
}
