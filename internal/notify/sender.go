package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultTimeout bounds one attempt when Sender.Timeout is zero
// (the contract's webhook.timeout default).
const DefaultTimeout = 10 * time.Second

const (
	// maxDrain is how much of an answer body is read so the connection can be reused.
	maxDrain = 64 << 10
	// maxSnippet is how much of an answer body is kept for the error text.
	maxSnippet = 200
)

// defaultClient verifies TLS (the default) and does not follow redirects.
var defaultClient = &http.Client{
	Transport:     http.DefaultTransport.(*http.Transport).Clone(),
	CheckRedirect: noRedirect,
}

// noRedirect makes the client return a 3xx answer as it is: the contract
// counts a redirect as a failed attempt.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Sender POSTs signed events to the web app. Its fields are set once before
// use; it is then safe for concurrent use.
type Sender struct {
	// URL is webhook.url.
	URL string
	// Signer signs each attempt.
	Signer *Signer
	// Timeout bounds one attempt, answer included; zero means DefaultTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a client with verified TLS. Redirects
	// are never followed, whichever client is given.
	Client *http.Client
	// Now gives the webhook-timestamp; nil means time.Now.
	Now func() time.Time
}

// DeliveryError is a failed attempt.
type DeliveryError struct {
	// Status is the HTTP status of the answer, 0 when there was none.
	Status int
	// Permanent is true when the request could not even be made (no signer, a
	// bad URL): sending it again will not help. An answer of the web app,
	// whatever its status, is never permanent (contract section 4): a deploy
	// that answers 404 for a minute, or a secret rotated one side first, must
	// not silence the e-mails until someone looks.
	Permanent bool
	// Body is the start of the answer body, cleaned for a log line.
	Body string
	// Err is the transport error, or a note on the answer; may be nil.
	Err error
}

// Error says what happened without the request body or the secret.
func (e *DeliveryError) Error() string {
	var b strings.Builder
	if e.Status == 0 {
		b.WriteString("webhook: no answer")
	} else {
		fmt.Fprintf(&b, "webhook: answered %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": body %q", e.Body)
	}
	if e.Permanent {
		b.WriteString(" (permanent)")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *DeliveryError) Unwrap() error { return e.Err }

// IsPermanent reports whether err holds a DeliveryError that retrying cannot fix.
func IsPermanent(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de) && de.Permanent
}

// Send makes one attempt to deliver body under the webhook-id id, signed with
// a timestamp taken now. It returns nil on a 2xx answer, else a *DeliveryError.
func (s *Sender) Send(ctx context.Context, id string, body []byte) error {
	if s.Signer == nil {
		return &DeliveryError{Permanent: true, Err: errors.New("sender has no signer")}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}

	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return &DeliveryError{Permanent: true, Err: fmt.Errorf("build request: %w", err)}
	}
	ts := now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "coursedl-worker")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", s.Signer.Sign(id, ts, body))

	resp, err := s.client().Do(req)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s: %w", timeout, err)
		}
		return &DeliveryError{Err: err}
	}
	snippet := drain(resp.Body)
	_ = resp.Body.Close() // drained: a close error loses nothing
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	de := &DeliveryError{Status: resp.StatusCode, Body: snippet}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		de.Err = fmt.Errorf("redirect to %q not followed", resp.Header.Get("Location"))
	}
	return de
}

// client returns the configured client with redirects turned off.
func (s *Sender) client() *http.Client {
	if s.Client == nil {
		return defaultClient
	}
	c := *s.Client
	c.CheckRedirect = noRedirect
	return &c
}

// drain reads at most maxDrain bytes of an answer and returns its start, with
// control characters and invalid UTF-8 made harmless for a log.
func drain(body io.Reader) string {
	head := make([]byte, maxSnippet)
	n, _ := io.ReadFull(body, head)
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain-int64(n)))
	s := strings.ToValidUTF8(string(head[:n]), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
