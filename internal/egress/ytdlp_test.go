package egress

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/process"
)

const secret = "INTERNAL SECRET: do not leave the host"

// ytdlp runs the real yt-dlp on rawURL into a new folder and returns the folder
// and yt-dlp's output. With proxyURL set, the child's environment is Env's;
// with flag set too, --proxy is passed as well.
func ytdlp(t *testing.T, proxyURL string, flag bool, rawURL string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	args := []string{"--ignore-config", "--no-cache-dir", "--no-playlist", "--no-check-certificates",
		"--socket-timeout", "5", "--retries", "0", "-o", filepath.Join(dir, "%(id)s.%(ext)s")}
	env := map[string]string{"HOME": dir}
	if proxyURL != "" {
		if flag {
			args = append(args, "--proxy", proxyURL)
		}
		for k, v := range process.ParseEnv(Env(proxyURL)) {
			env[k] = v
		}
	}
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := process.Run(ctx, process.Spec{
		Path: "yt-dlp",
		Args: append(args, rawURL),
		Env:  process.MinimalEnv(env),
		OnLine: func(_ process.Stream, line []byte) {
			out.Write(line)
			out.WriteByte('\n')
		},
	})
	return dir, out.String(), err
}

// holds reports whether a file in dir contains s.
func holds(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		found = found || strings.Contains(string(b), s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// The bug this package fixes, end to end: a course page on an allowed host
// redirects yt-dlp to an internal service. Run through the guard proxy, yt-dlp
// never reaches it and the proxy reports the refusal.
func TestYtDlpRedirectToInternalIsRefused(t *testing.T) {
	if _, err := process.Run(context.Background(), process.Spec{Path: "yt-dlp", Args: []string{"--version"}}); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("yt-dlp: %v", err)
		}
		t.Skipf("yt-dlp is not installed: %v", err)
	}
	video := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "video/mp4")
			_, _ = w.Write([]byte(body))
		}
	}
	course := func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		video("course video bytes")(w, r)
	}
	site := newServer(t, "127.0.0.1:0", false, course)
	siteTLS := newServer(t, "127.0.0.1:0", true, course)
	internal := newServer(t, "127.0.0.2:0", false, video(secret))
	internalTLS := newServer(t, "127.0.0.2:0", true, video(secret))
	internal6 := newServer(t, "[::1]:0", false, video(secret))
	res := newResolver(map[string][]string{"course.test": {"127.0.0.1"}, "example.com": {"127.0.0.1"}})
	p, refused := startProxy(t, Params{Allow: prefixes("127.0.0.1/32"), Resolver: res})

	// Through the proxy, the course's own video comes down; only the proxy can
	// resolve course.test, so it came through the proxy.
	dir, out, err := ytdlp(t, p.URL(), true, "http://course.test:"+site.port+"/video.mp4")
	if err != nil || !holds(t, dir, "course video bytes") {
		t.Fatalf("direct video through the proxy: %v\n%s", err, out)
	}

	// Without the proxy, the redirect reaches the internal server: the bug.
	dir, out, err = ytdlp(t, "", false, site.URL+"/course?to="+internal.URL+"/internal-secret")
	if err != nil || !holds(t, dir, secret) || internal.hits.Load() == 0 {
		t.Fatalf("without the proxy the redirect should reach the internal server (hits %d): %v\n%s",
			internal.hits.Load(), err, out)
	}
	internal.hits.Store(0)

	for _, tc := range []struct {
		name, url string
		target    *server
		addr      string
		flag      bool
	}{
		{"http to 127.0.0.2", "http://course.test:" + site.port + "/course?to=" + internal.URL + "/internal-secret", internal, "127.0.0.2", true},
		{"http to [::1]", "http://course.test:" + site.port + "/course?to=" + internal6.URL + "/internal-secret", internal6, "::1", true},
		{"https to 127.0.0.2", "https://example.com:" + siteTLS.port + "/course?to=" + internalTLS.URL + "/internal-secret", internalTLS, "127.0.0.2", true},
		// download.command without {proxy}: the environment alone routes yt-dlp.
		{"env only, http to 127.0.0.2", "http://course.test:" + site.port + "/course?to=" + internal.URL + "/internal-secret", internal, "127.0.0.2", false},
		{"env only, https to 127.0.0.2", "https://example.com:" + siteTLS.port + "/course?to=" + internalTLS.URL + "/internal-secret", internalTLS, "127.0.0.2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(refused.get())
			dir, out, err := ytdlp(t, p.URL(), tc.flag, tc.url)
			if err == nil {
				t.Errorf("yt-dlp succeeded:\n%s", out)
			}
			if holds(t, dir, secret) || tc.target.hits.Load() != 0 {
				t.Errorf("the internal server was reached (%d requests):\n%s", tc.target.hits.Load(), out)
			}
			if r := refused.get()[n:]; len(r) == 0 || !strings.Contains(r[0], " "+tc.addr+" loopback") {
				t.Errorf("OnRefuse calls %q, want %s loopback", r, tc.addr)
			}
			t.Logf("yt-dlp said:\n%s", out)
		})
	}
}
