package bench

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/coursedl/worker/internal/notify"
)

// hookSecret signs the bench's webhooks.
const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" //nolint:gosec // G101: made up for the bench's own worker and receiver

// hookServer is the web app's webhook endpoint: it verifies each signature, as the
// web app does, answers 200 and notes when each task's event arrived.
type hookServer struct {
	srv    *httptest.Server
	signer *notify.Signer

	mu      sync.Mutex
	arrived map[int64]time.Time
	waiting map[int64]chan struct{}
	bad     int // requests whose signature did not verify
}

func newHookServer() (*hookServer, error) {
	signer, err := notify.NewSigner(hookSecret)
	if err != nil {
		return nil, err
	}
	h := &hookServer{signer: signer, arrived: map[int64]time.Time{}, waiting: map[int64]chan struct{}{}}
	h.srv = httptest.NewServer(h)
	return h, nil
}

// URL is the endpoint, for webhook.url.
func (h *hookServer) URL() string { return h.srv.URL + "/hook" }

// Close stops the server.
func (h *hookServer) Close() { h.srv.Close() }

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	err := h.signer.Verify(r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body,
		r.Header.Get("webhook-signature"), at, time.Minute)
	var ev struct {
		TaskID int64 `json:"taskId"`
	}
	_ = json.Unmarshal(body, &ev)
	h.mu.Lock()
	if err != nil {
		h.bad++
	} else if _, seen := h.arrived[ev.TaskID]; !seen {
		h.arrived[ev.TaskID] = at
		if c, ok := h.waiting[ev.TaskID]; ok {
			close(c)
			delete(h.waiting, ev.TaskID)
		}
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// arrival returns a channel closed when the event of task id has arrived.
func (h *hookServer) arrival(id int64) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := make(chan struct{})
	if _, seen := h.arrived[id]; seen {
		close(c)
		return c
	}
	if old, ok := h.waiting[id]; ok {
		return old
	}
	h.waiting[id] = c
	return c
}

// at returns when the event of task id arrived.
func (h *hookServer) at(id int64) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.arrived[id]
}

// unverified counts requests whose signature failed.
func (h *hookServer) unverified() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bad
}
