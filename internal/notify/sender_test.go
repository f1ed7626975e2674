package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSendHeaders(t *testing.T) {
	rc := newReceiver(t, statuses(http.StatusNoContent))
	s := newSender(t, rc.srv.URL)
	at := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	s.Now = func() time.Time { return at }
	body := []byte(`{"type":"task.completed","taskId":17}`)

	if err := s.Send(context.Background(), "msg_fixed", body); err != nil {
		t.Fatalf("Send: %v", err)
	}
	hits := rc.seen()
	if len(hits) != 1 {
		t.Fatalf("receiver saw %d requests, want 1", len(hits))
	}
	h := hits[0]
	if h.verifyErr != nil {
		t.Errorf("receiver could not verify: %v", h.verifyErr)
	}
	if h.id != "msg_fixed" || h.ts != strconv.FormatInt(at.Unix(), 10) || h.contentType != "application/json" {
		t.Errorf("headers id=%q ts=%q content-type=%q", h.id, h.ts, h.contentType)
	}
	if string(h.body) != string(body) {
		t.Errorf("body = %s, want %s", h.body, body)
	}
}

func TestSendClassifies(t *testing.T) {
	tests := []struct {
		code      int
		wantErr   bool
		permanent bool
	}{
		{http.StatusOK, false, false},
		{http.StatusAccepted, false, false},
		{http.StatusNoContent, false, false},
		{http.StatusMovedPermanently, true, false},
		{http.StatusNotModified, true, false},
		{http.StatusBadRequest, true, false},
		{http.StatusUnauthorized, true, false},
		{http.StatusNotFound, true, false},
		{http.StatusRequestTimeout, true, false},
		{http.StatusGone, true, false},
		{http.StatusUnprocessableEntity, true, false},
		{http.StatusTooManyRequests, true, false},
		{http.StatusInternalServerError, true, false},
		{http.StatusBadGateway, true, false},
		{http.StatusServiceUnavailable, true, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			rc := newReceiver(t, statuses(tt.code))
			err := newSender(t, rc.srv.URL).Send(context.Background(), NewID(), []byte(`{}`))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Send = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send error %T is not a *DeliveryError", err)
			}
			if de.Status != tt.code || de.Permanent != tt.permanent || IsPermanent(err) != tt.permanent {
				t.Fatalf("DeliveryError{Status: %d, Permanent: %v}, want {%d, %v}", de.Status, de.Permanent, tt.code, tt.permanent)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}

func TestSendKeepsShortSnippet(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("database\x1b[31m down\r\n"))
		_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
	})
	err := newSender(t, rc.srv.URL).Send(context.Background(), NewID(), []byte(`{}`))
	var de *DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("Send = %v, want a *DeliveryError", err)
	}
	if len(de.Body) > maxSnippet || !strings.HasPrefix(de.Body, "database [31m down") {
		t.Fatalf("Body = %q (%d bytes), want the cleaned start of the answer, at most %d bytes", de.Body, len(de.Body), maxSnippet)
	}
	if !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "database") {
		t.Fatalf("error %q should name the status and the answer", err)
	}
}

func TestSendNoAnswer(t *testing.T) {
	rc := newReceiver(t, statuses(http.StatusOK))
	url := rc.srv.URL
	rc.srv.Close() // nothing listens there any more
	err := newSender(t, url).Send(context.Background(), NewID(), []byte(`{}`))
	var de *DeliveryError
	if !errors.As(err, &de) || de.Status != 0 || de.Permanent {
		t.Fatalf("Send = %#v, want a transient *DeliveryError with Status 0", err)
	}
}

func TestSendBadURLIsPermanent(t *testing.T) {
	err := newSender(t, "http://[::1]:namedport/").Send(context.Background(), NewID(), []byte(`{}`))
	if !IsPermanent(err) {
		t.Fatalf("Send = %v, want a permanent error", err)
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
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
			err := s.Send(context.Background(), NewID(), []byte(`{}`))
			var de *DeliveryError
			if !errors.As(err, &de) || de.Status != http.StatusFound || de.Permanent {
				t.Fatalf("Send = %v, want a transient 302 failure", err)
			}
			if n := elsewhere.Load(); n != 0 {
				t.Fatalf("redirect target was hit %d times", n)
			}
		})
	}
}

func TestSendTimesOut(t *testing.T) {
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

	first := s.Send(context.Background(), NewID(), []byte(`{}`))
	if err := s.Send(context.Background(), NewID(), []byte(`{}`)); err != nil {
		t.Fatalf("second Send = %v, want success", err)
	}
	var de *DeliveryError
	if !errors.As(first, &de) || de.Status != 0 || de.Permanent || !errors.Is(first, context.DeadlineExceeded) {
		t.Fatalf("first attempt = %v, want a transient timeout", first)
	}
	if n := len(rc.seen()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}
