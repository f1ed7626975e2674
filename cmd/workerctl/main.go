// Command workerctl is the operator's tool for the course delivery worker: queue
// and worker stats, enqueueing a task's job, the dead-letter list, a task's state,
// a live view of a running task, and the web console (workerctl web). See README.md ("Operating it") and `workerctl --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/coursedl/worker/internal/console"
	"github.com/coursedl/worker/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Main(ctx, ctl.Env{
		Args:     os.Args[1:],
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Environ:  os.Environ(),
		Terminal: isTerminal(os.Stdout),
		Web:      console.Serve,
	})
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
