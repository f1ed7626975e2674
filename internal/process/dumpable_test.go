package process

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// guardSecret is the secret the parent holds in its environment.
const guardSecret = "GUARD_SECRET=mysql://worker:s3cr3t@db/app"

// guardChild runs the two test modes of TestNonDumpable: "guard" (the worker:
// non-dumpable or not, then runs a "peek" child) and "peek" (a compromised
// downloader reading its parent's environment and memory).
func guardChild(mode string, args []string) int {
	switch mode {
	case "guard": // guard protect|none
		if args[0] == "protect" {
			if err := NonDumpable(); err != nil {
				fmt.Println("prctl:", err)
				return 1
			}
		}
		exe, _ := os.Executable()
		cmd := exec.CommandContext(context.Background(), exe, strconv.Itoa(os.Getpid()))
		cmd.Env = []string{childEnv + "=peek", raceEnv}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Println("peek:", err)
			return 1
		}
	case "peek": // peek PID
		env, err := os.ReadFile("/proc/" + args[0] + "/environ")
		fmt.Printf("environ: %v %v\n", err == nil, bytes.Contains(env, []byte("s3cr3t")))
		f, err := os.Open("/proc/" + args[0] + "/mem")
		if err == nil {
			_ = f.Close()
		}
		fmt.Printf("mem: %v\n", err == nil)
	}
	return 0
}

// TestNonDumpable runs a parent and its child as user nobody (as root, a child
// has CAP_SYS_PTRACE and reads anything): the child reads its parent's secret
// from /proc/<pid>/environ unless the parent made itself non-dumpable.
func TestNonDumpable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs its processes as user nobody, which needs root (make test runs as root)")
	}
	exe := copyForNobody(t)
	for _, c := range []struct {
		mode, want string
	}{
		{"none", "environ: true true\n"}, // without it the secret leaks: the test can fail
		{"protect", "environ: false false\nmem: false\n"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), exe, c.mode)
			cmd.Env = []string{childEnv + "=guard", raceEnv, guardSecret}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("guard %s: %v\n%s", c.mode, err, out)
			}
			if !strings.HasPrefix(string(out), c.want) {
				t.Fatalf("guard %s: the child saw\n%s\nwant it to begin with\n%s", c.mode, out, c.want)
			}
		})
	}
}

// copyForNobody copies the test binary where user nobody may run it.
func copyForNobody(t *testing.T) string {
	t.Helper()
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "dumpable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "process.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil { //nolint:gosec // an executable for the test's child
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { //nolint:gosec // user nobody runs the copy
		t.Fatal(err)
	}
	return exe
}
