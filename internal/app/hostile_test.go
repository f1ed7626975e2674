package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// The queue is not trusted: anyone who can write to Redis can push a job. These
// tests run a real worker on hostile input and check that nothing it should not
// run is run, and that every rejection says why in dl:dead.

// setEnv sets a list-valued WORKER_ variable (download.env, upload.env) as the
// JSON array the contract wants.
func (e *env) setEnv(key string, kv ...string) {
	e.t.Helper()
	b, err := json.Marshal(kv)
	if err != nil {
		e.t.Fatal(err)
	}
	e.settings[key] = string(b)
}

// recordDownloader makes the downloader the fake one in record mode, appending the
// argv of every run to the returned file, which exists once something ran.
func (e *env) recordDownloader() string {
	e.t.Helper()
	path := filepath.Join(e.root, "downloader-runs")
	e.fake("record")
	e.setEnv("WORKER_DOWNLOAD_ENV", "FAKE_RECORD="+path)
	return path
}

// runs reads the file of recordDownloader: one argv (MODE URL DIR) per run.
func runs(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Split(string(b), "\x00")
	var out [][]string
	for i := 0; i < len(fields)-1; {
		n, err := strconv.Atoi(fields[i])
		if err != nil || i+1+n > len(fields)-1 {
			t.Fatalf("record file is damaged at field %d: %q", i, b)
		}
		out = append(out, fields[i+1:i+1+n])
		i += 1 + n
	}
	return out
}

// insertTask inserts an enrolled task row holding courseURL as the web app stored
// it, without an order, and returns its id.
func (e *env) insertTask(courseURL string) int64 {
	e.t.Helper()
	res := e.db.MustExec("INSERT INTO download_tasks (email, course_url, is_enrolled) VALUES ('buyer@example.com', ?, 1)", courseURL)
	id, err := res.LastInsertId()
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// deadByPayload waits until dl:dead holds n entries and returns them by payload.
func (e *env) deadByPayload(n int) map[string]rdb.Dead {
	e.t.Helper()
	var dead []rdb.Dead
	for deadline := time.Now().Add(30 * time.Second); len(dead) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("after 30s dl:dead holds %d entries, want %d", len(dead), n)
		}
		var err error
		if dead, err = e.dead(); err != nil {
			e.t.Fatal(err)
		}
	}
	if len(dead) != n {
		e.t.Fatalf("dl:dead holds %d entries, want %d", len(dead), n)
	}
	out := make(map[string]rdb.Dead, n)
	for _, d := range dead {
		out[d.Payload] = d
	}
	return out
}

func jobJSON(id any, email, courseURL string, extra ...string) string {
	b, _ := json.Marshal(map[string]any{"taskId": id, "email": email, "courseUrl": courseURL})
	s := string(b)
	for _, x := range extra {
		s = s[:len(s)-1] + "," + x + "}"
	}
	return s
}

// Each hostile job lands in dl:dead, exactly as received, with a reason a person
// can act on, and no downloader runs for any of them; a good job pushed after them
// does run, which shows the check could fail.
func TestHostileJobs(t *testing.T) {
	e := newEnv(t)
	record := e.recordDownloader()
	e.settings["WORKER_DOWNLOAD_ALLOWED_HOSTS"] = `["127.0.0.1", "www.udemy.com"]`
	e.settings["WORKER_WORKER_CONCURRENCY"] = "4"
	e.start()

	const buyer = "buyer@example.com"
	pwned := filepath.Join(e.root, "pwned")
	good, _ := e.task(true, "/c/x.mp4") // a real row the jobs below disagree with
	url := e.course.URL + "/c/x.mp4"
	port := strings.TrimPrefix(e.course.URL, "http://127.0.0.1:")
	var orderID int64
	if err := e.db.Get(&orderID, "SELECT order_id FROM download_tasks WHERE id = ?", good); err != nil {
		t.Fatal(err)
	}
	// Rows in which the web app itself stored a hostile course_url: the job agrees
	// with its row, and is still refused for its URL.
	rowURL := func(u string) string {
		return jobJSON(e.insertTask(u), buyer, u)
	}

	cases := []struct {
		name, payload, reason string
	}{
		// size and form
		{"over 64 KiB", jobJSON(good, buyer, url, `"pad":"`+strings.Repeat("A", 64<<10)+`"`), "over the 65536-byte limit"},
		{"100 KiB", jobJSON(good, buyer, url, `"pad":"`+strings.Repeat("B", 100<<10)+`"`), "over the 65536-byte limit"},
		{"not JSON", "$(touch " + pwned + "); rm -rf /", "not a JSON object"},
		{"array", fmt.Sprintf(`[{"taskId": %d}]`, good), "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"two objects", jobJSON(good, buyer, url) + ` {"taskId": 1}`, "data after the object"},
		// wrong types and huge numbers
		{"task id bool", jobJSON(true, buyer, url), "taskId must be a positive whole number"},
		{"task id float", jobJSON(1.5, buyer, url), "taskId must be a positive whole number"},
		{"task id past int64", fmt.Sprintf(`{"taskId": 99999999999999999999999, "email": %q, "courseUrl": %q}`, buyer, url), "taskId must be a positive whole number"},
		{"task id exponent", fmt.Sprintf(`{"taskId": 1e400, "email": %q, "courseUrl": %q}`, buyer, url), "taskId must be a positive whole number"},
		{"task id negative", jobJSON(-good, buyer, url), "taskId must be a positive whole number"},
		{"task id path", jobJSON("../../../etc/passwd", buyer, url), "taskId must be a positive whole number"},
		{"task id with shell", jobJSON(fmt.Sprintf("%d; touch %s", good, pwned), buyer, url), "taskId must be a positive whole number"},
		{"task id under another spelling", fmt.Sprintf(`{"TaskId": %d, "email": %q, "courseUrl": %q}`, good, buyer, url), "taskId is missing"},
		{"email array", fmt.Sprintf(`{"taskId": %d, "email": [%q], "courseUrl": %q}`, good, buyer, url), "email must be a string"},
		{"email too long", jobJSON(good, strings.Repeat("b", 250)+"@x.io", url), "over the 254-byte limit"},
		{"email header injection", jobJSON(good, buyer+"\r\nBcc: x@evil.test", url), "not a valid address"},
		{"url number", fmt.Sprintf(`{"taskId": %d, "email": %q, "courseUrl": 42}`, good, buyer), "courseUrl must be a string"},
		{"order id string", jobJSON(good, buyer, url, `"orderId":"12"`), "orderId must be a positive whole number"},
		{"order id huge", jobJSON(good, buyer, url, `"orderId":123456789012345678901234567890`), "orderId must be a positive whole number"},
		// the URL
		{"file", jobJSON(good, buyer, "file:///etc/passwd"), "must be http or https"},
		{"ftp", jobJSON(good, buyer, "ftp://127.0.0.1/c"), "must be http or https"},
		{"javascript", jobJSON(good, buyer, "javascript:alert(1)"), "must be http or https"},
		{"option", jobJSON(good, buyer, "--exec=touch "+pwned), "must not start with '-'"},
		{"option, no blank", jobJSON(good, buyer, "-o/etc/cron.d/x"), "must not start with '-'"},
		{"user info", jobJSON(good, buyer, "http://user:pw@127.0.0.1:"+port+"/c/x.mp4"), "must not hold a user name or password"},
		{"allowed host as user info", jobJSON(good, buyer, "https://www.udemy.com:443@evil.test/c/"), "must not hold a user name or password"},
		{"suffix host", jobJSON(good, buyer, "https://www.udemy.com.evil.test/course/x/"), "not in download.allowed_hosts"},
		{"prefix host", jobJSON(good, buyer, "https://evil-www.udemy.com/course/x/"), "not in download.allowed_hosts"},
		{"cyrillic look-alike", jobJSON(good, buyer, "https://www.udem\u0443.com/course/x/"), "look-alike"},
		{"fullwidth digits", jobJSON(good, buyer, "http://\uff11\uff12\uff17.0.0.1:"+port+"/c/x.mp4"), "look-alike"},
		{"ideographic dots", jobJSON(good, buyer, "http://127\u30020\u30020\u30021:"+port+"/c/x.mp4"), "look-alike"},
		{"escaped host", jobJSON(good, buyer, "http://127%2E0.0.1:"+port+"/c/x.mp4"), "not a URL"},
		{"backslash", jobJSON(good, buyer, `https://evil.test\@www.udemy.com/c/`), "not a URL"},
		{"another loopback address", jobJSON(good, buyer, "http://127.0.0.2:"+port+"/c/x.mp4"), "not in download.allowed_hosts"},
		{"loopback by name", jobJSON(good, buyer, "http://localhost:"+port+"/c/x.mp4"), "not in download.allowed_hosts"},
		{"loopback as a number", jobJSON(good, buyer, "http://2130706433:"+port+"/c/x.mp4"), "not in download.allowed_hosts"},
		{"loopback v6", jobJSON(good, buyer, "http://[::1]:"+port+"/c/x.mp4"), "look-alike"},
		{"port out of range", jobJSON(good, buyer, "http://127.0.0.1:99999/c/x.mp4"), "not 1 to 65535"},
		{"new line", jobJSON(good, buyer, url+"\n--exec=id"), "control character"},
		{"blank and option", jobJSON(good, buyer, url+" --exec id"), "control character"},
		{"bidi override", jobJSON(good, buyer, url+"\u202e"), "control character"},
		{"url too long", jobJSON(good, buyer, url+"?"+strings.Repeat("a", 2048)), "over the 2048-byte limit"},
		// the row is the truth
		{"no row", jobJSON(999999999999, buyer, url), "no download_tasks row with id 999999999999"},
		{"other email", jobJSON(good, "other@example.com", url), "email does not match"},
		{"other url", jobJSON(good, buyer, url+"?x=1"), "courseUrl does not match"},
		{"url differs in case", jobJSON(good, buyer, strings.Replace(url, "/c/", "/C/", 1)), "courseUrl does not match"},
		{"other order", jobJSON(good, buyer, url, fmt.Sprintf(`"orderId":%d`, orderID+1000)), "orderId does not match"},
		{"hostile row: suffix host", rowURL("http://127.0.0.1.evil.test/c/x.mp4"), "not in download.allowed_hosts"},
		{"hostile row: option", rowURL("--exec=touch " + pwned), "must not start with '-'"},
		{"hostile row: file", rowURL("file:///etc/shadow"), "must be http or https"},
		{"hostile row: new line", rowURL(url + "\n-o /etc/x"), "control character"},
	}
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.payload] {
			t.Fatalf("two cases push the same payload: %s", c.name)
		}
		names[c.payload] = true
		e.push(c.payload)
	}
	dead := e.deadByPayload(len(cases))
	for _, c := range cases {
		d, ok := dead[c.payload]
		switch {
		case !ok:
			t.Errorf("%s: not in dl:dead whole, as pushed", c.name)
		case !strings.Contains(d.Reason, c.reason):
			t.Errorf("%s: reason %q, want it to say %q", c.name, d.Reason, c.reason)
		case len(d.Reason) > 400 || strings.ContainsAny(d.Reason, "\r\n"):
			t.Errorf("%s: reason is not a short line: %q", c.name, d.Reason)
		case d.Worker != e.settings["WORKER_WORKER_ID"] || d.At == "":
			t.Errorf("%s: entry %+v lacks worker or time", c.name, d)
		}
	}
	if n := strings.Count(e.lifecycle(), "[JOB_REJECTED]"); n != len(cases) {
		t.Errorf("%d JOB_REJECTED lines, want %d", n, len(cases))
	}

	// Nothing ran: no downloader, no task folder, no row touched.
	if r := runs(t, record); len(r) != 0 {
		t.Fatalf("the downloader ran for hostile jobs: %q", r)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.root, "staging")); len(entries) != 0 {
		t.Errorf("task folders were made: %v", entries)
	}
	var touched []string
	if err := e.db.Select(&touched, "SELECT CONCAT(id, ' ', status) FROM download_tasks WHERE status <> 'pending'"); err != nil {
		t.Fatal(err)
	}
	if len(touched) != 0 {
		t.Errorf("rows of rejected jobs changed: %v", touched)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("%s exists: a job was run", pwned)
	}

	// The good job runs, and is recorded: the check above could fail.
	id, payload := e.task(true, "/c/good.mp4")
	e.push(payload)
	e.waitStatus(id, "completed", 30*time.Second)
	want := []string{"record", e.course.URL + "/c/good.mp4", e.stagingDir(id)}
	if r := runs(t, record); len(r) != 1 || !slices.Equal(r[0], want) {
		t.Fatalf("downloader runs %q, want one: %q", r, want)
	}
}

// URLs that a shell would take for commands are valid URLs on an allowed host:
// they reach the downloader as one argv element each, byte for byte, and nothing
// they hold is run.
func TestShellSyntaxInURLIsNeverRun(t *testing.T) {
	e := newEnv(t)
	record := e.recordDownloader()
	e.settings["WORKER_WORKER_CONCURRENCY"] = "3"
	e.start()
	marker := func(name string) string { return filepath.Join(e.root, "pwned-"+name) }
	paths := []string{
		"/c/$(touch${IFS}" + marker("dollar") + ").mp4",
		"/c/`touch${IFS}" + marker("backtick") + "`.mp4",
		"/c/x.mp4;touch${IFS}" + marker("semicolon"),
		"/c/x.mp4|touch${IFS}" + marker("pipe"),
		"/c/x.mp4&&touch${IFS}" + marker("and") + "&",
		"/c/x.mp4?q=$(touch${IFS}" + marker("query") + ")#`touch${IFS}" + marker("fragment") + "`",
		"/c/x.mp4%0atouch%20" + marker("newline"),
		"/c/x.mp4?--exec=touch${IFS}" + marker("exec") + "&-o=" + marker("output"),
		`/c/'";touch${IFS}` + marker("quotes") + `;'".mp4`,
		"/c/{dir}/{task_id}/{url}.mp4",
	}
	ids := make([]int64, len(paths))
	for i, p := range paths {
		var payload string
		ids[i], payload = e.task(true, p)
		e.push(payload)
	}
	for _, id := range ids {
		e.waitStatus(id, "completed", 30*time.Second)
	}
	got := runs(t, record)
	for i, p := range paths {
		want := []string{"record", e.course.URL + p, e.stagingDir(ids[i])}
		if !slices.ContainsFunc(got, func(argv []string) bool { return slices.Equal(argv, want) }) {
			t.Errorf("no run with argv %q among %q", want, got)
		}
	}
	if len(got) != len(paths) {
		t.Errorf("%d runs, want %d", len(got), len(paths))
	}
	err := filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "pwned-") {
			t.Errorf("%s was created: a URL was run", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// What a downloader leaves in its folder cannot make the upload reach outside it:
// symlinks inside the course folder are skipped (rclone runs without -L), a task
// folder replaced by a symlink fails the task, and task folders are 0750.
func TestDownloaderFilesStayInTheTaskFolder(t *testing.T) {
	e := newEnv(t)
	// Outside the task folders: a folder holding one folder, as a course folder
	// looks, so that a task folder replaced by a link to it would pass for one.
	outside := filepath.Join(e.root, "outside")
	secret := filepath.Join(outside, "Secrets", "secret.txt")
	if err := os.MkdirAll(filepath.Dir(secret), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake("auto")
	e.setEnv("WORKER_DOWNLOAD_ENV", "FAKE_LINK_TARGET="+secret, "FAKE_ESCAPE_TO="+outside)
	e.settings["WORKER_RETRY_MAX_ATTEMPTS"] = "1"
	// A remote of another name than the source's, so that rclone moves file by
	// file as it does to Google Drive instead of renaming the folder whole.
	conf := filepath.Join(e.root, "gd.conf")
	if err := os.WriteFile(conf, []byte("[gd]\ntype = local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.settings["WORKER_UPLOAD_CONFIG"] = conf
	e.settings["WORKER_UPLOAD_DEST"] = "gd:" + filepath.Join(e.root, "drive") + "/{folder}"
	e.start()

	links, job1 := e.task(true, "/c/links.mp4?fake_mode=symlink")
	escape, job2 := e.task(true, "/c/escape.mp4?fake_mode=escape")
	failed, job3 := e.task(true, "/c/fail.mp4?fake_mode=fail")
	for _, p := range []string{job1, job2, job3} {
		e.push(p)
	}

	e.waitStatus(links, "completed", 30*time.Second)
	files, err := filepath.Glob(filepath.Join(e.root, "drive", "Fake Course", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	if !slices.Equal(files, []string{"lesson-1.txt", "lesson-2.txt"}) {
		t.Errorf("destination holds %q, want the lessons only (no symlink, no target)", files)
	}

	r := e.waitStatus(escape, "failed", 30*time.Second)
	if r.ErrMsg == nil || !strings.Contains(*r.ErrMsg, "replaced by a symlink") {
		t.Errorf("error_message = %v, want the folder replaced by a symlink", r.ErrMsg)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "host secret" {
		t.Fatalf("the file outside the task folder was moved or changed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "drive", "Secrets")); !os.IsNotExist(err) {
		t.Fatalf("the folder outside the task folder was uploaded: %v", err)
	}

	e.waitStatus(failed, "failed", 30*time.Second)
	for _, dir := range []string{filepath.Join(e.root, "staging"), e.stagingDir(failed)} {
		fi, err := os.Lstat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); !fi.IsDir() || perm&^0o750 != 0 || perm&0o700 != 0o700 {
			t.Errorf("%s has mode %v, want a folder of 0750 (umask may only take more away from the group)", dir, fi.Mode())
		}
	}
}

// The webhook endpoint is checked as well: its TLS certificate is verified, a
// redirect is a failed attempt (never followed: it could send the signed body
// elsewhere), and each attempt carries its own timestamp and signature.
func TestWebhookEndpointIsNotTrusted(t *testing.T) {
	t.Run("certificate verified", func(t *testing.T) {
		e := newEnv(t)
		e.fake("ok")
		var hits atomic.Int32
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
		t.Cleanup(srv.Close)
		e.settings["WORKER_WEBHOOK_URL"] = srv.URL + "/hook"
		e.start()
		id, payload := e.task(true, "/c/x.mp4")
		e.push(payload)
		e.waitStatus(id, "completed", 30*time.Second)
		testutil.Eventually(t, 15*time.Second, func() bool {
			return strings.Count(e.lifecycle(), "[WEBHOOK_FAILED]") >= 2
		}, "no failed webhook attempts")
		if !strings.Contains(e.lifecycle(), "certificate") {
			t.Errorf("failed attempts do not name the certificate:\n%s", e.lifecycle())
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("a server with an unknown certificate got %d requests", n)
		}
	})

	t.Run("redirect not followed, timestamp of each attempt", func(t *testing.T) {
		e := newEnv(t)
		e.fake("ok")
		signer, err := notify.NewSigner(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		type attempt struct {
			id, ts string
			err    error
		}
		var (
			mu        sync.Mutex
			attempts  []attempt
			elsewhere atomic.Int32
		)
		mux := http.NewServeMux()
		mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			a := attempt{id: r.Header.Get("webhook-id"), ts: r.Header.Get("webhook-timestamp")}
			a.err = signer.Verify(a.id, a.ts, body, r.Header.Get("webhook-signature"), time.Now(), time.Minute)
			mu.Lock()
			attempts = append(attempts, a)
			n := len(attempts)
			mu.Unlock()
			switch n {
			case 1:
				http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			case 2:
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		mux.HandleFunc("/elsewhere", func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) })
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		e.settings["WORKER_WEBHOOK_URL"] = srv.URL + "/hook"
		e.settings["WORKER_WEBHOOK_RETRY_SCHEDULE"] = `["1100ms", "1100ms", "1100ms"]`
		e.start()
		id, payload := e.task(true, "/c/x.mp4")
		e.push(payload)
		e.waitStatus(id, "completed", 30*time.Second)
		testutil.Eventually(t, 20*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(attempts) >= 3
		}, "the webhook was not attempted 3 times")
		testutil.Eventually(t, 5*time.Second, func() bool { return strings.Contains(e.lifecycle(), "[WEBHOOK_SENT]") }, "WEBHOOK_SENT line")
		mu.Lock()
		defer mu.Unlock()
		if len(attempts) != 3 || elsewhere.Load() != 0 {
			t.Fatalf("%d attempts, %d requests to the redirect's target; want 3 and 0", len(attempts), elsewhere.Load())
		}
		for i, a := range attempts {
			if a.err != nil || a.id != attempts[0].id {
				t.Errorf("attempt %d: id %q (first %q), signature against its own timestamp: %v", i+1, a.id, attempts[0].id, a.err)
			}
			if i > 0 {
				prev, _ := strconv.ParseInt(attempts[i-1].ts, 10, 64)
				cur, _ := strconv.ParseInt(a.ts, 10, 64)
				if cur <= prev {
					t.Errorf("attempt %d has timestamp %d, attempt %d had %d: want the time of each attempt", i+1, cur, i, prev)
				}
			}
		}
		if !strings.Contains(e.lifecycle(), "redirect") {
			t.Errorf("the redirect is not named as the reason of a failed attempt:\n%s", e.lifecycle())
		}
	})
}

// A downloader that prints 48 MiB without a line break does not grow the worker's
// memory with it: output is read in bounded lines, each line of the task log is
// capped, and the task log rotates by size. (48 MiB keeps the test short under
// -race; package process checks 200 MiB against Run alone.)
func TestHugeOutputIsBounded(t *testing.T) {
	e := newEnv(t)
	e.fake("-")
	e.setEnv("WORKER_DOWNLOAD_ENV", "FAKE_MODE=longline", "FAKE_LONGLINE_MB=48")
	e.settings["WORKER_LOGS_MAX_SIZE_MB"] = "1"
	e.settings["WORKER_LOGS_MAX_BACKUPS"] = "2"
	e.settings["WORKER_RETRY_MAX_ATTEMPTS"] = "1"
	e.start()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	r := e.waitStatus(id, "failed", 60*time.Second) // it printed, but made no files
	close(stopSampling)
	<-sampled
	if r.ErrMsg == nil || !strings.Contains(*r.ErrMsg, "left no files") {
		t.Errorf("error_message = %v", r.ErrMsg)
	}
	if grew := int64(peak.Load()) - int64(before.HeapInuse); grew > 16<<20 {
		t.Errorf("heap in use grew by %d MiB while 48 MiB went through", grew>>20)
	}

	logs, err := filepath.Glob(filepath.Join(e.root, "logs", "tasks", fmt.Sprintf("task-%d*", id)))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(b))
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(line) > 64<<10+200 {
				t.Fatalf("%s holds a line of %d bytes", p, len(line))
			}
		}
	}
	t.Logf("heap in use %d KiB before, %d KiB at the peak; task log: %d files, %d KiB", before.HeapInuse>>10, peak.Load()>>10, len(logs), total>>10)
	if len(logs) < 2 || len(logs) > 3 || total > 3<<20+64<<10 {
		t.Errorf("task log: %d files of %d bytes in all; want the current one and at most 2 rotated ones of about 1 MiB", len(logs), total)
	}
}

// Nothing in the worker goes through a shell: only package process imports
// os/exec (and runs argv lists), and no code names a shell with "-c".
func TestNoShellInTheCode(t *testing.T) {
	root := testutil.Root(t)
	shells := map[string]bool{"sh": true, "/bin/sh": true, "bash": true, "/bin/bash": true, "/usr/bin/env": true}
	checked := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return err
		}
		checked++
		rel, _ := filepath.Rel(root, p)
		for _, imp := range f.Imports {
			if imp.Path.Value == `"os/exec"` && filepath.Dir(rel) != filepath.Join("internal", "process") {
				t.Errorf("%s imports os/exec: only internal/process may", rel)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && shells[s] {
					t.Errorf("%s names the shell %q", rel, s)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("only %d files checked", checked)
	}
}
