package faults

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/process"

	"github.com/coursedl/worker/internal/testsvc"
)

// Set by TestMain.
var (
	repoRoot       string // the folder holding go.mod
	workerBin      string // the worker built from cmd/worker
	fakeDownloader string // testdata/fake-downloader
)

// tools are the programs the tests run; a missing one fails the run (never a skip).
var tools = []string{"redis-server", "mariadbd", "mariadb-install-db", "rclone", "bash"}

func TestMain(m *testing.M) {
	// The fault tests spend their time waiting out outages, not computing: run
	// them all at once whatever GOMAXPROCS is, unless -parallel says otherwise.
	flag.Parse()
	parallel := false
	flag.Visit(func(f *flag.Flag) { parallel = parallel || f.Name == "test.parallel" })
	if !parallel {
		_ = flag.Set("test.parallel", "8")
	}
	code, err := setup(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// setup builds the worker into a temporary folder and runs the tests.
func setup(m *testing.M) (int, error) {
	var err error
	if repoRoot, err = testsvc.Root(); err != nil {
		return 0, err
	}
	fakeDownloader = filepath.Join(repoRoot, "testdata", "fake-downloader")
	for _, tool := range tools {
		if _, err := lookPath(tool); err != nil {
			return 0, fmt.Errorf("%s is needed: install it with `scripts/services.sh install` (or run `make test-faults`): %w", tool, err)
		}
	}
	tmp, err := os.MkdirTemp("", "faults-worker-")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		}
	}()
	workerBin = filepath.Join(tmp, "worker")
	if err := buildWorker(workerBin); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// buildWorker runs `go build -o out ./cmd/worker`, with the race detector when
// the tests have it, so that a data race in the worker under faults shows up
// in its stderr (see worker.races).
func buildWorker(out string) error {
	// `go test` puts the bin folder of its own GOROOT first in the PATH of the
	// tests, so this is the go command that built them.
	goBin, err := lookPath("go")
	if err != nil {
		return fmt.Errorf("the go command, to build the worker: %w", err)
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/worker")
	var output strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err = process.Run(ctx, process.Spec{
		Path: goBin,
		Args: args,
		Dir:  repoRoot,
		Env:  os.Environ(), // GOCACHE, GOFLAGS, GOPROXY... as the caller has them
		OnLine: func(_ process.Stream, line []byte) {
			output.Write(line)
			output.WriteByte('\n')
		},
	})
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, output.String())
	}
	return nil
}

// lookPath finds a program in PATH or in the sbin folders a non-root PATH may lack.
func lookPath(name string) (string, error) {
	for _, dir := range append(filepath.SplitList(os.Getenv("PATH")), "/usr/sbin", "/usr/local/sbin", "/sbin") {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH", name)
}

// userArgs returns --user=<me> for a server started as root, which mariadbd
// otherwise refuses.
func userArgs() []string {
	if os.Geteuid() != 0 {
		return nil
	}
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return []string{"--user=" + name}
}

// testContext is a context for a test's helpers, canceled when the test ends.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
