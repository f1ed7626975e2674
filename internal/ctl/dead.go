package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/rdb"
)

// DeadEntry is one entry of dl:dead.
//
// Its Index counts from the oldest entry, 1 first. Workers LPUSH new entries at
// the other end, so an entry's index does not change while new ones arrive; it
// changes only when an older entry is requeued or purged. `dead list` shows it and
// `dead requeue` takes it.
type DeadEntry struct {
	Index int `json:"index"`
	// ID names the entry by its contents (a digest): unlike its Index, it
	// never names another entry, so a page shown a while ago requeues what it
	// showed or nothing.
	ID      string `json:"id"`
	TaskID  int64  `json:"taskId"` // 0 when the payload names no task
	Payload string `json:"payload"`
	Reason  string `json:"reason"`
	At      string `json:"at"`
	Worker  string `json:"worker"`
	// Raw is the entry itself when it is not the contract's JSON object (written
	// by hand, or by another program); such an entry cannot be requeued.
	Raw string `json:"raw,omitempty"`

	entry string // the list element, for LREM
}

// DeadList is what `workerctl dead list` shows.
type DeadList struct {
	Total   int64       `json:"total"`
	Entries []DeadEntry `json:"entries"` // oldest first
}

// deadEntries reads the whole dead-letter list, oldest first, indexed.
func (t *Tool) deadEntries(ctx context.Context) ([]DeadEntry, error) {
	raw, err := t.Redis.DeadList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeadEntry, 0, len(raw))
	for i, r := range raw {
		out = append(out, parseDead(i+1, r))
	}
	return out, nil
}

func parseDead(index int, entry string) DeadEntry {
	e := DeadEntry{Index: index, ID: Digest(entry), entry: entry}
	var d rdb.Dead
	if err := json.Unmarshal([]byte(entry), &d); err != nil || d.Payload == "" {
		e.Raw = entry
		e.Reason = "(not a dead-letter entry)"
		return e
	}
	e.Payload, e.Reason, e.At, e.Worker = d.Payload, d.Reason, d.At, d.Worker
	e.TaskID = job.TaskID([]byte(d.Payload))
	return e
}

// DeadList lists the dead letters, oldest first; limit > 0 keeps the newest limit
// of them.
func (t *Tool) DeadList(ctx context.Context, limit int) (*DeadList, error) {
	entries, err := t.deadEntries(ctx)
	if err != nil {
		return nil, err
	}
	l := &DeadList{Total: int64(len(entries)), Entries: entries}
	if limit > 0 && len(entries) > limit {
		l.Entries = entries[len(entries)-limit:]
	}
	return l, nil
}

// WriteText renders the list for a person.
func (l *DeadList) WriteText(w io.Writer) error {
	if l.Total == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "#\tTASK\tAT\tWORKER\tREASON")
	for _, e := range l.Entries {
		task := "-"
		if e.TaskID > 0 {
			task = strconv.FormatInt(e.TaskID, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Index, task, dash(e.At), dash(e.Worker), oneLine(e.Reason, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if shown := int64(len(l.Entries)); shown < l.Total {
		fmt.Fprintf(w, "%s, the newest %d shown.\n", deadLetters(l.Total), shown)
	} else {
		fmt.Fprintf(w, "%s.\n", deadLetters(l.Total))
	}
	_, err := fmt.Fprintln(w, "Requeue with `workerctl dead requeue N` (N from the # column), `--task ID` or `--all`.")
	return err
}

// Requeued is what `workerctl dead requeue` did.
type Requeued struct {
	Queue    string        `json:"queue"`
	Requeued []DeadEntry   `json:"requeued"`
	Skipped  []SkippedDead `json:"skipped"`
}

// SkippedDead is an entry that was not requeued, and why.
type SkippedDead struct {
	Index  int    `json:"index"`
	TaskID int64  `json:"taskId"`
	Reason string `json:"reason"`
}

// Selection says which dead letters to requeue: Indexes (as `dead list` shows
// them), IDs (DeadEntry.ID), every entry of TaskID, or All.
type Selection struct {
	Indexes []int
	IDs     []string
	TaskID  int64
	All     bool
}

// Digest names a value by its contents: 16 hex digits of its SHA-256.
func Digest(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:8])
}

// DeadRequeue pushes the original payload of each selected dead letter back onto
// the queue (LPUSH, as the web app does), oldest first, and removes the entry.
// An index that does not exist is an error and nothing is requeued; an entry
// whose payload names no task (it would be rejected again) is skipped and
// reported.
func (t *Tool) DeadRequeue(ctx context.Context, sel Selection) (*Requeued, error) {
	entries, err := t.deadEntries(ctx)
	if err != nil {
		return nil, err
	}
	chosen, err := choose(entries, sel)
	if err != nil {
		return nil, err
	}
	r := &Requeued{Queue: t.Redis.Queue(), Requeued: []DeadEntry{}, Skipped: []SkippedDead{}}
	for _, e := range chosen {
		switch {
		case e.Raw != "":
			r.Skipped = append(r.Skipped, SkippedDead{Index: e.Index, Reason: "not a dead-letter entry: no payload to push; remove it with `dead purge`"})
			continue
		case e.TaskID <= 0:
			r.Skipped = append(r.Skipped, SkippedDead{Index: e.Index, Reason: "its payload names no task: the worker would reject it again"})
			continue
		}
		ok, err := t.Redis.RequeueDead(ctx, e.entry, e.Payload, e.TaskID)
		if err != nil {
			return r, fmt.Errorf("dead letter #%d: %w", e.Index, err)
		}
		if !ok {
			r.Skipped = append(r.Skipped, SkippedDead{Index: e.Index, TaskID: e.TaskID, Reason: "gone from the list meanwhile (requeued or purged by someone else)"})
			continue
		}
		r.Requeued = append(r.Requeued, e)
	}
	return r, nil
}

// choose returns the entries sel names, oldest first.
func choose(entries []DeadEntry, sel Selection) ([]DeadEntry, error) {
	var chosen []DeadEntry
	switch {
	case sel.All:
		chosen = entries
	case sel.TaskID > 0:
		for _, e := range entries {
			if e.TaskID == sel.TaskID {
				chosen = append(chosen, e)
			}
		}
		if len(chosen) == 0 {
			return nil, fmt.Errorf("no dead letter of task %d", sel.TaskID)
		}
	case len(sel.IDs) > 0:
		return pickIDs(entries, sel.IDs)
	default:
		if len(sel.Indexes) == 0 {
			return nil, errors.New("name the entries to requeue: indexes from `dead list`, --task ID or --all")
		}
		picked := map[int]bool{}
		for _, i := range sel.Indexes {
			if i < 1 || i > len(entries) {
				return nil, fmt.Errorf("no dead letter #%d: the list holds %d (see `workerctl dead list`)", i, len(entries))
			}
			if !picked[i] {
				picked[i] = true
			}
		}
		for _, e := range entries { // oldest first, whatever order they were named in
			if picked[e.Index] {
				chosen = append(chosen, e)
			}
		}
	}
	return chosen, nil
}

// pickIDs returns the entries named by ids, oldest first; an id that names
// none is an error (the entry was requeued or purged meanwhile).
func pickIDs(entries []DeadEntry, ids []string) ([]DeadEntry, error) {
	var chosen []DeadEntry
	for _, e := range entries {
		if slices.Contains(ids, e.ID) {
			chosen = append(chosen, e)
		}
	}
	for _, id := range ids {
		if !slices.ContainsFunc(chosen, func(e DeadEntry) bool { return e.ID == id }) {
			return nil, fmt.Errorf("no dead letter %s: requeued or purged meanwhile", id)
		}
	}
	return chosen, nil
}

// WriteText renders the requeue for a person.
func (r *Requeued) WriteText(w io.Writer) error {
	for _, e := range r.Requeued {
		fmt.Fprintf(w, "requeued #%d (task %s) onto %s\n", e.Index, taskText(e.TaskID), r.Queue)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped #%d (task %s): %s\n", s.Index, taskText(s.TaskID), s.Reason)
	}
	if len(r.Requeued) == 0 && len(r.Skipped) == 0 {
		fmt.Fprintln(w, "no dead letters")
	}
	return nil
}

func taskText(id int64) string {
	if id <= 0 {
		return "?"
	}
	return strconv.FormatInt(id, 10)
}

// Purged is what `workerctl dead purge` did.
type Purged struct {
	Purged int64 `json:"purged"`
}

// DeadPurge deletes the dead-letter list and says how many entries it held.
func (t *Tool) DeadPurge(ctx context.Context) (*Purged, error) {
	n, err := t.Redis.PurgeDead(ctx)
	if err != nil {
		return nil, err
	}
	return &Purged{Purged: n}, nil
}

// WriteText renders the purge for a person.
func (p *Purged) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "purged %s\n", deadLetters(p.Purged))
	return err
}

// deadLetters is "1 dead letter", "2 dead letters".
func deadLetters(n int64) string {
	if n == 1 {
		return "1 dead letter"
	}
	return fmt.Sprintf("%d dead letters", n)
}
