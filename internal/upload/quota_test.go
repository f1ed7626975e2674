package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/process"
)

// driveError is a line of rclone's JSON log as Drive's refusals appear in it.
func driveError(reason string) string {
	return `{"level":"error","msg":"Failed to copy: googleapi: Error 403: The user has exceeded their Drive quota., ` + reason +
		`","object":"01 intro.mp4","objectType":"*local.Object","source":"operations/operations.go:538","time":"2026-11-28T22:14:06.872411+00:00"}`
}

// quotaUploader is an Uploader running testdata/fake-rclone, whose move prints
// the file log to stderr and exits with code.
func quotaUploader(t *testing.T, fake *fakeRclone, log string, code int) (u *Uploader, src string) {
	t.Helper()
	src, dst, conf := rcloneSetup(t)
	return &Uploader{Rclone: fake.path, Config: conf, Dest: "local:" + dst + "/{folder}", URLTemplate: "https://x/{folder}",
		Timeout: time.Minute, Env: []string{
			"FAKE_RCLONE_RECORD=" + fake.record,
			"FAKE_RCLONE_LOG=" + log,
			"FAKE_RCLONE_EXIT=" + strconv.Itoa(code),
		}}, src
}

// The markers decide, whatever the non-zero exit code; without one the exit
// code classifies as before.
func TestQuotaClassification(t *testing.T) {
	copied := `{"level":"info","msg":"Copied (new)","object":"rateLimitExceeded.mp4","objectType":"*local.Object","source":"operations/operations.go:566","time":"2026-11-28T22:14:06.431027+00:00"}`
	stats := `{"level":"info","msg":"\nErrors: 1\n","stats":{"errors":1,"fatalError":true,"lastError":"googleapi: Error 403: storageQuotaExceeded"},"time":"2026-11-28T22:14:06.872781+00:00"}`
	retry := `{"level":"debug","msg":"pacer: low level retry 1/10 (error googleapi: Error 403: Rate Limit Exceeded, rateLimitExceeded)","source":"pacer/pacer.go:210"}`
	cases := []struct {
		name      string
		log       string // "" for the hand-written Drive capture
		code      int
		limit     string // the Limit wanted; "" for no quota error
		temporary bool
		ok        bool // the upload succeeds
	}{
		{name: "uploadLimitExceeded", log: driveError("uploadLimitExceeded"), code: 7, limit: "uploadLimitExceeded"},
		{name: "userRateLimitExceeded", log: driveError("userRateLimitExceeded"), code: 7, limit: "userRateLimitExceeded"},
		{name: "storageQuotaExceeded", log: driveError("storageQuotaExceeded"), code: 7, limit: "storageQuotaExceeded"},
		{name: "rateLimitExceeded", log: driveError("rateLimitExceeded"), code: 7, limit: "rateLimitExceeded"},
		{name: "captured Drive upload limit", code: 7, limit: "userRateLimitExceeded"},
		{name: "marker, temporary exit code", log: driveError("storageQuotaExceeded"), code: 5, limit: "storageQuotaExceeded"},
		{name: "marker in a plain line", log: "2026/11/28 22:14:06 Failed to move: googleapi: Error 403: ..., uploadLimitExceeded", code: 1, limit: "uploadLimitExceeded"},
		{name: "fatal without marker", log: `{"level":"error","msg":"Failed to copy: googleapi: Error 403: Insufficient permissions for this file, insufficientFilePermissions"}`, code: 7},
		{name: "temporary without marker", log: `{"level":"error","msg":"Failed to copy: connection reset by peer"}`, code: 5, temporary: true},
		{name: "markers at info level only", log: copied + "\n" + stats, code: 7},
		{name: "marker in a file's name", log: `{"level":"error","msg":"Failed to copy: permission denied","object":"uploadLimitExceeded.mp4"}`, code: 7},
		{name: "marker in a retry at debug level", log: retry + "\n" + `{"level":"error","msg":"Failed to copy: permission denied"}`, code: 7},
		{name: "marker, exit 0", log: driveError("rateLimitExceeded"), code: 0, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := capture(t, "move-drive-quota-json.txt")
			if tc.log != "" {
				log = filepath.Join(t.TempDir(), "log")
				mustWrite(t, log, tc.log+"\n")
			}
			fake := newFakeRclone(t)
			u, src := quotaUploader(t, fake, log, tc.code)
			var out lines
			_, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "x"}, out.add)
			if want, _ := os.ReadFile(log); len(out.all) != strings.Count(string(want), "\n") {
				t.Errorf("%d lines reached the caller, want the %d rclone printed", len(out.all), strings.Count(string(want), "\n"))
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("Upload: %v", err)
				}
				return
			}
			var ue *Error
			if !errors.As(err, &ue) || ue.Op != "move" || ue.ExitCode != tc.code {
				t.Fatalf("err = %v, want the move's exit %d", err, tc.code)
			}
			if ue.Limit != tc.limit || IsQuota(err) != (tc.limit != "") || ue.Temporary() != tc.temporary {
				t.Errorf("Limit %q, IsQuota %v, Temporary %v; want %q, %v, %v",
					ue.Limit, IsQuota(err), ue.Temporary(), tc.limit, tc.limit != "", tc.temporary)
			}
			if tc.limit != "" && !strings.Contains(err.Error(), tc.limit) {
				t.Errorf("the error does not name the limit: %v", err)
			}
		})
	}
}

// Only a child that ended by itself is classified by markers: a time-out or a
// stop is what it was before.
func TestExitedNonZero(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&process.ExitError{ExitCode: 7}, true},
		{fmt.Errorf("wrapped: %w", &process.ExitError{ExitCode: 1}), true},
		{&process.ExitError{ExitCode: -1, TimedOut: true, Signal: syscall.SIGTERM}, false},
		{&process.ExitError{ExitCode: -1, Canceled: true, Signal: syscall.SIGTERM}, false},
		{&process.ExitError{ExitCode: -1, Signal: syscall.SIGKILL}, false},
		{errors.New("process: start rclone: no such file"), false},
	}
	for _, tc := range cases {
		if got := exitedNonZero(tc.err); got != tc.want {
			t.Errorf("exitedNonZero(%v) = %v", tc.err, got)
		}
	}
}

func TestIsQuota(t *testing.T) {
	quota := &Error{Op: "move", ExitCode: 7, Limit: "storageQuotaExceeded", Err: errors.New("x")}
	if !IsQuota(fmt.Errorf("upload task 1: %w", quota)) {
		t.Error("a wrapped quota error is not IsQuota")
	}
	for _, err := range []error{nil, errors.New("x"), &Error{Op: "move", ExitCode: 7, Err: errors.New("x")}} {
		if IsQuota(err) {
			t.Errorf("IsQuota(%v)", err)
		}
	}
}

// After a quota error the gate refuses uploads without running rclone until
// Wait has passed, then lets them through.
func TestGate(t *testing.T) {
	fake := newFakeRclone(t)
	log := filepath.Join(t.TempDir(), "log")
	mustWrite(t, log, driveError("storageQuotaExceeded")+"\n")
	u, src := quotaUploader(t, fake, log, 7)
	t0 := time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)
	now := t0
	u.Quota = Gate{Wait: time.Hour, Now: func() time.Time { return now }}
	upload := func() error {
		t.Helper()
		_, err := u.Upload(context.Background(), Request{TaskID: 1, Source: src, Folder: "x"}, nil)
		return err
	}
	var ue *Error
	if err := upload(); !IsQuota(err) || !errors.As(err, &ue) || !ue.Until.Equal(t0.Add(time.Hour)) || ue.ExitCode != 7 {
		t.Fatalf("first upload: %v; want rclone's quota error, until %s", err, t0.Add(time.Hour))
	}
	if got := u.Quota.Until(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("Until = %s, want %s", got, t0.Add(time.Hour))
	}
	for _, at := range []time.Duration{0, time.Minute, time.Hour - time.Nanosecond} {
		now = t0.Add(at)
		err := upload()
		if !IsQuota(err) || !errors.Is(err, ErrQuotaWait) || !errors.As(err, &ue) ||
			ue.Limit != "storageQuotaExceeded" || !ue.Until.Equal(t0.Add(time.Hour)) || ue.Temporary() {
			t.Fatalf("upload %s later: %v; want the gate's quota error", at, err)
		}
	}
	if n := len(fake.ran(t, "move")); n != 1 {
		t.Fatalf("rclone move ran %d times while the gate was closed, want once", n)
	}
	now = t0.Add(time.Hour)
	if got := u.Quota.Until(); !got.IsZero() {
		t.Errorf("Until = %s once the wait is over, want zero", got)
	}
	if err := os.Remove(log); err != nil { // the fake runs the real rclone now
		t.Fatal(err)
	}
	if err := upload(); err != nil {
		t.Fatalf("upload after the wait: %v", err)
	}
	if n := len(fake.ran(t, "move")); n != 2 {
		t.Fatalf("rclone move ran %d times, want twice", n)
	}
}

// The zero Gate is open and waits DefaultQuotaWait; a later quota error never
// shortens the wait; it is safe for concurrent use.
func TestGateConcurrent(t *testing.T) {
	t0 := time.Now()
	var g Gate
	if !g.Until().IsZero() || g.refuse() != nil {
		t.Fatal("the zero Gate is closed")
	}
	if until := g.trip("rateLimitExceeded"); until.Before(t0.Add(DefaultQuotaWait)) {
		t.Fatalf("trip: until %s, want %s from now", until, DefaultQuotaWait)
	}
	g.Wait = time.Minute
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				g.trip("userRateLimitExceeded")
				if g.refuse() == nil || g.Until().IsZero() {
					t.Error("the gate opened")
					return
				}
			}
		})
	}
	wg.Wait()
	if until := g.Until(); until.Before(t0.Add(DefaultQuotaWait)) {
		t.Errorf("a shorter wait moved Until to %s", until)
	}
}
