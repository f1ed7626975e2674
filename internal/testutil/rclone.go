package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// RcloneMoves reads the record testdata/fake-rclone keeps of its runs
// ($FAKE_RCLONE_RECORD) and counts, by file name, the runs that moved each
// file by name: rclone moveto of it, or rclone move --files-from-raw of a
// list naming it. A move of a whole folder names no file and is not counted.
func RcloneMoves(t testing.TB, record string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(record) //nolint:gosec // G304: the test's own record file
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, run := range strings.Split(string(b), "\n") {
		args := strings.Split(strings.TrimSuffix(run, "\x00"), "\x00")
		switch {
		case slices.Contains(args, "moveto"):
			out[filepath.Base(args[slices.Index(args, "moveto")+1])]++
		case slices.Contains(args, "move"):
			for _, a := range args {
				if name, ok := strings.CutPrefix(a, "listed:"); ok {
					out[filepath.Base(name)]++
				}
			}
		}
	}
	return out
}
