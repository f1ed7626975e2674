// Package job decodes and checks the jobs the web app pushes (contract section 1).
// It owns the rules a payload must meet on its own; comparing a job with its
// download_tasks row is Match. Every error is a reason a person can act on, fit for
// the dead-letter list: it names the field, and quotes at most a short, cleaned
// part of what was received.
//
// The queue is not trusted: anyone who can write to Redis can push a job. Decode
// therefore refuses anything it does not fully understand rather than repairing
// it, and a job that passes still has to agree with its row (Match).
package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a payload and its fields, in bytes.
const (
	MaxPayload = 64 << 10
	MaxURL     = 2048
	MaxEmail   = 254
)

// Job is a decoded, checked job.
type Job struct {
	TaskID    int64
	Email     string
	CourseURL string
	OrderID   *int64 // nil when the job does not name one
}

// Field names of the wire format. They are matched exactly: encoding/json would
// also take "TASKID" or "TaskId" for taskId, which the web app's JSON.parse treats
// as unknown fields, so the two would disagree on which task a payload names.
const (
	keyTaskID    = "taskId"
	keyEmail     = "email"
	keyCourseURL = "courseUrl"
	keyOrderID   = "orderId"
)

// jsonSpace is the white space JSON allows between tokens.
const jsonSpace = " \t\r\n"

// fields parses payload as one JSON object and returns its members, raw. A key
// given twice keeps its last value, as JSON.parse does.
func fields(payload []byte) (map[string]json.RawMessage, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("payload of %d bytes is over the %d-byte limit", len(payload), MaxPayload)
	}
	trimmed := bytes.TrimLeft(payload, jsonSpace)
	if len(trimmed) == 0 {
		return nil, errors.New("not a JSON object: the payload is empty")
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("not a JSON object: starts with %s", shown(trimmed))
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %s", clip(err.Error()))
	}
	if rest := bytes.Trim(payload[dec.InputOffset():], jsonSpace); len(rest) > 0 {
		return nil, errors.New("not a JSON object: data after the object")
	}
	return m, nil
}

// Decode parses payload and checks each field's type and form, and that the
// course URL names one of allowedHosts exactly (see CheckURL). A payload over
// MaxPayload bytes is refused before it is parsed.
//
// On an error the Job returned holds only the task id, when the payload names a
// valid one (0 otherwise), so that the lines about a rejected job can name its
// task without parsing the payload again.
func Decode(payload []byte, allowedHosts []string) (Job, error) {
	m, err := fields(payload)
	if err != nil {
		return Job{}, err
	}
	id, err := decodeTaskID(m[keyTaskID])
	if err != nil {
		return Job{}, err
	}
	j, err := decodeRest(m, allowedHosts)
	if err != nil {
		return Job{TaskID: id}, err
	}
	j.TaskID = id
	return j, nil
}

// decodeRest decodes and checks the fields of a job other than its task id.
func decodeRest(m map[string]json.RawMessage, allowedHosts []string) (Job, error) {
	var j Job
	var err error
	if j.Email, err = decodeString(m[keyEmail], keyEmail, MaxEmail); err != nil {
		return Job{}, err
	}
	if err := checkEmail(j.Email); err != nil {
		return Job{}, err
	}
	if j.CourseURL, err = decodeString(m[keyCourseURL], keyCourseURL, MaxURL); err != nil {
		return Job{}, err
	}
	if err := CheckURL(j.CourseURL, allowedHosts); err != nil {
		return Job{}, err
	}
	if j.OrderID, err = decodeOrderID(m[keyOrderID]); err != nil {
		return Job{}, err
	}
	return j, nil
}

// Name is the name of task id's folder in the staging directory and of its log
// file: "task-<id>" (contract section 5).
func Name(id int64) string { return "task-" + strconv.FormatInt(id, 10) }

// TaskID digs the task id out of a payload that may fail Decode, for log lines
// about a rejected job; 0 when there is none.
func TaskID(payload []byte) int64 {
	m, err := fields(payload)
	if err != nil {
		return 0
	}
	id, err := decodeTaskID(m[keyTaskID])
	if err != nil {
		return 0
	}
	return id
}

func decodeTaskID(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("taskId is missing")
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("taskId: %w", err)
		}
	}
	id, ok := positive(s)
	if !ok {
		return 0, fmt.Errorf("taskId must be a positive whole number, got %s", shown(raw))
	}
	return id, nil
}

func decodeOrderID(raw json.RawMessage) (*int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	id, ok := positive(string(raw))
	if !ok {
		return nil, fmt.Errorf("orderId must be a positive whole number, got %s", shown(raw))
	}
	return &id, nil
}

// positive parses s, plain ASCII digits only (no sign, no exponent, no blanks),
// as an int64 above zero.
func positive(s string) (int64, bool) {
	if s == "" || len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

func decodeString(raw json.RawMessage, field string, max int) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("%s is missing", field)
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%s must be a string, got %s", field, shown(raw))
	}
	if s == "" {
		return "", fmt.Errorf("%s is empty", field)
	}
	if len(s) > max {
		return "", fmt.Errorf("%s is %d bytes, over the %d-byte limit", field, len(s), max)
	}
	return s, nil
}

func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return fmt.Errorf("email %s is not a valid address", quote(s))
	}
	return nil
}

// CheckURL accepts an absolute http or https URL without user info whose host
// is exactly one of allowedHosts (byte for byte: no suffix match, no case
// folding, no trailing dot), written in plain ASCII letters, digits, '.' and '-'
// (so no look-alike of another alphabet, no percent-escape), with a port, if
// any, from 1 to 65535. The URL must be valid UTF-8, must not start with '-' (a
// downloader would take it for an option) and must hold no white space, control
// character or invisible formatting character (bidi overrides, zero-width
// spaces); characters a shell would act on are data, and allowed.
func CheckURL(s string, allowedHosts []string) error {
	if strings.HasPrefix(s, "-") {
		return errors.New("courseUrl must not start with '-'")
	}
	if !utf8.ValidString(s) {
		return errors.New("courseUrl is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("courseUrl holds white space, a control character or an invisible formatting character (%U)", r)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return fmt.Errorf("courseUrl is not a URL: %s", clip(err.Error()))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("courseUrl must be http or https, got %s", quote(u.Scheme))
	}
	if u.User != nil {
		return errors.New("courseUrl must not hold a user name or password")
	}
	if u.Opaque != "" || u.Host == "" {
		return errors.New("courseUrl has no host: it must start with http:// or https:// and a host name")
	}
	host := u.Hostname()
	for _, r := range host {
		//nolint:staticcheck // QF1001: "not one of the accepted characters" reads better than its De Morgan form
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return fmt.Errorf("courseUrl host %s holds %q (%U): only ASCII letters, digits, '.' and '-' are accepted; a look-alike of an allowed host?",
				quote(host), r, r)
		}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("courseUrl port %s is not 1 to 65535", quote(p))
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return errors.New("courseUrl has an empty port")
	}
	for _, h := range allowedHosts {
		if host == h {
			return nil
		}
	}
	return fmt.Errorf("courseUrl host %s is not in download.allowed_hosts", quote(host))
}

// Row is what Match compares a job with: the download_tasks row's values.
type Row struct {
	Email     string
	CourseURL string
	OrderID   *int64
}

// Match checks a job against its row, the source of truth. The strings must be
// equal byte for byte.
func Match(j Job, r Row) error {
	if j.Email != r.Email {
		return errors.New("email does not match the download_tasks row")
	}
	if j.CourseURL != r.CourseURL {
		return errors.New("courseUrl does not match the download_tasks row")
	}
	if j.OrderID != nil && (r.OrderID == nil || *r.OrderID != *j.OrderID) {
		return errors.New("orderId does not match the download_tasks row")
	}
	return nil
}

// maxQuoted is how much of a received value a reason quotes, in bytes.
const maxQuoted = 80

// clip shortens s to maxQuoted bytes on a character boundary, marking the cut.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// quote renders a received string for a reason: in Go quotes, so that control
// characters and invalid UTF-8 are escaped and the reason stays one line, and
// cut to about maxQuoted bytes once quoted.
func quote(s string) string {
	if q := strconv.Quote(s); len(q) <= maxQuoted+2 {
		return q
	}
	var b strings.Builder
	b.WriteByte('"')
	for len(s) > 0 {
		_, size := utf8.DecodeRuneInString(s)
		q := strconv.Quote(s[:size])
		if b.Len()+len(q)-2 > maxQuoted {
			break
		}
		b.WriteString(q[1 : len(q)-1])
		s = s[size:]
	}
	b.WriteString(`"…`)
	return b.String()
}

// shown renders a received JSON value for a reason: clipped, with line breaks and
// other control characters as spaces. JSON already quotes strings and escapes
// what is inside them.
func shown(b []byte) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, clip(strings.ToValidUTF8(string(b), "\uFFFD")))
}
