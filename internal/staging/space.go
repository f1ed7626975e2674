// Package staging owns the staging disk of a download host (contract section 5):
// how much room the filesystem under download.staging_dir has left (Free, Space),
// whether an error means it ran out (IsNoSpace), and the Janitor that removes
// what no task here needs any more: the task-<id> folders of failed tasks past
// download.keep_failed, of tasks completed elsewhere or without a row, and task
// logs past logs.max_age_days.
//
// It does not make or remove the folder of a task being run (the pipeline does,
// and removes it after a success), does not decide what a task does when the
// disk is low (the pipeline defers it), and reads no row itself: the statuses
// come through Rows. It touches only task-<id> folders directly under the
// staging directory, files task-<id>.<suffix> beside a folder it removes, and
// task log files; it never follows a symbolic link.
package staging

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MiB is the unit of download.min_free_mb.
const MiB = 1 << 20

// Free returns the bytes of the filesystem holding dir that the worker (not
// root's reserve) may still use: statfs's available blocks times its fragment
// size, as df(1) counts them. dir must exist.
func Free(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	unit := st.Frsize
	if unit <= 0 {
		unit = st.Bsize
	}
	if unit <= 0 {
		return 0, fmt.Errorf("free space of %s: statfs gives a block size of %d", dir, unit)
	}
	return st.Bavail * uint64(unit), nil //nolint:gosec // G115: unit is positive, checked above
}

// LowError says the staging filesystem has less room than download.min_free_mb.
// Its message names the folder and both figures, for /readyz and for the log
// line of a deferred task.
type LowError struct {
	Dir    string // the staging directory
	Free   uint64 // bytes free
	MinMiB uint64 // the floor, in MiB
}

func (e *LowError) Error() string {
	return fmt.Sprintf("staging disk low: %s has %d MiB free, download.min_free_mb wants %d MiB",
		e.Dir, e.Free/MiB, e.MinMiB)
}

// Space reports the bytes free on the filesystem holding dir, and whether
// that is at least minMiB MiB: a nil error when it is, a *LowError when not,
// and Free's error when it cannot tell.
func Space(dir string, minMiB uint64) (uint64, error) {
	free, err := Free(dir)
	if err != nil {
		return 0, err
	}
	if free < minMiB*MiB {
		return free, &LowError{Dir: dir, Free: free, MinMiB: minMiB}
	}
	return free, nil
}

// noSpaceTexts are the messages of ENOSPC and EDQUOT, lower case, as a child
// process prints them (Python: "[Errno 28] No space left on device") and as Go
// does.
var noSpaceTexts = []string{
	strings.ToLower(syscall.ENOSPC.Error()),
	strings.ToLower(syscall.EDQUOT.Error()),
}

// IsNoSpace reports whether err says a disk ran full: ENOSPC or EDQUOT wrapped
// anywhere in it, or their message in its text (the tail of a child's stderr
// quoted in a process error).
func IsNoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, t := range noSpaceTexts {
		if strings.Contains(msg, t) {
			return true
		}
	}
	return false
}
