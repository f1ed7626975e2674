// Package sdnotify tells systemd how the worker is doing, through the notify
// socket of a Type=notify unit (sd_notify(3)): READY once Redis and MySQL answer,
// STOPPING when the shutdown begins, STATUS lines, and watchdog pings.
//
// It wraps github.com/coreos/go-systemd/v22/daemon. Every call does nothing when
// NOTIFY_SOCKET is unset (not started by systemd, or not Type=notify), so callers
// never check where they run. It does not decide when the worker is ready or
// alive; its callers do.
package sdnotify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// Notifier sends state changes to systemd. A nil *Notifier does nothing.
type Notifier struct {
	watchdog time.Duration // WatchdogSec=, 0 when systemd expects no pings
	log      *zap.Logger
}

// New reads the watchdog settings systemd passed (WATCHDOG_USEC, WATCHDOG_PID)
// and returns a Notifier. log may be nil.
func New(log *zap.Logger) *Notifier {
	if log == nil {
		log = zap.NewNop()
	}
	n := &Notifier{log: log}
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings unreadable; no watchdog pings", zap.Error(err))
	}
	n.watchdog = d
	return n
}

// Ready says the worker has started: READY=1, with status as STATUS= when not
// empty.
func (n *Notifier) Ready(status string) error {
	return n.send(daemon.SdNotifyReady, status)
}

// Stopping says the shutdown has begun: STOPPING=1, with status.
func (n *Notifier) Stopping(status string) error {
	return n.send(daemon.SdNotifyStopping, status)
}

// Watchdog pings the watchdog once: WATCHDOG=1.
func (n *Notifier) Watchdog() error {
	return n.send(daemon.SdNotifyWatchdog, "")
}

// WatchdogInterval is the unit's WatchdogSec=: systemd kills the worker when no
// ping came for that long. It is 0 when no watchdog is set (or for another pid).
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// RunWatchdog pings the watchdog every third of its interval for as long as alive
// returns nil, until ctx ends. When alive returns an error it sends no ping, so
// that systemd restarts a worker whose loops are stuck; it logs the first such
// error and the recovery. alive may be nil (always alive). It returns nil at once
// when systemd set no watchdog.
func (n *Notifier) RunWatchdog(ctx context.Context, alive func() error) error {
	interval := n.WatchdogInterval()
	if interval <= 0 {
		return nil
	}
	ticker := time.NewTicker(interval / 3)
	defer ticker.Stop()
	stuck := false
	for {
		err := error(nil)
		if alive != nil {
			err = alive()
		}
		switch {
		case err != nil && !stuck:
			n.log.Error("not alive: watchdog pings withheld; systemd restarts the worker past WatchdogSec",
				zap.Error(err), zap.Duration("watchdog", interval))
			stuck = true
		case err == nil && stuck:
			n.log.Info("alive again: watchdog pings resumed")
			stuck = false
		}
		if err == nil {
			if perr := n.Watchdog(); perr != nil {
				n.log.Warn("watchdog ping not sent", zap.Error(perr))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// send writes one datagram holding state, and STATUS=status when status is not
// empty.
func (n *Notifier) send(state, status string) error {
	if n == nil {
		return nil
	}
	lines := []string{state}
	if status != "" {
		lines = append(lines, "STATUS="+strings.ReplaceAll(status, "\n", " "))
	}
	if _, err := daemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		return fmt.Errorf("sd_notify %s: %w", strings.Join(lines, " "), err)
	}
	return nil
}
