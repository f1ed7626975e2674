package faults

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/notify"
)

// testSecret signs the worker's webhooks.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is the web app's webhook endpoint on a fixed loopback port, which
// the tests take down (connections refused) and bring back. It verifies every
// signature, answers 200 to a signed request and counts the deliveries of each
// webhook-id: the first one is the event accepted, any later one a
// redelivery, which the web app recognises by its id.
type receiver struct {
	t      *testing.T
	signer *notify.Signer
	addr   string

	mu       sync.Mutex
	srv      *http.Server
	served   chan struct{}
	events   map[string]notify.Event // by webhook-id, as first accepted
	count    map[string]int          // deliveries of each webhook-id answered 200
	order    []string                // webhook-ids in the order first accepted
	bad      []string                // requests refused: bad signature, bad body
	attempts int                     // requests that reached the handler
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	signer, err := notify.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{
		t:      t,
		signer: signer,
		addr:   "127.0.0.1:" + itoa(freePort(t)),
		events: map[string]notify.Event{},
		count:  map[string]int{},
	}
	r.up()
	t.Cleanup(r.down)
	return r
}

// URL is the webhook.url to configure.
func (r *receiver) URL() string { return "http://" + r.addr + "/hooks/worker" }

// up starts serving on the receiver's port.
func (r *receiver) up() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		return
	}
	var (
		lc  net.ListenConfig
		l   net.Listener
		err error
	)
	for i := 0; i < 100; i++ { // the port may linger a moment after down
		if l, err = lc.Listen(r.t.Context(), "tcp", r.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("webhook receiver: %v", err)
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.served = make(chan struct{})
	go func(srv *http.Server, served chan struct{}) {
		defer close(served)
		_ = srv.Serve(l)
	}(r.srv, r.served)
}

// down stops listening, lets requests under way finish (so none is both
// recorded and unanswered), and closes every connection: the worker's next
// attempts find the port closed.
func (r *receiver) down() {
	r.mu.Lock()
	srv, served := r.srv, r.served
	r.srv = nil
	r.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	<-served
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	verr := r.signer.Verify(id, req.Header.Get("webhook-timestamp"), body, req.Header.Get("webhook-signature"), time.Now(), 5*time.Minute)
	var ev notify.Event
	jerr := json.Unmarshal(body, &ev)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if err := errors.Join(verr, jerr); err != nil || id == "" {
		r.bad = append(r.bad, id+": "+errors.Join(verr, jerr).Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.count[id] == 0 {
		r.events[id] = ev
		r.order = append(r.order, id)
	}
	r.count[id]++
	w.WriteHeader(http.StatusOK)
}

// tally is what the receiver has seen.
type tally struct {
	events   map[string]notify.Event // accepted, by webhook-id
	count    map[string]int          // deliveries answered 200, by webhook-id
	bad      []string
	attempts int
}

func (r *receiver) tally() tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	tl := tally{events: map[string]notify.Event{}, count: map[string]int{}, bad: append([]string(nil), r.bad...), attempts: r.attempts}
	for id, ev := range r.events {
		tl.events[id] = ev
		tl.count[id] = r.count[id]
	}
	return tl
}

// ids returns the accepted webhook-ids of taskID's events of type typ.
func (tl tally) ids(taskID int64, typ string) []string {
	var out []string
	for id, ev := range tl.events {
		if ev.TaskID == taskID && ev.Type == typ {
			out = append(out, id)
		}
	}
	return out
}

// accepted counts the events accepted.
func (r *receiver) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}
