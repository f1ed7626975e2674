package process

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childEnv switches the test binary into a misbehaving child: its value is
// the mode, and the arguments are the mode's parameters.
const childEnv = "PROCESS_TEST_CHILD"

// raceEnv stops a child built with -race from sleeping a second at exit.
const raceEnv = "GORACE=atexit_sleep_ms=0"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// child runs one mode of the test binary as a child process.
func child(mode string, args []string) int {
	arg := func(i int) int {
		n, _ := strconv.Atoi(args[i])
		return n
	}
	switch mode {
	case "lines": // lines N CODE: N lines on each stream, alternately, then exit CODE
		for i := range arg(0) {
			fmt.Fprintf(os.Stdout, "out %d\n", i)
			fmt.Fprintf(os.Stderr, "err %d\n", i)
		}
		return arg(1)
	case "env": // the environment, one variable a line
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
	case "pwd":
		wd, _ := os.Getwd()
		fmt.Println(wd)
	case "selfterm": // die of a SIGTERM that Run did not send
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(time.Minute)
	case "termzero": // exit 0 on SIGTERM
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
	case "ignoreterm": // ignore SIGTERM, start a grandchild that does too, never end
		signal.Ignore(syscall.SIGTERM)
		pid := spawn("sleeper", false, "ignoreterm")
		fmt.Printf("grandchild %d\n", pid)
		time.Sleep(time.Hour)
	case "orphan": // orphan [setsid]: start a grandchild holding stdout and stderr, exit 0
		pid := spawn("sleeper", len(args) > 0 && args[0] == "setsid")
		fmt.Printf("grandchild %d\n", pid)
	case "sleeper": // sleeper [ignoreterm]: sleep for an hour
		if len(args) > 0 && args[0] == "ignoreterm" {
			signal.Ignore(syscall.SIGTERM)
		}
		time.Sleep(time.Hour)
	case "flood": // flood BYTES: BYTES/100 lines of 100 bytes
		w := bufio.NewWriterSize(os.Stdout, 64<<10)
		line := append(bytes.Repeat([]byte("f"), 99), '\n')
		for range arg(0) / len(line) {
			_, _ = w.Write(line)
		}
		_ = w.Flush()
	case "tiny": // tiny N: N lines "N\n" in one write
		var b []byte
		for i := range arg(0) {
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, '\n')
		}
		_, _ = os.Stdout.Write(b)
	case "guard", "peek":
		return guardChild(mode, args)
	default:
		fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
		return 2
	}
	return 0
}

// spawn starts the test binary in mode with the child's stdout and stderr,
// in a new session if setsid, and returns its pid.
func spawn(mode string, setsid bool, args ...string) int {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	p, err := os.StartProcess(exe, append([]string{exe}, args...), &os.ProcAttr{
		Env:   []string{childEnv + "=" + mode, raceEnv},
		Files: []*os.File{nil, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: setsid},
	})
	if err != nil {
		panic(err)
	}
	return p.Pid
}

// childSpec returns a Spec running the test binary in mode with args.
func childSpec(t testing.TB, mode string, args ...string) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Path: exe, Args: args, Env: []string{childEnv + "=" + mode, raceEnv}}
}

// fakeDownloader returns a Spec running testdata/fake-downloader in mode,
// with a temporary folder as DIR (returned too) and a minimal environment.
func fakeDownloader(t testing.TB, mode string, env map[string]string) (Spec, string) {
	t.Helper()
	path, err := filepath.Abs("../../testdata/fake-downloader")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return Spec{
		Path: path,
		Args: []string{mode, "https://example.com/course", dir},
		Dir:  dir,
		Env:  MinimalEnv(env),
	}, dir
}

// lines collects what OnLine receives; it fails the test if two calls overlap.
type lines struct {
	t      testing.TB
	inside sync.Mutex // TryLock fails if a call is already running
	out    []string
	err    []string
	hook   func(s Stream, line string)
}

func newLines(t testing.TB) *lines { return &lines{t: t} }

func (l *lines) onLine(s Stream, line []byte) {
	if !l.inside.TryLock() {
		l.t.Errorf("OnLine called concurrently")
		return
	}
	defer l.inside.Unlock()
	switch s {
	case Stdout:
		l.out = append(l.out, string(line))
	case Stderr:
		l.err = append(l.err, string(line))
	default:
		l.t.Errorf("OnLine got stream %v", s)
	}
	if l.hook != nil {
		l.hook(s, string(line))
	}
}

// grandchildPid returns the pid in the first line "... grandchild PID".
func grandchildPid(t testing.TB, out []string) int {
	t.Helper()
	for _, line := range out {
		if _, after, ok := strings.Cut(line, "grandchild "); ok {
			if pid, err := strconv.Atoi(after); err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no grandchild pid in %q", out)
	return 0
}

// waitGone waits until no process pid runs any more, failing after a deadline.
func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		<-tick.C
	}
}

// gone reports whether pid names no running process: kill(pid, 0) fails
// with ESRCH, or pid is a zombie (a killed orphan stays one when the init of
// a container does not reap it).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	i := bytes.LastIndexByte(stat, ')') // the state follows "(comm) "
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// runAsync runs spec in a goroutine and returns a function that waits for
// the result, failing the test if Run has not returned within a deadline.
func runAsync(t testing.TB, ctx context.Context, spec Spec) func() (Result, error) {
	t.Helper()
	return inBackground(t, "Run", func() (Result, error) { return Run(ctx, spec) })
}

// inBackground runs f in a goroutine and returns a function that waits for its
// result, failing the test (naming f as name) after 20 s.
func inBackground(t testing.TB, name string, f func() (Result, error)) func() (Result, error) {
	type result struct {
		res Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := f()
		done <- result{res, err}
	}()
	return func() (Result, error) {
		t.Helper()
		select {
		case r := <-done:
			return r.res, r.err
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not return", name)
			return Result{}, nil
		}
	}
}

// bothStreams is what the child's "lines N 0" mode prints: "out i" on stdout
// and "err i" on stderr, for i from 0 to n-1.
func bothStreams(n int) (out, err []string) {
	for i := range n {
		out = append(out, fmt.Sprintf("out %d", i))
		err = append(err, fmt.Sprintf("err %d", i))
	}
	return out, err
}

// asExitError returns err as an *ExitError or fails the test.
func asExitError(t testing.TB, err error) *ExitError {
	t.Helper()
	var e *ExitError
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *ExitError", err, err)
	}
	return e
}
