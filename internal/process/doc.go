// Package process runs external programs for the worker: the downloader, and
// later rclone. It is the only package of the worker that imports os/exec.
//
// It owns the life of one child process and everything the child starts: the
// child is put in its own process group, its stdout and stderr are split into
// lines with bounded memory and handed to a callback, a timeout or a canceled
// context stops the whole group (SIGTERM, then SIGKILL after a grace period),
// and whatever is left of the group when the child exits is killed, so a task
// never leaks processes. A failure comes back as an *ExitError that says
// exit code, signal, timeout or cancellation, with the last lines of stderr.
//
// Run waits for the child; Start starts it in the background and returns a
// Proc to signal and wait for, with the same guarantees (tests use it to run
// servers and the worker itself, and to kill them).
//
// It does not know what the program is, how to parse its progress, or where
// its output is logged: callers build the argv and environment and consume the
// lines.
package process
