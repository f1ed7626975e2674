package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coursedl/worker/internal/testutil"
)

func free(t *testing.T, dir string) uint64 {
	t.Helper()
	n, err := Free(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Free counts what a real filesystem has left as it fills; Space passes above
// the floor, names the folder and the figures below it, and reports a statfs
// failure as itself; a write past the end fails with an error IsNoSpace knows.
func TestFreeAndSpaceOnASmallTmpfs(t *testing.T) {
	dir := testutil.Tmpfs(t, 8)
	if got := free(t, dir); got <= 7*MiB || got > 8*MiB {
		t.Fatalf("Free of an empty 8 MiB tmpfs = %d bytes", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "fill"), make([]byte, 6*MiB), 0o600); err != nil {
		t.Fatal(err)
	}
	left := free(t, dir)
	if left < 1*MiB || left > 2*MiB {
		t.Fatalf("Free of an 8 MiB tmpfs holding 6 MiB = %d bytes, want 1-2 MiB", left)
	}
	if _, err := Space(dir, 1); err != nil {
		t.Fatalf("Space(1 MiB) with %d bytes free = %v, want nil", left, err)
	}

	_, err := Space(dir, 4)
	var low *LowError
	if !errors.As(err, &low) {
		t.Fatalf("Space(4 MiB) with %d bytes free = %v, want a *LowError", left, err)
	}
	if low.Dir != dir || low.Free != left || low.MinMiB != 4 {
		t.Fatalf("LowError = %+v, want Dir %s, Free %d, MinMiB 4", low, dir, left)
	}
	for _, want := range []string{dir, fmt.Sprintf("%d MiB free", left/MiB), "4 MiB", "download.min_free_mb"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Space error %q does not say %q", err, want)
		}
	}

	err = os.WriteFile(filepath.Join(dir, "more"), make([]byte, 4*MiB), 0o600)
	if !IsNoSpace(err) {
		t.Fatalf("writing 4 MiB into %d bytes free: err = %v, want one IsNoSpace knows", left, err)
	}
	if got := free(t, dir); got >= 1*MiB {
		t.Fatalf("Free of a full tmpfs = %d bytes", got)
	}

	missing := filepath.Join(dir, "missing")
	_, err = Space(missing, 1)
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &low) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Space of a missing folder = %v, want its statfs error naming it, not a LowError", err)
	}
}

func TestIsNoSpace(t *testing.T) {
	pathErr := func(errno syscall.Errno) error {
		return &fs.PathError{Op: "write", Path: "/staging/task-1/video.mp4", Err: errno}
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"ENOSPC", syscall.ENOSPC, true},
		{"ENOSPC in a path error, wrapped", fmt.Errorf("download task 1: %w", pathErr(syscall.ENOSPC)), true},
		{"EDQUOT in a path error, wrapped", fmt.Errorf("copy cookies: %w", pathErr(syscall.EDQUOT)), true},
		{"ENOSPC in a joined error", errors.Join(errors.New("close"), fmt.Errorf("x: %w", syscall.ENOSPC)), true},
		{"a child's stderr tail", errors.New("downloader exited with code 1: ERROR: unable to write data: [Errno 28] No space left on device"), true},
		{"Go's text of it, unwrapped", errors.New("write /staging/task-1/x: no space left on device"), true},
		{"a quota's text", errors.New("rclone: Disk quota exceeded"), true},
		{"another errno", pathErr(syscall.EACCES), false},
		{"another message", errors.New("downloader exited with code 1: HTTP Error 403: Forbidden"), false},
		{"context canceled", context.Canceled, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsNoSpace(c.err); got != c.want {
				t.Fatalf("IsNoSpace(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}
