package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// A key that names nothing, in the file or as a WORKER_ variable, stops
// start-up with the key and the nearest known one; every such key is reported.
func TestUnknownKeys(t *testing.T) {
	cases := []struct {
		name string
		yaml string   // the file; none when empty
		env  []string // added to minimal()
		want []string // each must be a line of the error
	}{
		{
			name: "nested key typo",
			yaml: "download:\n  timout: 1h\n",
			want: []string{"download.timout: did you mean download.timeout?"},
		},
		{
			name: "top-level section typo",
			yaml: "dowload:\n  timeout: 1h\n",
			want: []string{"dowload.timeout: did you mean download.timeout?"},
		},
		{
			name: "empty section typo",
			yaml: "metrcs:\n",
			want: []string{"metrcs: did you mean metrics?"},
		},
		{
			name: "nested section typo",
			yaml: "redis:\n  sentinal:\n    master: m\n",
			want: []string{"redis.sentinal.master: did you mean redis.sentinel.master?"},
		},
		{
			name: "environment typo",
			env:  []string{"WORKER_DOWLOAD_TIMEOUT=1h"},
			want: []string{"WORKER_DOWLOAD_TIMEOUT names no key: did you mean WORKER_DOWNLOAD_TIMEOUT?"},
		},
		{
			name: "environment in lower case",
			env:  []string{"WORKER_download_timeout=1h"},
			want: []string{"WORKER_download_timeout names no key: did you mean WORKER_DOWNLOAD_TIMEOUT?"},
		},
		{
			name: "far from anything",
			yaml: "frobnicator:\n  level: 11\n",
			env:  []string{"WORKER_SOMETHING_ELSE_ENTIRELY=1"},
			want: []string{"frobnicator.level: names no key", "WORKER_SOMETHING_ELSE_ENTIRELY names no key"},
		},
		{
			name: "several at once",
			yaml: "worker:\n  concurency: 3\nlogs:\n  levl: debug\nupload:\n  quota_wiat: 2h\n",
			env:  []string{"WORKER_DOWNLOAD_EGRESS_GAURD=false", "WORKER_MYSQL_DNS=x"},
			want: []string{
				"worker.concurency: did you mean worker.concurrency?",
				"logs.levl: did you mean logs.level?",
				"upload.quota_wiat: did you mean upload.quota_wait?",
				"WORKER_DOWNLOAD_EGRESS_GAURD names no key: did you mean WORKER_DOWNLOAD_EGRESS_GUARD?",
				"WORKER_MYSQL_DNS names no key: did you mean WORKER_MYSQL_DSN?",
			},
		},
		{
			name: "section given a value",
			yaml: "download: 5\n",
			want: []string{"download: must hold keys (download.…), not a value"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeFile(t, tc.yaml)
			}
			_, err := Load(path, append(minimal(), tc.env...))
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("error lacks the line %q:\n%v", w, err)
				}
			}
			if len(lines) != len(tc.want) {
				t.Errorf("%d lines, want %d:\n%v", len(lines), len(tc.want), err)
			}
		})
	}
}

// Variables that are not ours are ignored, whatever they hold; a file may
// spell keys in any case, and leave a section empty.
func TestKnownKeysAccepted(t *testing.T) {
	path := writeFile(t, `
Download:
  Timeout: 90s
metrics:
reconcile: {}
redis:
  sentinel:
    addrs: ["10.0.0.1:26379"]
`)
	env := append(minimal(), "WORKERCTL_CONFIG=/etc/x.yaml", "WORKER=1", "COURSE_WORKER_X=1", "HOME=/root", "NOEQUALS")
	c, err := Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Download.Timeout.String() != "1m30s" || !reflect.DeepEqual(c.Redis.Sentinel.Addrs, []string{"10.0.0.1:26379"}) {
		t.Fatalf("values lost: timeout %s addrs %v", c.Download.Timeout, c.Redis.Sentinel.Addrs)
	}
}

func TestNearest(t *testing.T) {
	cands := []string{"download.timeout", "download.env", "logs.dir", "metrics"}
	cases := []struct {
		name, want string
		ok         bool
	}{
		{"download.timout", "download.timeout", true},
		{"downlaod.timeout", "download.timeout", true}, // a transposition is two edits
		{"logs.dri", "logs.dir", true},
		{"logs.d", "logs.dir", true},
		{"xyz", "", false},
		{"download.x", "", false},              // 3 edits > max(2, 10/4)
		{"download.tim", "download.env", true}, // 3 edits <= 12/4
		{"WORKER_METRIX", "", false},
	}
	for _, tc := range cases {
		got, ok := nearest(tc.name, cands)
		if got != tc.want || ok != tc.ok {
			t.Errorf("nearest(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}} {
		if got := levenshtein(tc.a, tc.b); got != tc.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

// workerctl's loader reports a typo only when it is, or is nearest to, a key
// the tool uses; the worker's loader reports every typo.
func TestLoadForToolTypos(t *testing.T) {
	cases := []struct {
		env     string
		yaml    string
		toolErr string // "" when LoadForTool accepts it
	}{
		{env: "WORKER_REDIS_ADR=10.0.0.1:6379", toolErr: "WORKER_REDIS_ADR names no key: did you mean WORKER_REDIS_ADDR?"},
		{yaml: "logs:\n  levl: debug\n", toolErr: "logs.levl: did you mean logs.level?"},
		{yaml: "console:\n  user: []\n", toolErr: "console.user: did you mean console.users?"},
		{env: "WORKER_REDIS_WHATEVER_THIS_IS=1", toolErr: "WORKER_REDIS_WHATEVER_THIS_IS names no key"},
		{env: "WORKER_DOWLOAD_TIMEOUT=1h"},
		{yaml: "webhook:\n  secrett: x\n"},
		{yaml: "frobnicator: 1\n"},
		{yaml: "redis: 6379\n", toolErr: "redis: must hold keys (redis.…), not a value"},
	}
	for _, tc := range cases {
		t.Run(tc.env+tc.yaml, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeFile(t, tc.yaml)
			}
			var env []string
			if tc.env != "" {
				env = []string{tc.env}
			}
			_, err := LoadForTool(path, append([]string{}, env...))
			switch {
			case tc.toolErr == "" && err != nil:
				t.Errorf("LoadForTool: %v", err)
			case tc.toolErr != "" && (err == nil || err.Error() != tc.toolErr):
				t.Errorf("LoadForTool: %v, want %q", err, tc.toolErr)
			}
			if _, err := Load(path, append(minimal(), env...)); err == nil {
				t.Error("Load accepted a typo")
			}
		})
	}
}
