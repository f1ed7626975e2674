package download

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// CookiesName is the name of a task's copy of download.cookies_file in its
// folder. It is hidden, so Folder does not count it as the course's folder.
const CookiesName = ".cookies.txt"

// CopyCookies copies the cookies file src into the task folder dir, readable
// by the worker's user only (0600), and returns the copy's path ({cookies}).
// Each task gets its own copy: yt-dlp writes its cookie jar back, and two runs
// must never share or corrupt one file; the original never changes. A copy
// left by an earlier run is replaced. The contents are never logged.
func CopyCookies(src, dir string) (string, error) {
	in, err := os.Open(src) //nolint:gosec // G304: download.cookies_file, the operator's own path
	if err != nil {
		return "", fmt.Errorf("download.cookies_file: %w", err)
	}
	defer func() { _ = in.Close() }()
	dst := filepath.Join(dir, CookiesName)
	if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("cookies copy: %w", err)
	}
	// O_EXCL and O_NOFOLLOW: a link planted in the task folder by a downloader
	// cannot make the worker write the cookies elsewhere.
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600) //nolint:gosec // G304: the task folder, made by the worker
	if err != nil {
		return "", fmt.Errorf("cookies copy: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		_ = os.Remove(dst)
		return "", fmt.Errorf("cookies copy: %w", err)
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(dst)
		return "", fmt.Errorf("cookies copy: %w", err)
	}
	return dst, nil
}

// RemoveCookies removes the task's copy of the cookies from dir, if any.
func RemoveCookies(dir string) error {
	if err := os.Remove(filepath.Join(dir, CookiesName)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cookies copy: %w", err)
	}
	return nil
}
