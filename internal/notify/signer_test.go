package notify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignSpecVector(t *testing.T) {
	s := mustSigner(t, testSecret)
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestNewSignerRejects(t *testing.T) {
	tests := []struct {
		name, secret string
	}{
		{"empty", ""},
		{"prefix only", "whsec_"},
		{"no prefix", testKey},
		{"wrong prefix", "whsek_" + testKey},
		{"not base64", "whsec_MfKQ9r8GKYqr!wjUPD8ILPZIo2LaLaSw"},
		{"bad length", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"},
		{"missing padding", "whsec_c2VjcmV0MQ"},
		{"url alphabet", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa_-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.secret)
			if err == nil {
				t.Fatalf("NewSigner(%q) = %v, want an error", tt.secret, s)
			}
			if body := strings.TrimPrefix(tt.secret, "whsec_"); len(body) >= 4 && strings.Contains(err.Error(), body) {
				t.Fatalf("error %q contains the secret", err)
			}
		})
	}
}

func TestSignerDoesNotPrintKey(t *testing.T) {
	s := mustSigner(t, testSecret)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, s); strings.Contains(out, testKey) || strings.Contains(out, string(s.key)) {
			t.Fatalf("%s of a Signer prints the key: %q", format, out)
		}
	}
}

func TestVerify(t *testing.T) {
	s := mustSigner(t, testSecret)
	other := mustSigner(t, "whsec_c2VjcmV0IHRoYXQgaXMgbm90IHRoZSBzYW1l")
	const id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	now := time.Unix(1614265330, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"test": 2432232314}`)
	good := s.Sign(id, now.Unix(), body)

	tests := []struct {
		name    string
		ts      string
		body    string
		header  string
		now     time.Time
		wantErr error
	}{
		{"valid", ts, string(body), good, now, nil},
		{"several signatures", ts, string(body), "v1,Zm9v " + other.Sign(id, now.Unix(), body) + " " + good, now, nil},
		{"other version ignored", ts, string(body), "v1a," + strings.TrimPrefix(good, "v1,"), now, ErrSignature},
		{"wrong key", ts, string(body), other.Sign(id, now.Unix(), body), now, ErrSignature},
		{"tampered body", ts, `{"test": 2432232315}`, good, now, ErrSignature},
		{"empty header", ts, string(body), "", now, ErrSignature},
		{"garbage header", ts, string(body), "v1,!!! ,,, v1", now, ErrSignature},
		{"too old", ts, string(body), good, now.Add(6 * time.Minute), ErrTimestamp},
		{"too new", ts, string(body), good, now.Add(-6 * time.Minute), ErrTimestamp},
		{"within tolerance", ts, string(body), good, now.Add(4 * time.Minute), nil},
		{"timestamp not a number", "soon", string(body), good, now, ErrTimestamp},
		{"timestamp re-spelled", "+" + ts, string(body), good, now, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Verify(id, tt.ts, []byte(tt.body), tt.header, tt.now, 0)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		id := NewID()
		if !strings.HasPrefix(id, "msg_") || len(id) < 4+20 {
			t.Fatalf("NewID = %q, want msg_ and at least 20 random characters", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}
