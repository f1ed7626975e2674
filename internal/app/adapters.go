package app

import (
	"context"

	"github.com/coursedl/worker/internal/pipeline"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/queue"
)

// taskLocks is queue.Locks as a pipeline.Locker.
type taskLocks struct{ locks *queue.Locks }

func (l taskLocks) Acquire(ctx context.Context, taskID int64) (pipeline.Lock, error) {
	lock, err := l.locks.Acquire(ctx, taskID)
	if err != nil {
		// A nil *queue.Lock would make a pipeline.Lock that is not nil.
		return nil, err
	}
	return lock, nil
}

// taskProgress is progress.Publisher as a pipeline.Progress.
type taskProgress struct{ pub *progress.Publisher }

func (p taskProgress) Task(taskID int64) pipeline.TaskProgress { return p.pub.Task(taskID) }
