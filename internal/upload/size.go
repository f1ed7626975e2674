package upload

import (
	"io/fs"
	"path/filepath"

	"github.com/coursedl/worker/internal/download"
)

// Tally counts the regular files under a folder and their bytes.
type Tally struct {
	Files int
	Bytes int64
}

// Size tallies the files under dir that a move of dir uploads: regular files
// (symlinks are not followed or counted: the upload does not follow them
// either), neither partial nor, at the top of dir, the worker's own.
func Size(dir string) (Tally, error) {
	var t Tally
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || download.Partial(d.Name()) || filepath.Dir(p) == filepath.Clean(dir) && download.Owned(d.Name()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		t.Files++
		t.Bytes += info.Size()
		return nil
	})
	return t, err
}
