package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// listen makes a real notify socket, as systemd does, and points NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// next reads one datagram, failing the test after timeout.
func next(t *testing.T, conn *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no datagram within %s: %v", timeout, err)
	}
	return string(buf[:n])
}

// none checks that nothing arrives within d.
func none(t *testing.T, conn *net.UnixConn, d time.Duration) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if n, err := conn.Read(buf); err == nil {
		t.Fatalf("unexpected datagram %q", buf[:n])
	}
}

func TestStates(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "")
	n := New(nil)
	cases := []struct {
		name string
		send func() error
		want string
	}{
		{"ready", func() error { return n.Ready("") }, "READY=1"},
		{"ready with status", func() error { return n.Ready("working, 2 slots") }, "READY=1\nSTATUS=working, 2 slots"},
		{"status on one line", func() error { return n.Ready("3 tasks\nrunning") }, "READY=1\nSTATUS=3 tasks running"},
		{"stopping", func() error { return n.Stopping("stopping: waiting for 1 task") }, "STOPPING=1\nSTATUS=stopping: waiting for 1 task"},
		{"watchdog", n.Watchdog, "WATCHDOG=1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.send(); err != nil {
				t.Fatal(err)
			}
			if got := next(t, conn, 2*time.Second); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestNoSocketIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	n := New(nil)
	for _, f := range []func() error{
		func() error { return n.Ready("x") }, func() error { return n.Stopping("x") }, n.Watchdog,
	} {
		if err := f(); err != nil {
			t.Fatalf("without NOTIFY_SOCKET: %v", err)
		}
	}
	if d := n.WatchdogInterval(); d != 0 {
		t.Fatalf("watchdog interval %s without WATCHDOG_USEC", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.RunWatchdog(ctx, nil); err != nil || ctx.Err() != nil {
		t.Fatalf("RunWatchdog without a watchdog must return nil at once: %v %v", err, ctx.Err())
	}
	var nilNotifier *Notifier
	if err := nilNotifier.Ready("x"); err != nil {
		t.Fatal(err)
	}
}

func TestSocketGoneIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	if err := New(nil).Ready(""); err == nil {
		t.Fatal("READY to a socket nobody listens on: no error")
	}
}

func TestWatchdogInterval(t *testing.T) {
	cases := []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"30000000", "", 30 * time.Second},
		{"30000000", fmt.Sprint(os.Getpid()), 30 * time.Second},
		{"30000000", fmt.Sprint(os.Getpid() + 1), 0}, // meant for another process
		{"bogus", "", 0},
	}
	for _, c := range cases {
		t.Run(c.usec+"/"+c.pid, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", c.usec)
			t.Setenv("WATCHDOG_PID", c.pid)
			if got := New(nil).WatchdogInterval(); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestRunWatchdogPingsWhileAlive(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "300000") // 300 ms: a ping every 100 ms
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	n := New(nil)
	var stuck atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.RunWatchdog(ctx, func() error {
			if stuck.Load() {
				return errors.New("consumer loop silent for 2m")
			}
			return nil
		})
	}()
	for range 3 {
		if got := next(t, conn, 2*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
	}
	stuck.Store(true)
	// At most one ping may already be on its way when alive turns false.
	_ = conn.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	_, _ = conn.Read(make([]byte, 64))
	none(t, conn, 400*time.Millisecond)
	stuck.Store(false)
	if got := next(t, conn, 2*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after recovery got %q", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("RunWatchdog did not return after cancel")
	}
}
