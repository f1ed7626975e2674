package upload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Defaults of a Stream's zero StreamParams fields.
const (
	DefaultRetries      = 3
	DefaultRetryBackoff = 2 * time.Second
	DefaultMaxBatch     = 32
)

// File is one local file for a Stream: Source/Rel goes to Dest/Rel.
type File struct {
	Source string // the local folder it is under
	Dest   string // the destination folder, an rclone path
	Rel    string // slash-separated, under both
	Size   int64
}

// StreamParams configures a Stream.
type StreamParams struct {
	TaskID int64
	// Parallel is how many moves run at once, at most (upload.parallel); 1
	// when less.
	Parallel int
	// Move moves one batch (Uploader.MoveFiles, with the caller's checks and
	// logging around it). A batch holds files of one Source and Dest; a file
	// tried again goes alone.
	Move func(ctx context.Context, b Batch) error
	// Done is told of each file once: err nil when it is at the destination,
	// else why the Stream gave up on it (it is still in its Source). Calls
	// may come from several goroutines at once.
	Done func(f File, err error)
	// Retries is how many more times a file whose move failed for a
	// temporary reason (Error.Temporary) is tried, alone, each time after
	// twice the last wait, starting from RetryBackoff.
	Retries      int
	RetryBackoff time.Duration
	// MaxBatch bounds the files of one run of rclone.
	MaxBatch int
}

// Stream moves a task's files to their destination as they are added, while
// the downloader goes on: at most Parallel runs of rclone at once, each taking
// a share of the files waiting (all of them in one run when one run is free),
// so that a burst of files costs few starts of rclone and a lone file goes at
// once. A file whose move failed is tried again on its own with backoff while
// the failure is temporary; then, or for any other failure, the Stream gives
// up on it and leaves it where it is (the task's final move takes what is
// left). A failed batch of several files is split: each is tried alone. Files are moved in the order they were added, give or take the runs
// under way.
//
// Add never waits for a move. Close says no more files will come; Wait then
// returns once every file added has been reported to Done. Canceling the
// Stream's context stops the moves under way; the files not moved are
// reported with the context's error.
type Stream struct {
	p    StreamParams
	ctx  context.Context
	wake chan struct{} // one token: there is something to look at
	wg   sync.WaitGroup

	mu     sync.Mutex
	queue  []item
	busy   int // runs under way
	closed bool
}

// item is a file waiting, with its tries so far and when it may go.
type item struct {
	f     File
	tries int
	due   time.Time
}

// NewStream starts a Stream's goroutines; they end once ctx ends, or after
// Close once every file is done.
func NewStream(ctx context.Context, p StreamParams) *Stream {
	if p.Parallel < 1 {
		p.Parallel = 1
	}
	if p.Retries <= 0 {
		p.Retries = DefaultRetries
	}
	if p.RetryBackoff <= 0 {
		p.RetryBackoff = DefaultRetryBackoff
	}
	if p.MaxBatch <= 0 {
		p.MaxBatch = DefaultMaxBatch
	}
	s := &Stream{p: p, ctx: ctx, wake: make(chan struct{}, 1)}
	s.wg.Add(p.Parallel)
	for range p.Parallel {
		go s.run()
	}
	return s
}

// Add queues a file to be moved.
func (s *Stream) Add(f File) {
	s.mu.Lock()
	s.queue = append(s.queue, item{f: f})
	s.mu.Unlock()
	s.signal()
}

// Close says no more files will be added.
func (s *Stream) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

// Wait waits until the Stream's goroutines have ended: after Close, once
// every file is done; or once its context has ended.
func (s *Stream) Wait() { s.wg.Wait() }

func (s *Stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run takes batches and moves them until there is nothing left to do.
func (s *Stream) run() {
	defer s.wg.Done()
	defer s.signal() // another goroutine may be waiting for the end, too
	for {
		batch, wait, done := s.take()
		switch {
		case done:
			s.abandon()
			return
		case len(batch) > 0:
			s.move(batch)
		default:
			s.idle(wait)
		}
	}
}

// idle waits for a wake-up, for wait when it is not 0, or for the end of the
// context.
func (s *Stream) idle(wait time.Duration) {
	var due <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		due = t.C
	}
	select {
	case <-s.ctx.Done():
	case <-s.wake:
	case <-due:
	}
}

// take returns the files of the next batch, or how long until a file tried
// again is due (0 when none waits), or done once closed with nothing left.
// The batch is the first file due and those after it with the same Source
// and Dest, first tries only, a fair share of what waits for the free runs.
func (s *Stream) take() (batch []item, wait time.Duration, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, 0, true
	}
	now := time.Now()
	first := -1
	for i, it := range s.queue {
		if !it.due.After(now) {
			first = i
			break
		}
		if d := it.due.Sub(now); wait == 0 || d < wait {
			wait = d
		}
	}
	if first < 0 {
		return nil, wait, s.closed && len(s.queue) == 0 && s.busy == 0
	}
	free := s.p.Parallel - s.busy
	share := min(s.p.MaxBatch, (s.firstTries()+free-1)/free)
	head := s.queue[first]
	batch = append(batch, head)
	rest := append([]item(nil), s.queue[:first]...)
	for _, it := range s.queue[first+1:] {
		if len(batch) < share && head.tries == 0 && it.tries == 0 && !alone(head.f) && !alone(it.f) &&
			it.f.Source == head.f.Source && it.f.Dest == head.f.Dest {
			batch = append(batch, it)
			continue
		}
		rest = append(rest, it)
	}
	s.queue = rest
	s.busy++
	if len(s.queue) > 0 {
		s.signalLocked()
	}
	return batch, 0, false
}

// firstTries counts the files waiting for their first move.
func (s *Stream) firstTries() int {
	n := 0
	for _, it := range s.queue {
		if it.tries == 0 {
			n++
		}
	}
	return max(n, 1)
}

// signalLocked passes the token on while the lock is held.
func (s *Stream) signalLocked() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// alone reports whether a file must go in a batch of its own: a name with a
// line break cannot be listed for --files-from-raw.
func alone(f File) bool { return strings.ContainsAny(f.Rel, "\n\r") }

// move runs one batch, then reports each file, or queues it again: a file
// still in its source after a temporary failure, or after any failure of a
// batch of several (the cause may be another file of the batch), is tried
// again alone. A quota error is not tried again: the Quota gate is closed.
func (s *Stream) move(batch []item) {
	b := Batch{TaskID: s.p.TaskID, Source: batch[0].f.Source, Dest: batch[0].f.Dest}
	for _, it := range batch {
		b.Files = append(b.Files, it.f.Rel)
	}
	err := s.p.Move(s.ctx, b)
	var again []item
	for _, it := range batch {
		switch {
		case err == nil || gone(it.f):
			s.p.Done(it.f, nil)
		case s.ctx.Err() == nil && !IsQuota(err) && (temporary(err) || len(batch) > 1) && it.tries < s.p.Retries:
			it.tries++
			it.due = time.Now().Add(s.p.RetryBackoff << (it.tries - 1))
			again = append(again, it)
		default:
			s.p.Done(it.f, err)
		}
	}
	s.mu.Lock()
	s.busy--
	s.queue = append(s.queue, again...)
	s.mu.Unlock()
	s.signal()
}

// abandon reports the files still waiting once the context has ended; it
// does nothing else.
func (s *Stream) abandon() {
	if s.ctx.Err() == nil {
		return
	}
	s.mu.Lock()
	left := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, it := range left {
		s.p.Done(it.f, s.ctx.Err())
	}
}

// gone reports whether a file has left its source: rclone removes a source
// file once it is at the destination.
func gone(f File) bool {
	_, err := os.Lstat(filepath.Join(f.Source, filepath.FromSlash(f.Rel)))
	return errors.Is(err, os.ErrNotExist)
}

// temporary reports whether another try of a failed move may succeed.
func temporary(err error) bool {
	var ue *Error
	return errors.As(err, &ue) && ue.Temporary()
}
