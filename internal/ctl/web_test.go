package ctl_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/coursedl/worker/internal/ctl"
)

func TestWebHashPassword(t *testing.T) {
	var out, errOut bytes.Buffer
	code := ctl.Main(context.Background(), ctl.Env{Args: []string{"web", "hash-password"},
		Stdin: strings.NewReader("correct horse battery\n"), Stdout: &out, Stderr: &errOut})
	if code != ctl.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse battery")); err != nil {
		t.Fatalf("%q is not a hash of the password: %v", hash, err)
	}
	if cost, _ := bcrypt.Cost([]byte(hash)); cost != 12 {
		t.Fatalf("cost %d, want 12", cost)
	}
	out.Reset()
	errOut.Reset()
	code = ctl.Main(context.Background(), ctl.Env{Args: []string{"web", "hash-password"},
		Stdin: strings.NewReader("short\n"), Stdout: &out, Stderr: &errOut})
	if code != ctl.ExitError || out.Len() != 0 || !strings.Contains(errOut.String(), "shorter than 10") {
		t.Fatalf("short password: exit %d, %q %q", code, out.String(), errOut.String())
	}
}

// workerctl web hands the configuration's console keys to the console, and
// says so when there is no console to hand them to.
func TestWebCommand(t *testing.T) {
	w := newWorld(t)
	var got ctl.WebParams
	serve := func(_ context.Context, p ctl.WebParams) error {
		got = p
		return nil
	}
	r := w.runWeb(serve, []string{"WORKER_CONSOLE_LISTEN=127.0.0.1:9109", `WORKER_CONSOLE_USERS=["viewer:vic:$2a$04$0123456789012345678901uvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"]`})
	if r.code != ctl.ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got.Listen != "127.0.0.1:9109" || len(got.Users) != 1 || got.Tool == nil || got.Store == nil || got.Tool.LogsDir != w.logs {
		t.Fatalf("web params: %+v", got)
	}
	if r := w.runWeb(nil, nil); r.code != ctl.ExitError || !strings.Contains(r.stderr, "without the console") {
		t.Fatalf("no console: exit %d %q", r.code, r.stderr)
	}
}

// runWeb runs `workerctl web` with the world's configuration and web as the
// console.
func (w *world) runWeb(web ctl.WebFunc, environ []string) result {
	w.t.Helper()
	var out, errOut bytes.Buffer
	args := []string{"--config", w.config, "--env-file", w.envFile, "web"}
	code := ctl.Main(context.Background(), ctl.Env{Args: args, Stdout: &out, Stderr: &errOut, Environ: environ, Web: web})
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}
