package app

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
)

// Test hooks: environment variables with which the fault tests
// (internal/faults) make one worker process play a host whose clock is off, or
// another machine, although every process of a test shares one machine's
// clock, host name and kernel. They are not configuration: no WORKER_ key,
// not in the contract; a production worker leaves them unset, and says so in
// its log when one is set.
const (
	// EnvClockSkew is a Go duration ("120s", "-2m") added to every clock the
	// worker's components are given (time stamps of lifecycle lines, task logs,
	// progress events, webhooks). No liveness decision reads a host's clock
	// (they are made on Redis's, see package rdb), so a skew must change
	// nothing else.
	EnvClockSkew = "COURSEDL_CLOCK_SKEW"
	// EnvHostname replaces os.Hostname in the heartbeat's info.
	EnvHostname = "COURSEDL_HOSTNAME"
	// EnvBootID replaces the kernel's boot id in the heartbeat's info.
	EnvBootID = "COURSEDL_BOOT_ID"
)

// hooks are the test hooks of one process.
type hooks struct {
	skew   time.Duration
	host   string // "": os.Hostname
	bootID string // "": the kernel's
}

// readHooks reads the test hooks from the environment and logs the ones set.
func readHooks(log *zap.Logger) (hooks, error) {
	h := hooks{host: os.Getenv(EnvHostname), bootID: os.Getenv(EnvBootID)}
	if v := os.Getenv(EnvClockSkew); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return h, fmt.Errorf("%s (a test hook): %w", EnvClockSkew, err)
		}
		h.skew = d
		log.Warn("test hook: this process's clock is skewed", zap.String("variable", EnvClockSkew), zap.Duration("skew", d))
	}
	for _, v := range []string{EnvHostname, EnvBootID} {
		if s := os.Getenv(v); s != "" {
			log.Warn("test hook: this process plays another machine", zap.String("variable", v), zap.String("value", s))
		}
	}
	return h, nil
}

// now is the clock the worker's components are given: time.Now, skewed by
// the test hook. Its readings keep the monotonic clock, so durations measured
// with it are true.
func (h hooks) now() time.Time { return time.Now().Add(h.skew) }
