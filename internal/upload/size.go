package upload

import (
	"io/fs"
	"path/filepath"
)

// Tally counts the regular files under a folder and their bytes.
type Tally struct {
	Files int
	Bytes int64
}

// Size tallies the regular files under dir (symlinks are not followed or counted:
// the upload does not follow them either).
func Size(dir string) (Tally, error) {
	var t Tally
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
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
