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
	return mountTmpfs(t, fmt.Sprintf("size=%dm", mib))
}

// TmpfsInodes is Tmpfs with room for at most inodes files and folders (the
// root folder counts): a disk that runs out of inodes with bytes to spare.
func TmpfsInodes(t testing.TB, mib, inodes int) string {
	t.Helper()
	return mountTmpfs(t, fmt.Sprintf("size=%dm,nr_inodes=%d", mib, inodes))
}

func mountTmpfs(t testing.TB, options string) string {
	t.Helper()
	dir := t.TempDir()
	err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, options)
	if errors.Is(err, unix.EPERM) {
		t.Fatalf("mount -t tmpfs -o %s tmpfs %s: %v: this test needs root (CAP_SYS_ADMIN) to mount a small filesystem it can fill; run it as root", options, dir, err)
	}
	if err != nil {
		t.Fatalf("mount -t tmpfs -o %s tmpfs %s: %v", options, dir, err)
	}
	// Registered after TempDir's own clean-up, so it runs before it.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	})
	return dir
}
