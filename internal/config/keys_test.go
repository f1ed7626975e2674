package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFile writes a YAML file into a fresh folder and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "worker.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// download.egress_allow: a YAML list or a JSON array in the environment; bare
// addresses are single-address prefixes; every prefix is held masked.
func TestEgressAllow(t *testing.T) {
	want := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}
	c, err := Load("", append(minimal(), `WORKER_DOWNLOAD_EGRESS_ALLOW=["127.0.0.1", "10.1.2.3/8", "::1", "fd00::/8", "::ffff:192.168.0.0/112"]`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Download.EgressAllow, want) {
		t.Errorf("from the environment: %v, want %v", c.Download.EgressAllow, want)
	}
	path := writeFile(t, "download:\n  egress_guard: false\n  egress_allow: [127.0.0.1/32, 10.0.0.0/8, \"::1/128\", \"fd00::/8\", 192.168.0.0/16]\n")
	c, err = Load(path, minimal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Download.EgressAllow, want) || c.Download.EgressGuard {
		t.Errorf("from the file: %v guard %v", c.Download.EgressAllow, c.Download.EgressGuard)
	}
	if s := c.String(); !strings.Contains(s, `download.egress_allow: ["127.0.0.1/32","10.0.0.0/8","::1/128","fd00::/8","192.168.0.0/16"]`) {
		t.Errorf("String():\n%s", s)
	}
	// Several bad items: the first is named.
	_, err = Load("", append(minimal(), `WORKER_DOWNLOAD_EGRESS_ALLOW=["127.0.0.1/32", "fe80::1%eth0", "nope"]`))
	if err == nil || !strings.Contains(err.Error(), `download.egress_allow: "fe80::1%eth0" is not a CIDR prefix`) {
		t.Errorf("zone: %v", err)
	}
}

// download.cookies_file is a path that must be a readable regular file; its
// contents never appear in the printed configuration or an error.
func TestCookiesFile(t *testing.T) {
	dir := t.TempDir()
	cookies := filepath.Join(dir, "cookies.txt")
	const content = "# Netscape HTTP Cookie File\n.udemy.com\tTRUE\t/\tTRUE\t0\taccess_token\tcookie-Sec_1\n"
	if err := os.WriteFile(cookies, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := `WORKER_DOWNLOAD_COMMAND=["yt-dlp","--cookies","{cookies}","--proxy","{proxy}","--","{url}"]`
	c, err := Load("", append(minimal(), "WORKER_DOWNLOAD_COOKIES_FILE="+cookies, cmd))
	if err != nil {
		t.Fatal(err)
	}
	if c.Download.CookiesFile != cookies {
		t.Errorf("cookies_file = %q", c.Download.CookiesFile)
	}
	if s := c.String(); !strings.Contains(s, "download.cookies_file: "+cookies+"\n") || strings.Contains(s, "cookie-Sec_1") {
		t.Errorf("String() must show the path, not the contents:\n%s", s)
	}

	cases := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.txt"), "download.cookies_file: " + filepath.Join(dir, "nope.txt") + " does not exist"},
		{"a folder", dir, "download.cookies_file: " + dir + " is not a regular file"},
	}
	if os.Geteuid() != 0 { // root opens any file
		locked := filepath.Join(dir, "locked.txt")
		if err := os.WriteFile(locked, []byte(content), 0o000); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, path, want string }{"unreadable", locked, "download.cookies_file: " + locked + " cannot be opened for reading: permission denied"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("", append(minimal(), "WORKER_DOWNLOAD_COOKIES_FILE="+tc.path))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}

	// {cookies} with no cookies file names both keys.
	_, err = Load("", append(minimal(), cmd))
	if err == nil || err.Error() != "download.command: uses {cookies}, but download.cookies_file is empty" {
		t.Fatalf("err = %v", err)
	}
}

// The contract's keys the worker does not use yet are read with their
// defaults, and their secrets are masked.
func TestContractKeysNotUsedYet(t *testing.T) {
	hash := "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	path := writeFile(t, `
redis:
  sentinel:
    addrs: ["s1:26379", "s2:26379"]
    password: sentinel-Pw_1
reconcile: {interval: 1m, stale_after: 30m}
console:
  listen: 127.0.0.1:9109
  users: ["operator:ann:`+hash+`", "viewer:bob:`+hash+`"]
`)
	c, err := Load(path, minimal())
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Redis:     Redis{Sentinel: Sentinel{Addrs: []string{"s1:26379", "s2:26379"}, Password: "sentinel-Pw_1"}},
		Reconcile: Reconcile{Interval: 60e9, StaleAfter: 1800e9},
		Console:   Console{Listen: "127.0.0.1:9109", Users: []string{"operator:ann:" + hash, "viewer:bob:" + hash}},
	}
	if !reflect.DeepEqual(c.Redis.Sentinel, want.Redis.Sentinel) || c.Reconcile != want.Reconcile || !reflect.DeepEqual(c.Console, want.Console) {
		t.Fatalf("got %+v %+v %+v", c.Redis.Sentinel, c.Reconcile, c.Console)
	}
	s := c.String()
	for _, line := range []string{
		"redis.sentinel.password: ***\n",
		`console.users: ["operator:ann:***","viewer:bob:***"]` + "\n",
		`redis.sentinel.addrs: ["s1:26379","s2:26379"]` + "\n",
		"reconcile.stale_after: 30m0s\n",
	} {
		if !strings.Contains(s, line) {
			t.Errorf("String() lacks %q:\n%s", line, s)
		}
	}
	for _, secret := range []string{"sentinel-Pw_1", hash} {
		if strings.Contains(s, secret) {
			t.Errorf("String() shows %q", secret)
		}
		if !strings.Contains(strings.Join(c.secrets(), "\n"), secret) {
			t.Errorf("secrets() lacks %q", secret)
		}
	}
	// A bad hash is named by its user, never quoted.
	_, err = Load("", append(minimal(), `WORKER_CONSOLE_USERS=["viewer:cy:hash-Sec_2"]`))
	if err == nil || !strings.Contains(err.Error(), `console.users: user "cy"`) || strings.Contains(err.Error(), "hash-Sec_2") {
		t.Fatalf("err = %v", err)
	}
	// workerctl checks console.* too.
	if _, err := LoadForTool("", []string{"WORKER_CONSOLE_LISTEN=nope"}); err == nil || !strings.Contains(err.Error(), "console.listen:") {
		t.Fatalf("LoadForTool: %v", err)
	}
}

// download.announce and upload.parallel: from the file, from the environment
// (WORKER_DOWNLOAD_ANNOUNCE, WORKER_UPLOAD_PARALLEL), shown as given.
func TestAnnounceAndParallel(t *testing.T) {
	path := writeFile(t, "download:\n  announce: none\nupload:\n  parallel: 4\n")
	c, err := Load(path, minimal())
	if err != nil {
		t.Fatal(err)
	}
	if c.Download.Announce.Enabled() || c.Download.Announce.String() != "none" || c.Upload.Parallel != 4 {
		t.Errorf("from the file: announce %v, parallel %d", c.Download.Announce, c.Upload.Parallel)
	}
	c, err = Load(path, append(minimal(), `WORKER_DOWNLOAD_ANNOUNCE=re:^\[done\] (.+)$`, "WORKER_UPLOAD_PARALLEL=16"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Download.Announce.Match([]byte("[done] Course/a.mp4")); !ok || got != "Course/a.mp4" || c.Upload.Parallel != 16 {
		t.Errorf("from the environment: announce %v matched %q %v, parallel %d", c.Download.Announce, got, ok, c.Upload.Parallel)
	}
	if s := c.String(); !strings.Contains(s, "download.announce: re:^\\[done\\] (.+)$\n") || !strings.Contains(s, "upload.parallel: 16\n") {
		t.Errorf("String():\n%s", s)
	}
}
