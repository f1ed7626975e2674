package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/progress"
)

// Server-sent event streams. Each holds a subscription to dl:progress (one
// Redis connection) for as long as the page is open, so MaxStreams bounds
// them. They end with the request: the page closing, or Serve shutting down.

// keepAlive is how often an idle stream sends a comment, so that proxies and
// browsers keep it open.
const keepAlive = 15 * time.Second

// eventStream writes server-sent events.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// openStream takes a stream token and starts the stream's answer; it answers
// 503 and returns false when MaxStreams are open. Call the release func when
// the stream ends.
func (c *Console) openStream(w http.ResponseWriter) (*eventStream, func(), bool) {
	select {
	case c.streams <- struct{}{}:
	default:
		http.Error(w, "too many live pages open: close some and reload", http.StatusServiceUnavailable)
		return nil, nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &eventStream{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.Flush() // the client may have gone; the next write says so
	return s, func() { <-c.streams }, true
}

// send writes one event of type event (none: "message") with data, one line.
func (s *eventStream) send(event string, data []byte) error {
	var b bytes.Buffer
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", event)
	}
	b.WriteString("data: ")
	b.Write(bytes.ReplaceAll(data, []byte("\n"), []byte(`\n`))) // JSON holds no raw line break; be sure
	b.WriteString("\n\n")
	if _, err := s.w.Write(b.Bytes()); err != nil {
		return err
	}
	return s.rc.Flush()
}

// comment writes a keep-alive comment.
func (s *eventStream) comment() error {
	if _, err := s.w.Write([]byte(": keep-alive\n\n")); err != nil {
		return err
	}
	return s.rc.Flush()
}

// progressEvents streams every progress event of dl:progress as a "progress"
// event: the running page's bars move with them. Each event is decoded and
// encoded again, so only the contract's fields reach the page.
func (c *Console) progressEvents(w http.ResponseWriter, r *http.Request, _ who) {
	ctx := r.Context()
	sub, err := c.p.Tool.Redis.SubscribeProgress(ctx)
	if err != nil {
		http.Error(w, "cannot subscribe to the progress events: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer func() { _ = sub.Close() }() // only read from
	s, release, ok := c.openStream(w)
	if !ok {
		return
	}
	defer release()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if s.comment() != nil {
				return
			}
		case payload, ok := <-sub.Events():
			if !ok {
				return
			}
			var ev progress.Event
			if json.Unmarshal([]byte(payload), &ev) != nil || ev.TaskID <= 0 {
				continue
			}
			b, _ := json.Marshal(ev) // an Event always encodes
			if s.send("progress", b) != nil {
				return
			}
		}
	}
}

// taskEvents follows one task as `workerctl tail --json` does, with the same
// code (ctl.Tool.Tail): its last log lines and its latest progress, then
// every line appended to its log on this host and every progress event, until
// it completes or fails. Each JSON line of the tail is one event:
// {"log": LINE}, {"progress": EVENT}, and last {"end": STAGE, "taskId": N}.
// E-mail addresses are masked for a visitor who has not logged in.
func (c *Console) taskEvents(w http.ResponseWriter, r *http.Request, p who) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "not a task id", http.StatusBadRequest)
		return
	}
	s, release, ok := c.openStream(w)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out := &lineEvents{s: s, mask: !p.seesEmail(), cancel: cancel}
	go keepStreamAlive(ctx, out)
	_, _ = c.p.Tool.Tail(ctx, id, out, ctl.TailOptions{Lines: 200, JSON: true})
	_ = out.flush() // an error ends the stream, which ends anyway
}

// keepStreamAlive sends a keep-alive comment every keepAlive until ctx ends.
func keepStreamAlive(ctx context.Context, out *lineEvents) {
	t := time.NewTicker(keepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			out.keepAlive()
		}
	}
}
