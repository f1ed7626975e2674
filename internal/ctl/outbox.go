package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// GivenUpEvent is a webhook event the outbox gave up on: the web app refused it
// until the retry schedule ran out. It is kept for an operator to redeliver.
type GivenUpEvent struct {
	ID        string `json:"id"` // its webhook-id
	TaskID    int64  `json:"taskId"`
	Type      string `json:"type"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError"`
}

// OutboxList is what `workerctl outbox list` shows.
type OutboxList struct {
	Waiting int64          `json:"waiting"` // events due or retrying
	GivenUp []GivenUpEvent `json:"givenUp"` // the one given up last first
}

// OutboxList lists the webhook events given up on, and counts those waiting.
func (t *Tool) OutboxList(ctx context.Context) (*OutboxList, error) {
	d, err := t.Redis.Depths(ctx)
	if err != nil {
		return nil, err
	}
	events, err := t.Redis.GivenUp(ctx)
	if err != nil {
		return nil, err
	}
	l := &OutboxList{Waiting: d.Outbox, GivenUp: make([]GivenUpEvent, 0, len(events))}
	for _, e := range events {
		l.GivenUp = append(l.GivenUp, GivenUpEvent{ID: e.ID, TaskID: e.TaskID, Type: e.Type, Attempts: e.Attempts, LastError: e.LastError})
	}
	return l, nil
}

// WriteText renders the list for a person.
func (l *OutboxList) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "webhook events waiting: %d\n", l.Waiting)
	if len(l.GivenUp) == 0 {
		_, err := fmt.Fprintln(w, "none given up")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "WEBHOOK-ID\tTASK\tTYPE\tATTEMPTS\tLAST ERROR")
	for _, e := range l.GivenUp {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.ID, taskText(e.TaskID), dash(e.Type), e.Attempts, oneLine(e.LastError, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "Redeliver with `workerctl outbox redeliver WEBHOOK-ID...` or `--all`.")
	return err
}

// Redelivered is what `workerctl outbox redeliver` did.
type Redelivered struct {
	Redelivered []string `json:"redelivered"` // webhook-ids due again, attempts reset
}

// OutboxRedeliver makes the given-up events named (every one with all) due
// again at once, under their own webhook-id, with their attempts reset. An id
// that is not among the given-up events is an error, and nothing is redelivered.
func (t *Tool) OutboxRedeliver(ctx context.Context, ids []string, all bool) (*Redelivered, error) {
	events, err := t.Redis.GivenUp(ctx)
	if err != nil {
		return nil, err
	}
	given := map[string]bool{}
	for _, e := range events {
		given[e.ID] = true
		if all {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) == 0 && !all {
		return nil, errors.New("name the events to redeliver: webhook-ids from `outbox list`, or --all")
	}
	for _, id := range ids {
		if !given[id] {
			return nil, fmt.Errorf("no given-up webhook event %q (see `workerctl outbox list`)", id)
		}
	}
	r := &Redelivered{Redelivered: []string{}}
	for _, id := range ids {
		if err := t.Redis.RequeueEvent(ctx, id); err != nil {
			return r, err
		}
		r.Redelivered = append(r.Redelivered, id)
	}
	return r, nil
}

// WriteText renders the redelivery for a person.
func (r *Redelivered) WriteText(w io.Writer) error {
	if len(r.Redelivered) == 0 {
		_, err := fmt.Fprintln(w, "none given up: nothing to redeliver")
		return err
	}
	for _, id := range r.Redelivered {
		fmt.Fprintf(w, "redelivering %s: due now, attempts reset\n", id)
	}
	return nil
}

func (m *cli) outboxCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "outbox",
		Short: "Webhook events the web app never accepted: list, redeliver",
	}
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "The events given up on (refused until the retry schedule ran out), and how many wait",
		Args:  cobra.NoArgs,
		RunE: m.run(false, func(ctx context.Context, t *Tool, _ []string) (Report, error) {
			return t.OutboxList(ctx)
		}),
	})
	var all bool
	redeliver := &cobra.Command{
		Use:   "redeliver [WEBHOOK-ID...]",
		Short: "Send given-up events again, under their own webhook-id, on the retry schedule afresh",
		RunE: m.run(false, func(ctx context.Context, t *Tool, args []string) (Report, error) {
			return t.OutboxRedeliver(ctx, args, all)
		}),
	}
	redeliver.Flags().BoolVar(&all, "all", false, "redeliver every given-up event")
	c.AddCommand(redeliver)
	return c
}
