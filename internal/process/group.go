package process

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// group stops the process group of one child. The child is the leader of its
// group (Setpgid), so the group id is the child's pid.
type group struct {
	grace time.Duration

	mu       sync.Mutex
	stopping bool        // terminate was called
	kill     *time.Timer // SIGKILL to the group after grace
}

// terminate is the child's exec.Cmd.Cancel, called when the run's context is
// done: SIGTERM to the group now, SIGKILL to the group after the grace.
func (g *group) terminate(p *os.Process) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopping = true
	if g.kill == nil {
		g.kill = time.AfterFunc(g.grace, func() { _ = signalGroup(p, syscall.SIGKILL) })
	}
	return signalGroup(p, syscall.SIGTERM)
}

// finish is called once the child has exited: it cancels the pending SIGKILL
// and kills whatever is left in the group (grandchildren that outlived the
// child), so nothing of the run survives. It reports whether terminate ran.
//
// The child has been reaped by then, but its pid cannot be reused while the
// group it names still has members, so the SIGKILL reaches only them.
func (g *group) finish(p *os.Process) (stopped bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.kill != nil {
		g.kill.Stop()
	}
	if p.Pid > 1 {
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	}
	return g.stopping
}

// signalGroup sends sig to the group led by p, or to p alone if p has left
// its group (setsid). It returns os.ErrProcessDone if there is no one left.
func signalGroup(p *os.Process, sig syscall.Signal) error {
	if p.Pid <= 1 {
		return fmt.Errorf("process: refusing to signal group of pid %d", p.Pid)
	}
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = p.Signal(sig) // pidfd-based: safe against pid reuse
	}
	return err
}
