// Package job decodes and checks the jobs the web app pushes (contract section 1).
// It owns the rules a payload must meet on its own; comparing a job with its
// download_tasks row is Match. Every error is a reason a person can act on, fit for
// the dead-letter list.
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
)

// Limits on a payload and its fields.
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

// wire is the job as JSON; fields are raw so their types can be checked and reported.
type wire struct {
	TaskID    json.RawMessage `json:"taskId"`
	Email     json.RawMessage `json:"email"`
	CourseURL json.RawMessage `json:"courseUrl"`
	OrderID   json.RawMessage `json:"orderId"`
}

// Decode parses payload and checks each field's type and form, and that the
// course URL names one of allowedHosts exactly.
func Decode(payload []byte, allowedHosts []string) (Job, error) {
	if len(payload) > MaxPayload {
		return Job{}, fmt.Errorf("payload of %d bytes is over the %d-byte limit", len(payload), MaxPayload)
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return Job{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return Job{}, errors.New("not a JSON object: data after the object")
	}
	var j Job
	var err error
	if j.TaskID, err = decodeTaskID(w.TaskID); err != nil {
		return Job{}, err
	}
	if j.Email, err = decodeString(w.Email, "email", MaxEmail); err != nil {
		return Job{}, err
	}
	if err := checkEmail(j.Email); err != nil {
		return Job{}, err
	}
	if j.CourseURL, err = decodeString(w.CourseURL, "courseUrl", MaxURL); err != nil {
		return Job{}, err
	}
	if err := CheckURL(j.CourseURL, allowedHosts); err != nil {
		return Job{}, err
	}
	if j.OrderID, err = decodeOrderID(w.OrderID); err != nil {
		return Job{}, err
	}
	return j, nil
}

// TaskID digs the task id out of a payload that may fail Decode, for log lines
// about a rejected job; 0 when there is none.
func TaskID(payload []byte) int64 {
	if len(payload) > MaxPayload {
		return 0
	}
	var w wire
	if json.Unmarshal(payload, &w) != nil {
		return 0
	}
	id, err := decodeTaskID(w.TaskID)
	if err != nil {
		return 0
	}
	return id
}

func decodeTaskID(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("taskId is missing")
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("taskId: %v", err)
		}
	} else {
		s = string(raw)
	}
	if s == "" || len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("taskId must be a positive whole number, got %s", clip(string(raw)))
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("taskId must be a positive whole number, got %s", clip(string(raw)))
	}
	return id, nil
}

func decodeOrderID(raw json.RawMessage) (*int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	s := string(raw)
	if len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
		return nil, fmt.Errorf("orderId must be a positive whole number, got %s", clip(s))
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Errorf("orderId must be a positive whole number, got %s", clip(s))
	}
	return &id, nil
}

func decodeString(raw json.RawMessage, field string, max int) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("%s is missing", field)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s must be a string, got %s", field, clip(string(raw)))
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
		return fmt.Errorf("email %q is not a valid address", clip(s))
	}
	return nil
}

// CheckURL accepts an http or https URL without user info whose host is exactly one
// of allowedHosts (no suffix match).
func CheckURL(s string, allowedHosts []string) error {
	if strings.HasPrefix(s, "-") {
		return errors.New("courseUrl must not start with '-'")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == ' ' {
			return errors.New("courseUrl holds a space or a control character")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("courseUrl is not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("courseUrl must be http or https, got %q", clip(u.Scheme))
	}
	if u.User != nil {
		return errors.New("courseUrl must not hold a user name or password")
	}
	host := u.Hostname()
	for _, h := range allowedHosts {
		if host == h {
			return nil
		}
	}
	return fmt.Errorf("courseUrl host %q is not in download.allowed_hosts", clip(host))
}

// Row is what Match compares a job with: the download_tasks row's values.
type Row struct {
	Email     string
	CourseURL string
	OrderID   *int64
}

// Match checks a job against its row, the source of truth.
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

// clip shortens a value quoted in a reason.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
