package job

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var hosts = []string{"www.udemy.com", "127.0.0.1"}

func TestDecodeGood(t *testing.T) {
	cases := []struct {
		payload string
		id      int64
		order   int64 // 0: none
	}{
		{`{"taskId": 17, "email": "buyer@example.com", "courseUrl": "https://www.udemy.com/course/go-in-depth/", "orderId": 12}`, 17, 12},
		{`{"taskId": "17", "email": "buyer@example.com", "courseUrl": "https://www.udemy.com/course/go/"}`, 17, 0},
		{`{"taskId": 5, "email": "b@x.io", "courseUrl": "http://127.0.0.1:8080/c.mp4", "orderId": null, "extra": [1]}`, 5, 0},
		{`{"taskId": "9223372036854775807", "email": "b@x.io", "courseUrl": "https://www.udemy.com:443/c/?a=1&b=$(id);x|y#frag"}`, 9223372036854775807, 0},
		{`{"taskId": 7, "TaskId": 8, "TASKID": 9, "email": "b@x.io", "courseUrl": "https://www.udemy.com/c/"}`, 7, 0}, // other spellings are unknown fields
		{`{"taskId": 1, "taskId": 6, "email": "b@x.io", "courseUrl": "https://www.udemy.com/c/"}`, 6, 0},              // the last one wins, as in JSON.parse
		{"\n\t {\"taskId\": 3, \"email\": \"b@x.io\", \"courseUrl\": \"HTTPS://www.udemy.com/c/\"}\r\n", 3, 0},
	}
	for _, tc := range cases {
		j, err := Decode([]byte(tc.payload), hosts)
		if err != nil {
			t.Errorf("%s: %v", tc.payload, err)
			continue
		}
		if j.TaskID != tc.id || (tc.order == 0) != (j.OrderID == nil) || (j.OrderID != nil && *j.OrderID != tc.order) {
			t.Errorf("%s: got %+v", tc.payload, j)
		}
	}
}

func TestDecodeBad(t *testing.T) {
	ok := `"email": "a@b.io", "courseUrl": "https://www.udemy.com/c/"`
	cases := []struct {
		name, payload, reason string
	}{
		{"not json", `{taskId: 1}`, "not a JSON object"},
		{"array", `[1,2]`, "not a JSON object"},
		{"trailing", `{"taskId": 1, ` + ok + `} {}`, "data after the object"},
		{"no task id", `{` + ok + `}`, "taskId is missing"},
		{"zero task id", `{"taskId": 0, ` + ok + `}`, "positive whole number"},
		{"negative task id", `{"taskId": -3, ` + ok + `}`, "positive whole number"},
		{"float task id", `{"taskId": 1.5, ` + ok + `}`, "positive whole number"},
		{"huge task id", `{"taskId": 99999999999999999999, ` + ok + `}`, "positive whole number"},
		{"task id word", `{"taskId": "abc", ` + ok + `}`, "positive whole number"},
		{"task id bool", `{"taskId": true, ` + ok + `}`, "positive whole number"},
		{"no email", `{"taskId": 1, "courseUrl": "https://www.udemy.com/c/"}`, "email is missing"},
		{"email number", `{"taskId": 1, "email": 5, "courseUrl": "https://www.udemy.com/c/"}`, "email must be a string"},
		{"bad email", `{"taskId": 1, "email": "not-an-address", "courseUrl": "https://www.udemy.com/c/"}`, "not a valid address"},
		{"email with name", `{"taskId": 1, "email": "Bob <b@x.io>", "courseUrl": "https://www.udemy.com/c/"}`, "not a valid address"},
		{"no url", `{"taskId": 1, "email": "a@b.io"}`, "courseUrl is missing"},
		{"ftp", `{"taskId": 1, "email": "a@b.io", "courseUrl": "ftp://www.udemy.com/c/"}`, "http or https"},
		{"file", `{"taskId": 1, "email": "a@b.io", "courseUrl": "file:///etc/passwd"}`, "http or https"},
		{"other host", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://evil.test/c/"}`, "not in download.allowed_hosts"},
		{"suffix host", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com.evil.test/c/"}`, "not in download.allowed_hosts"},
		{"user info", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://x@www.udemy.com/c/"}`, "user name"},
		{"dash", `{"taskId": 1, "email": "a@b.io", "courseUrl": "--exec=id"}`, "must not start with '-'"},
		{"newline", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/c/\nx"}`, "control character"},
		{"order word", `{"taskId": 1, ` + ok + `, "orderId": "x"}`, "orderId must be"},
		{"order zero", `{"taskId": 1, ` + ok + `, "orderId": 0}`, "orderId must be"},
		{"huge", `{"taskId": 1, "pad": "` + strings.Repeat("a", MaxPayload) + `"}`, "over the 65536-byte limit"},
		{"long url", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/` + strings.Repeat("a", MaxURL) + `"}`, "over the 2048-byte limit"},
		{"long email", `{"taskId": 1, "email": "` + strings.Repeat("a", 250) + `@b.io", "courseUrl": "https://www.udemy.com/c/"}`, "over the 254-byte limit"},
		{"empty", ``, "the payload is empty"},
		{"null", `null`, "not a JSON object"},
		{"string", `"taskId"`, "not a JSON object"},
		{"trailing bracket", `{"taskId": 1, ` + ok + `}]`, "data after the object"},
		{"deep nesting", `{"taskId": 1, "x": ` + strings.Repeat("[", 20000) + `}`, "not a JSON object"},
		{"case-folded key", `{"TASKID": 1, ` + ok + `}`, "taskId is missing"},
		{"task id string float", `{"taskId": "1.0", ` + ok + `}`, "positive whole number"},
		{"task id string sign", `{"taskId": "+1", ` + ok + `}`, "positive whole number"},
		{"task id string blank", `{"taskId": " 1", ` + ok + `}`, "positive whole number"},
		{"task id path", `{"taskId": "1/../../etc", ` + ok + `}`, "positive whole number"},
		{"task id exponent", `{"taskId": 1e3, ` + ok + `}`, "positive whole number"},
		{"task id past int64", `{"taskId": 9223372036854775808, ` + ok + `}`, "positive whole number"},
		{"task id object", `{"taskId": {"n": 1}, ` + ok + `}`, "positive whole number"},
		{"email array", `{"taskId": 1, "email": ["a@b.io"], "courseUrl": "https://www.udemy.com/c/"}`, "email must be a string"},
		{"email empty", `{"taskId": 1, "email": "", "courseUrl": "https://www.udemy.com/c/"}`, "email is empty"},
		{"email header injection", `{"taskId": 1, "email": "a@b.io\r\nBcc: x@y.io", "courseUrl": "https://www.udemy.com/c/"}`, "not a valid address"},
		{"url number", `{"taskId": 1, "email": "a@b.io", "courseUrl": 42}`, "courseUrl must be a string"},
		{"url object", `{"taskId": 1, "email": "a@b.io", "courseUrl": {"href": "https://www.udemy.com/"}}`, "courseUrl must be a string"},
		{"javascript", `{"taskId": 1, "email": "a@b.io", "courseUrl": "javascript:alert(1)"}`, "http or https"},
		{"data", `{"taskId": 1, "email": "a@b.io", "courseUrl": "data:text/html,x"}`, "http or https"},
		{"scheme-relative", `{"taskId": 1, "email": "a@b.io", "courseUrl": "//www.udemy.com/c/"}`, "http or https"},
		{"opaque", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https:www.udemy.com/c/"}`, "has no host"},
		{"no host", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https:///www.udemy.com/c/"}`, "has no host"},
		{"empty user info", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://@www.udemy.com/c/"}`, "user name"},
		{"password", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://:pw@www.udemy.com/c/"}`, "user name"},
		{"allowed host as user", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com:443@evil.test/c/"}`, "user name"},
		{"backslash", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://evil.test\\@www.udemy.com/c/"}`, "not a URL"},
		{"escaped host", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www%2Eudemy.com/c/"}`, "not a URL"},
		{"cyrillic look-alike", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemу.com/c/"}`, "look-alike"},
		{"fullwidth look-alike", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://ｗｗｗ.udemy.com/c/"}`, "look-alike"},
		{"ideographic dots", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www。udemy。com/c/"}`, "look-alike"},
		{"punycode", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.xn--udmy-hra.com/c/"}`, "not in download.allowed_hosts"},
		{"trailing dot", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com./c/"}`, "not in download.allowed_hosts"},
		{"upper case host", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://WWW.UDEMY.COM/c/"}`, "not in download.allowed_hosts"},
		{"prefix host", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://evil-www.udemy.com/c/"}`, "not in download.allowed_hosts"},
		{"loopback", `{"taskId": 1, "email": "a@b.io", "courseUrl": "http://127.0.0.1:8080/c/"}`, "not in download.allowed_hosts"},
		{"ipv6", `{"taskId": 1, "email": "a@b.io", "courseUrl": "http://[::1]/c/"}`, "look-alike"},
		{"port too big", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com:99999/c/"}`, "not 1 to 65535"},
		{"port zero", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com:0/c/"}`, "not 1 to 65535"},
		{"empty port", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com:/c/"}`, "empty port"},
		{"tab", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/c/\tx"}`, "control character"},
		{"nul", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/c/\u0000"}`, "control character"},
		{"space", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/c/ --exec id"}`, "control character"},
		{"zero width space", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/c/\u200b"}`, "control character"},
		{"bidi override", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/c/\u202e"}`, "control character"},
		{"line separator", `{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/c/\u2028"}`, "control character"},
		{"dash option", `{"taskId": 1, "email": "a@b.io", "courseUrl": "--exec=touch /tmp/x;https://www.udemy.com/"}`, "must not start with '-'"},
		{"order string", `{"taskId": 1, ` + ok + `, "orderId": "12"}`, "orderId must be"},
		{"order negative", `{"taskId": 1, ` + ok + `, "orderId": -12}`, "orderId must be"},
		{"order float", `{"taskId": 1, ` + ok + `, "orderId": 12.5}`, "orderId must be"},
		{"order huge", `{"taskId": 1, ` + ok + `, "orderId": 123456789012345678901234567890}`, "orderId must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.payload), []string{"www.udemy.com"})
			if err == nil {
				t.Fatalf("accepted %s", tc.payload)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("reason %q does not say %q", err, tc.reason)
			}
			checkReason(t, err)
		})
	}
}

func TestMatch(t *testing.T) {
	o12, o13 := int64(12), int64(13)
	j := Job{TaskID: 1, Email: "a@b.io", CourseURL: "https://www.udemy.com/c/", OrderID: &o12}
	row := Row{Email: "a@b.io", CourseURL: "https://www.udemy.com/c/", OrderID: &o12}
	if err := Match(j, row); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		row  Row
		want string
	}{
		{"email", Row{Email: "x@b.io", CourseURL: row.CourseURL, OrderID: &o12}, "email does not match"},
		{"url", Row{Email: row.Email, CourseURL: "https://www.udemy.com/d/", OrderID: &o12}, "courseUrl does not match"},
		{"order", Row{Email: row.Email, CourseURL: row.CourseURL, OrderID: &o13}, "orderId does not match"},
		{"order null", Row{Email: row.Email, CourseURL: row.CourseURL}, "orderId does not match"},
	}
	for _, tc := range bad {
		if err := Match(j, tc.row); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	j.OrderID = nil // a job without orderId takes the row's
	if err := Match(j, Row{Email: row.Email, CourseURL: row.CourseURL, OrderID: &o13}); err != nil {
		t.Error(err)
	}
}

func TestTaskID(t *testing.T) {
	cases := []struct {
		payload string
		want    int64
	}{
		{`{"taskId": "42", "email": 1}`, 42},
		{`garbage`, 0},
		{`{"TaskId": 42}`, 0},
		{`{"taskId": -1}`, 0},
		{`{"taskId": 42, "pad": "` + strings.Repeat("a", MaxPayload) + `"}`, 0},
	}
	for _, tc := range cases {
		if id := TaskID([]byte(tc.payload)); id != tc.want {
			t.Errorf("TaskID(%.40s) = %d, want %d", tc.payload, id, tc.want)
		}
		// Decode refuses each, and gives back the same id.
		if j, err := Decode([]byte(tc.payload), hosts); err == nil || j != (Job{TaskID: tc.want}) {
			t.Errorf("Decode(%.40s) = %+v, %v; want the task id %d and an error", tc.payload, j, err, tc.want)
		}
	}
}

func TestName(t *testing.T) {
	if got := Name(17); got != "task-17" {
		t.Errorf("Name(17) = %q", got)
	}
}

// A reason is one line of bounded length, fit for dl:dead and a lifecycle line.
func TestReasonsAreShortOneLiners(t *testing.T) {
	long := strings.Repeat("\u202e\n", 1000)
	for _, p := range []string{
		`{"taskId": "` + long + `"}`,
		`{"taskId": [` + strings.Repeat("1,\n", 1000) + `1]}`,
		`{"taskId": 1, "email": "` + strings.Repeat("é", 120) + `"}`,
		`{"taskId": 1, "email": "a@b.io", "courseUrl": "https://` + strings.Repeat("\u0430", 500) + `/"}`,
		`{"taskId": 1, "email": "a@b.io", "courseUrl": "https://` + strings.Repeat("a", 500) + `.test/"}`,
		`{"taskId": 1, "email": "a@b.io", "courseUrl": "https://www.udemy.com/%zz` + strings.Repeat("a", 1500) + `"}`,
		`{"taskId": 1, "email": "a@b.io", "courseUrl": "` + strings.Repeat("x", 1500) + `://www.udemy.com/"}`,
		"\x00\xff" + strings.Repeat("\n", 100),
	} {
		_, err := Decode([]byte(p), hosts)
		if err == nil {
			t.Fatalf("accepted %.60q", p)
		}
		checkReason(t, err)
	}
}

// checkReason fails unless err's text is one line of valid UTF-8, at most 400 bytes.
func checkReason(t testing.TB, err error) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 400 || !utf8.ValidString(msg) || strings.ContainsFunc(msg, unicode.IsControl) {
		t.Fatalf("reason of %d bytes is not a short line: %q", len(msg), msg)
	}
}

// Regression (FuzzCheckURL): escaping made a quoted value of invalid UTF-8 four
// times as long as the cut; quote bounds what it returns, not what it is given.
func TestQuoteIsBoundedOnceEscaped(t *testing.T) {
	for _, s := range []string{strings.Repeat("\xdd", 300), strings.Repeat("\x01", 300), strings.Repeat("é", 300), strings.Repeat("a", 300)} {
		q := quote(s)
		if len(q) > maxQuoted+len(`""…`) || !utf8.ValidString(q) || !strings.HasSuffix(q, `"…`) {
			t.Errorf("quote(%.10q...) = %q, %d bytes", s, q, len(q))
		}
	}
	if q := quote("short\n"); q != `"short\n"` {
		t.Errorf("quote = %s", q)
	}
}
