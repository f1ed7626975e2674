package upload

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coursedl/worker/internal/process"
)

// driveType is rclone's type name of the Google Drive backend.
const driveType = "drive"

// driveStopOnUploadLimit makes rclone stop at once, with a fatal error (exit 7),
// when Drive refuses an upload for its daily limit, instead of retrying on.
const driveStopOnUploadLimit = "--drive-stop-on-upload-limit"

// listTimeout bounds `rclone listremotes`, which reads the config file only.
const listTimeout = 30 * time.Second

// destKind is what Prepare learned about the destination, once.
type destKind struct {
	mu    sync.Mutex
	known bool
	drive bool
}

// Prepare learns, once, whether upload.dest is on Google Drive, and reports it;
// the move then passes --drive-stop-on-upload-limit, and only to Drive. An
// on-the-fly remote (":drive,scope=drive:Courses") says its backend itself; for a
// named one ("gd:Courses/{folder}", "gd,shared_with_me:x") Prepare asks
// `rclone listremotes --long` with the uploader's --config and environment (names
// and types only, never the tokens `rclone config dump` would print).
//
// A failure to learn the type is logged and taken as "not Drive": quota errors
// are recognized from rclone's log all the same, the flag only makes Drive's
// upload limit stop rclone at once. A remote that wraps Drive (crypt, alias) is
// not Drive by its type; RCLONE_DRIVE_STOP_ON_UPLOAD_LIMIT=true in upload.env
// sets the flag for it.
//
// Upload calls Prepare on its first move; the app may call it at start, so that a
// problem shows in the log early. A lookup cut short by ctx is not remembered.
func (u *Uploader) Prepare(ctx context.Context) bool {
	u.kind.mu.Lock()
	defer u.kind.mu.Unlock()
	if u.kind.known {
		return u.kind.drive
	}
	drive, typ, err := u.isDrive(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		u.log().Warn("cannot tell whether upload.dest is on Google Drive; taken as not", zap.Error(err))
	} else {
		u.log().Info("upload destination", zap.String("remote_type", typ), zap.Bool("drive", drive))
	}
	u.kind.known, u.kind.drive = true, drive
	return drive
}

// isDrive finds the type of the destination's remote: "local" for a local path.
func (u *Uploader) isDrive(ctx context.Context) (drive bool, typ string, err error) {
	name, backend, ok := remoteOf(u.Dest)
	switch {
	case !ok:
		return false, "", fmt.Errorf("the remote of %q holds a placeholder", u.Dest)
	case backend != "":
		return backend == driveType, backend, nil
	case name == "":
		return false, "local", nil
	}
	types, err := u.remoteTypes(ctx)
	if err != nil {
		return false, "", err
	}
	typ, found := types[name]
	if !found {
		return false, "", fmt.Errorf("rclone listremotes does not list the remote %q", name)
	}
	return typ == driveType, typ, nil
}

// remoteOf splits off the remote a destination names, as rclone parses it
// (fspath.Parse): the text before the first ':' or ',' unless a '/' or '\\'
// comes first. name is a configured remote ("gd" of "gd:x" and of
// "gd,shared_with_me:x"); backend is set instead for an on-the-fly remote
// ("drive" of ":drive,scope=drive:x"); both are empty for a local path. ok is
// false when the remote's name holds a placeholder, known only per task. Drive
// letters are not special: the worker runs on Linux, where "C:x" is a remote.
func remoteOf(dest string) (name, backend string, ok bool) {
	i := strings.IndexAny(dest, ":,/\\")
	if i == 0 && dest[0] == ':' {
		if j := strings.IndexAny(dest[1:], ":,/\\"); j >= 0 {
			i = j + 1
		} else {
			i = -1
		}
	}
	if i < 0 || dest[i] == '/' || dest[i] == '\\' {
		return "", "", true
	}
	name = dest[:i]
	if strings.Contains(name, "{") {
		return "", "", false
	}
	if b, found := strings.CutPrefix(name, ":"); found {
		return "", b, true
	}
	return name, "", true
}

// remoteTypes runs `rclone listremotes --long`, whose lines are "name: type"
// (the name padded with spaces after its colon), and returns type by name.
func (u *Uploader) remoteTypes(ctx context.Context) (map[string]string, error) {
	types := map[string]string{}
	_, err := process.Run(ctx, process.Spec{
		Path:    u.Rclone,
		Args:    append(u.common(), "listremotes", "--long"),
		Env:     u.env(),
		Timeout: listTimeout,
		OnLine: func(s process.Stream, line []byte) {
			if s != process.Stdout || len(types) >= 10000 {
				return
			}
			if name, typ, ok := strings.Cut(string(line), ":"); ok {
				types[name] = strings.TrimSpace(typ)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("rclone listremotes: %w", err)
	}
	return types, nil
}

func (u *Uploader) log() *zap.Logger {
	if u.Log == nil {
		return zap.NewNop()
	}
	return u.Log
}
