package job

import (
	"strings"
	"testing"
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
	if id := TaskID([]byte(`{"taskId": "42", "email": 1}`)); id != 42 {
		t.Fatalf("TaskID = %d", id)
	}
	if id := TaskID([]byte(`garbage`)); id != 0 {
		t.Fatalf("TaskID = %d", id)
	}
}
