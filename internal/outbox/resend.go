package outbox

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/coursedl/worker/internal/notify"
)

// Resend puts event ev in the outbox under id, due at once, unless the outbox
// has an event under id already (staged by a run, or waiting for its next
// attempt: that one keeps its body); it reports whether it did. The reconciler
// sends again this way the events that Redis lost, each under the id it had, so
// that the web app can tell a repeat.
func (d *Deliverer) Resend(ctx context.Context, id string, ev notify.Event) (bool, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("outbox: %w", err)
	}
	ok, err := d.Redis.ResendEvent(ctx, id, ev.TaskID, ev.Type, body)
	if ok {
		d.Wake()
	}
	return ok, err
}
