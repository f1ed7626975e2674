package process

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// NonDumpable makes the calling process non-dumpable (prctl PR_SET_DUMPABLE 0):
// a child running as the same user, without CAP_SYS_PTRACE, can then neither
// read the process's /proc/<pid>/environ (the MySQL DSN, the webhook secret)
// nor its memory, nor ptrace it, and no core file is written. The worker calls
// it at start-up, before it runs any downloader: ffmpeg and yt-dlp parse
// hostile media as the worker's user.
func NonDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}
