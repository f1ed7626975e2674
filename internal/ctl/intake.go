package ctl

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coursedl/worker/internal/rdb"
)

// Intake is what `workerctl pause` and `workerctl resume` did: the pauses set
// or lifted, by worker ("*" for every worker).
type Intake struct {
	Paused  map[string]string `json:"paused"`  // the pauses in force now
	Lifted  map[string]string `json:"lifted"`  // resume: the pauses it lifted
	Setting string            `json:"setting"` // pause: the worker paused ("*" for all)
}

// Pause stops intake of worker (every worker when empty) for reason: the
// workers fetch no new job, and running tasks finish. Each paused worker writes
// an INTAKE_PAUSED line when it sees it (within a few seconds).
func (t *Tool) Pause(ctx context.Context, worker, reason string) (*Intake, error) {
	if worker == "" {
		worker = rdb.AllWorkers
	}
	if reason == "" {
		reason = "operator"
	} else {
		reason = "operator: " + reason
	}
	if _, err := t.Redis.Pause(ctx, worker, reason); err != nil {
		return nil, err
	}
	paused, err := t.Redis.Pauses(ctx)
	if err != nil {
		return nil, err
	}
	return &Intake{Paused: paused, Lifted: map[string]string{}, Setting: worker}, nil
}

// Resume lifts the pauses of the workers named, or every pause (an operator's,
// or a breaker's) when none is.
func (t *Tool) Resume(ctx context.Context, workers ...string) (*Intake, error) {
	lifted, err := t.Redis.Resume(ctx, workers...)
	if err != nil {
		return nil, err
	}
	paused, err := t.Redis.Pauses(ctx)
	if err != nil {
		return nil, err
	}
	return &Intake{Paused: paused, Lifted: lifted}, nil
}

// WriteText renders the pauses for a person.
func (r *Intake) WriteText(w io.Writer) error {
	for _, who := range slices.Sorted(maps.Keys(r.Lifted)) {
		fmt.Fprintf(w, "resumed %s (was paused: %s)\n", workerText(who), r.Lifted[who])
	}
	if r.Setting != "" {
		fmt.Fprintf(w, "paused %s: no new job is taken; running tasks finish\n", workerText(r.Setting))
	}
	if len(r.Paused) == 0 {
		_, err := fmt.Fprintln(w, "intake: every worker takes jobs")
		return err
	}
	var b strings.Builder
	for _, who := range slices.Sorted(maps.Keys(r.Paused)) {
		fmt.Fprintf(&b, "  %s: %s\n", workerText(who), r.Paused[who])
	}
	_, err := fmt.Fprintf(w, "paused now:\n%sResume with `workerctl resume` (all) or `workerctl resume WORKER`.\n", b.String())
	return err
}

func workerText(who string) string {
	if who == rdb.AllWorkers {
		return "every worker"
	}
	return "worker " + who
}

func (m *cli) pauseCmd() *cobra.Command {
	var worker, reason string
	c := &cobra.Command{
		Use:   "pause",
		Short: "Stop the workers (or one, --worker) taking new jobs; running tasks finish",
		Args:  cobra.NoArgs,
		RunE: m.run(false, func(ctx context.Context, t *Tool, _ []string) (Report, error) {
			return t.Pause(ctx, worker, reason)
		}),
	}
	c.Flags().StringVar(&worker, "worker", "", "pause only this worker id")
	c.Flags().StringVar(&reason, "reason", "", "why, for the INTAKE_PAUSED lines and /readyz")
	return c
}

func (m *cli) resumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resume [WORKER...]",
		Short: "Let the workers take jobs again: every pause (an operator's or a breaker's), or those of the workers named",
		RunE: m.run(false, func(ctx context.Context, t *Tool, args []string) (Report, error) {
			return t.Resume(ctx, args...)
		}),
	}
}
