package notify

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// testSecret and the values below are the Standard Webhooks test vector.
const (
	testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	testKey    = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// hit is one request seen by a receiver.
type hit struct {
	id, ts, sig, contentType string
	body                     []byte
	verifyErr                error
}

// receiver is a web app stand-in: it verifies every request the way the web
// app does and answers with respond(n) for the n-th request (from 1).
type receiver struct {
	srv    *httptest.Server
	signer *Signer

	mu   sync.Mutex
	hits []hit
}

// newReceiver starts a receiver on an httptest server stopped at cleanup.
func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{signer: mustSigner(t, testSecret)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := hit{
			id:          r.Header.Get("webhook-id"),
			ts:          r.Header.Get("webhook-timestamp"),
			sig:         r.Header.Get("webhook-signature"),
			contentType: r.Header.Get("Content-Type"),
			body:        body,
		}
		h.verifyErr = rc.signer.Verify(h.id, h.ts, body, h.sig, time.Now(), time.Minute)
		rc.mu.Lock()
		rc.hits = append(rc.hits, h)
		n := len(rc.hits)
		rc.mu.Unlock()
		respond(n, w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// seen returns a copy of the requests received so far.
func (rc *receiver) seen() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

// statuses answers the n-th request with codes[n-1], repeating the last one.
func statuses(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		code := codes[len(codes)-1]
		if n <= len(codes) {
			code = codes[n-1]
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

// mustSigner builds a Signer or fails the test.
func mustSigner(t *testing.T, secret string) *Signer {
	t.Helper()
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

// newSender returns a Sender aimed at rc with a short per-attempt timeout.
func newSender(t *testing.T, url string) *Sender {
	t.Helper()
	return &Sender{URL: url, Signer: mustSigner(t, testSecret), Timeout: 2 * time.Second}
}
