package config

import (
	"strings"
	"testing"
)

// Every secret a configuration can hold is masked wherever the configuration is
// printed (worker --check-config prints String), and listed by secrets; errors
// about a bad secret do not quote it.
func TestRedactedHidesEverySecret(t *testing.T) {
	env := append(minimal(),
		"WORKER_MYSQL_DSN=app:dsn-Pw_1;x@tcp(127.0.0.1:3306)/app?timeout=5s",
		"WORKER_REDIS_PASSWORD=redis-Pw_2",
		"WORKER_WEBHOOK_URL=https://hook:url-Pw_3@app.example/api/webhooks?x=1",
		`WORKER_DOWNLOAD_ENV=["COOKIES=cookie-Tok_4"]`,
		`WORKER_UPLOAD_ENV=["RCLONE_DRIVE_TOKEN={\"access_token\":\"drive-Tok_5\"}"]`,
	)
	c, err := Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"dsn-Pw_1;x", "redis-Pw_2", "url-Pw_3", "cookie-Tok_4", "drive-Tok_5", strings.TrimPrefix(secret, "whsec_")}
	for _, out := range []string{c.String(), c.Redacted().MySQL.DSN + c.Redacted().Webhook.URL} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("printed configuration shows %q:\n%s", s, out)
			}
		}
	}
	s := c.String()
	for _, want := range []string{"webhook.url: https://hook:***@app.example/api/webhooks?x=1", "mysql.dsn: app:***@tcp(127.0.0.1:3306)/app"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
	got := strings.Join(c.secrets(), "\n")
	for _, want := range []string{"dsn-Pw_1;x", "redis-Pw_2", "url-Pw_3", secret} {
		if !strings.Contains(got, want) {
			t.Errorf("secrets() lacks %q", want)
		}
	}
	if c.Webhook.URL != "https://hook:url-Pw_3@app.example/api/webhooks?x=1" {
		t.Error("Redacted changed the original")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"https://app.example/hook":       "https://app.example/hook",
		"https://user@app.example/hook":  "https://user@app.example/hook",
		"https://u:p%40ss@app.example/h": "https://u:***@app.example/h",
		"http://[::1:namedport/":         "***",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A configuration error about a secret names the key, never the value.
func TestErrorsDoNotQuoteSecrets(t *testing.T) {
	cases := []struct{ env, value string }{
		{"WORKER_MYSQL_DSN=app:dsn-Pw_9@tcp(127.0.0.1:3306/app", "dsn-Pw_9"},
		{"WORKER_WEBHOOK_SECRET=whsec_not*base64*Sec_9", "Sec_9"},
		{"WORKER_WEBHOOK_SECRET=Sec_8-without-prefix", "Sec_8"},
		{`WORKER_UPLOAD_ENV=["TOKEN-Sec_7"]`, "Sec_7"},
	}
	for _, tc := range cases {
		_, err := Load("", append(minimal(), tc.env))
		if err == nil {
			t.Errorf("%s: accepted", tc.env)
			continue
		}
		if strings.Contains(err.Error(), tc.value) {
			t.Errorf("%s: error shows the secret: %v", tc.env, err)
		}
	}
}

// webhook.url is quoted in its error with its password masked.
func TestBadWebhookURLErrorMasksPassword(t *testing.T) {
	_, err := Load("", append(minimal(), "WORKER_WEBHOOK_URL=ftp://hook:url-Pw_6@app.example/x"))
	if err == nil || !strings.Contains(err.Error(), "webhook.url") || strings.Contains(err.Error(), "url-Pw_6") {
		t.Fatalf("err = %v, want webhook.url named and its password masked", err)
	}
}
