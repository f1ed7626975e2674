package job

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// FuzzDecode feeds Decode arbitrary payloads (seeds: testdata/fuzz/FuzzDecode and
// the cases below). Whatever the input, Decode must not panic, a rejection must
// be a short one-line reason, and an accepted job must meet every rule of
// contract section 1 on its own, survive a round trip through JSON, and name the
// same task as TaskID.
func FuzzDecode(f *testing.F) {
	for _, p := range []string{
		`{"taskId": 17, "email": "buyer@example.com", "courseUrl": "https://www.udemy.com/course/go-in-depth/", "orderId": 12}`,
		`{"taskId": "17", "email": "b@x.io", "courseUrl": "http://127.0.0.1:8080/c/$(touch%20x);id|x` + "`id`" + `"}`,
		`{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com.evil.test/"}`,
		`{"taskId": 1, "email": "a@b.io", "courseUrl": "--exec=id"}`,
		`{"TASKID": 1, "taskId": 2, "email": "a@b.io", "courseUrl": "https://x@www.udemy.com/"}`,
		`{"taskId": 1e3, "email": "a@b.io", "courseUrl": "file:///etc/passwd", "orderId": -1}`,
		`{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udem\u0443.com/"} {}`,
	} {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		j, err := Decode(payload, hosts)
		id := TaskID(payload)
		if err != nil {
			checkReason(t, err)
			if j != (Job{TaskID: id}) {
				t.Fatalf("refused job %+v, want just the task id %d", j, id)
			}
			return
		}
		if j.TaskID <= 0 || id != j.TaskID {
			t.Fatalf("task id %d, TaskID says %d", j.TaskID, id)
		}
		if j.OrderID != nil && *j.OrderID <= 0 {
			t.Fatalf("order id %d", *j.OrderID)
		}
		if j.Email == "" || len(j.Email) > MaxEmail || strings.ContainsFunc(j.Email, unicode.IsControl) {
			t.Fatalf("email %q", j.Email)
		}
		checkAcceptedURL(t, j.CourseURL)

		// Round trip: the job as the web app would write it decodes to itself and
		// matches a row holding the same values.
		b, err := json.Marshal(map[string]any{"taskId": j.TaskID, "email": j.Email, "courseUrl": j.CourseURL, "orderId": j.OrderID})
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(b, hosts)
		if err != nil {
			t.Fatalf("re-encoded job %s rejected: %v", b, err)
		}
		if again.TaskID != j.TaskID || again.Email != j.Email || again.CourseURL != j.CourseURL ||
			(again.OrderID == nil) != (j.OrderID == nil) || (j.OrderID != nil && *again.OrderID != *j.OrderID) {
			t.Fatalf("round trip %+v -> %+v", j, again)
		}
		if err := Match(j, Row{Email: j.Email, CourseURL: j.CourseURL, OrderID: j.OrderID}); err != nil {
			t.Fatalf("job does not match its own row: %v", err)
		}
	})
}

// FuzzCheckURL checks CheckURL alone, on strings rather than JSON, so that the
// fuzzer spends its time on URLs.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://www.udemy.com/course/go/",
		"http://127.0.0.1:8080/c/x.mp4?a=$(id)#`id`",
		"https://www.udemy.com.evil.test/",
		"https://evil.test\\@www.udemy.com/",
		"https://www.udemy.com:443@evil.test/",
		"HTTPS://www.udemy.com:65535/",
		"https://www.udemy.com%2F@evil.test/",
		"https://[::1]/",
		"-https://www.udemy.com/",
		"https://www.udemу.com/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := CheckURL(s, hosts); err != nil {
			checkReason(t, err)
			return
		}
		checkAcceptedURL(t, s)
	})
}

// checkAcceptedURL fails unless s meets every rule an accepted courseUrl must.
func checkAcceptedURL(t *testing.T, s string) {
	t.Helper()
	if s == "" || strings.HasPrefix(s, "-") {
		t.Fatalf("accepted URL %q", s)
	}
	if strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}) {
		t.Fatalf("accepted URL %q holds a space or a control character", s)
	}
	lower := strings.ToLower(s)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		t.Fatalf("accepted URL %q does not start with http:// or https://", s)
	}
	u, err := url.Parse(s)
	if err != nil || u.User != nil || !slices.Contains(hosts, u.Hostname()) {
		t.Fatalf("accepted URL %q: user %v, host %q, err %v", s, u.User, u.Hostname(), err)
	}
	// The authority as written, up to the first '/', '?' or '#', is the host and
	// an optional port: no user info hidden in it, nothing escaped.
	rest := s[strings.Index(s, "//")+2:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if host, _, _ := strings.Cut(rest, ":"); host != u.Hostname() {
		t.Fatalf("accepted URL %q: authority %q, parsed host %q", s, rest, u.Hostname())
	}
}
