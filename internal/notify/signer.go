package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// secretPrefix starts every Standard Webhooks secret.
const secretPrefix = "whsec_"

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's
// clock when Verify is given no tolerance (the specification's five minutes).
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify.
var (
	// ErrSignature means no v1 signature in the header matches the payload.
	ErrSignature = errors.New("notify: no matching webhook signature")
	// ErrTimestamp means webhook-timestamp is malformed or outside the tolerance.
	ErrTimestamp = errors.New("notify: webhook timestamp unusable")
)

// Signer holds the HMAC key decoded from a whsec_ secret. It is safe for
// concurrent use and never reveals the key in an error or a string.
type Signer struct {
	key []byte
}

// NewSigner decodes secret, which must be "whsec_" followed by the key in
// standard base64 (padded, as the specification says). The returned error
// never contains the secret.
func NewSigner(secret string) (*Signer, error) {
	if secret == "" {
		return nil, errors.New("notify: webhook secret is not set")
	}
	enc, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, errors.New("notify: webhook secret must start with " + secretPrefix)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil {
		// A CorruptInputError only gives an offset, never the input.
		return nil, fmt.Errorf("notify: webhook secret after %s is not standard base64: %w", secretPrefix, err)
	}
	if len(key) == 0 {
		return nil, errors.New("notify: webhook secret is empty")
	}
	return &Signer{key: key}, nil
}

// Sign returns the webhook-signature header value for one attempt:
// "v1," + base64(HMAC-SHA256(key, id + "." + ts + "." + body)).
func (s *Signer) Sign(id string, ts int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(s.mac(id, strconv.FormatInt(ts, 10), body))
}

// Verify checks a received webhook the way the web app does: ts is the
// webhook-timestamp header as received, header the webhook-signature header,
// which may hold several space-separated signatures; one valid "v1," entry is
// enough. A timestamp further than tolerance from now is rejected
// (tolerance <= 0 means DefaultTolerance). Comparison is constant-time.
func (s *Signer) Verify(id, ts string, body []byte, header string, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrTimestamp, ts)
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: %s away from now, tolerance %s", ErrTimestamp, skew.Round(time.Second), tolerance)
	}
	want := s.mac(id, ts, body)
	for _, part := range strings.Fields(header) {
		version, sig, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}

// String hides the key so that printing a Signer cannot leak it.
func (s *Signer) String() string { return "notify.Signer{key: redacted}" }

// GoString hides the key from %#v as well.
func (s *Signer) GoString() string { return s.String() }

// mac is HMAC-SHA256 over the signed content "<id>.<ts>.<body>".
func (s *Signer) mac(id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// NewID returns a fresh webhook-id: "msg_" and 128 random bits from
// crypto/rand in base32. Make it once per event and keep it for every retry
// so the web app can de-duplicate.
func NewID() string {
	return "msg_" + rand.Text()
}
