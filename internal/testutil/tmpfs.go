package testutil

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// Tmpfs mounts a tmpfs of mib MiB on a fresh directory, unmounted when the test
// ends: a small filesystem a test can fill (the staging disk of the disk cases).
// The tests run as root; without the right to mount the test fails, it does not
// skip.
func Tmpfs(t testing.TB, mib int) string {
	t.Helper()
	dir := t.TempDir()
	err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("size=%dm", mib))
	if errors.Is(err, unix.EPERM) {
		t.Fatalf("mount -t tmpfs -o size=%dm tmpfs %s: %v: this test needs root (CAP_SYS_ADMIN) to mount a small filesystem it can fill; run it as root", mib, dir, err)
	}
	if err != nil {
		t.Fatalf("mount -t tmpfs -o size=%dm tmpfs %s: %v", mib, dir, err)
	}
	// Registered after TempDir's own clean-up, so it runs before it.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	})
	return dir
}
