package outbox

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// gateSender accepts every event, but only once its gate opens.
type gateSender struct {
	gate    chan struct{}
	sending chan struct{} // closed when the first Send begins
	sends   atomic.Int32
}

func (g *gateSender) Send(ctx context.Context, _ string, _ []byte) error {
	if g.sends.Add(1) == 1 {
		close(g.sending)
	}
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// An attempt under way when the worker stops is finished and recorded: the web
// app accepted the event, so it must not be sent again.
func TestStopFinishesAttemptUnderWay(t *testing.T) {
	g := &gateSender{gate: make(chan struct{}), sending: make(chan struct{})}
	d := NewDeliverer(Params{Redis: rdb.New(testutil.Redis(t), rdb.Options{}), Sender: g,
		Schedule: []time.Duration{time.Second}, Timeout: 5 * time.Second, Poll: 10 * time.Millisecond})
	ctx := context.Background()
	due(t, d, "msg_a", event(1))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(rctx) }()
	<-g.sending
	cancel() // the worker stops while the web app is answering
	time.Sleep(50 * time.Millisecond)
	close(g.gate)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if n, err := d.Redis.Depths(ctx); err != nil || n.Outbox != 0 || n.OutboxDead != 0 {
		t.Fatalf("outbox after the stop: %d waiting, %d dead, %v; want the event recorded as delivered", n.Outbox, n.OutboxDead, err)
	}
	if n := g.sends.Load(); n != 1 {
		t.Fatalf("%d sends, want 1", n)
	}
}
