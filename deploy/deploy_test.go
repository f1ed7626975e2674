package deploy

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/process"
)

// tool finds a program on PATH. A missing tool skips the test on a developer's
// machine and fails it in CI (CI set), where scripts/services.sh installs it.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; scripts/services.sh install adds the Debian package %s", name, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s); CI fails here instead of skipping", name, pkg)
	return ""
}

// run runs a program through package process and returns its output lines.
func run(t *testing.T, env map[string]string, path string, args ...string) ([]string, error) {
	t.Helper()
	var lines []string
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := process.Run(ctx, process.Spec{
		Path: path,
		Args: args,
		Env:  process.MinimalEnv(env),
		OnLine: func(_ process.Stream, line []byte) {
			lines = append(lines, string(line))
		},
	})
	return lines, err
}

// unit reads the unit file into key -> values, in order.
func unit(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("systemd", "course-worker.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read only
	keys := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		keys[k] = append(keys[k], v)
	}
	return keys
}

func TestSystemdUnitVerifies(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	raw, err := os.ReadFile(filepath.Join("systemd", "course-worker.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart= names an executable; on a machine where the
	// worker is not installed, let it check this test's own binary instead.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "ExecStart=/usr/local/bin/worker ", "ExecStart="+self+" ")
	if text == string(raw) {
		t.Fatal("ExecStart= no longer starts /usr/local/bin/worker; update this test")
	}
	path := filepath.Join(t.TempDir(), "course-worker.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// Any output is a finding: verify prints unknown keys and bad values as
	// warnings and still exits 0.
	out, err := run(t, nil, analyze, "verify", "--man=no", path)
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, strings.Join(out, "\n"))
	}
	// The hardening stays at "OK" or better (exposure 2.5 of 10).
	out, err = run(t, nil, analyze, "security", "--offline=true", "--threshold=25", "--no-pager", path)
	if err != nil {
		t.Fatalf("systemd-analyze security: exposure above 2.5: %v\n%s", err, strings.Join(out, "\n"))
	}
}

func TestSystemdUnitSettings(t *testing.T) {
	u := unit(t)
	want := map[string]string{
		"Type":            "notify",
		"NotifyAccess":    "main",
		"KillMode":        "mixed",
		"EnvironmentFile": "/etc/course-worker/worker.env",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"PrivateTmp":      "yes",
		"ProtectHome":     "yes",
		"User":            "course-worker",
	}
	for k, v := range want {
		if got := u[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%v, want %s", k, got, v)
		}
	}
	rw := strings.Fields(strings.Join(u["ReadWritePaths"], " "))
	for _, p := range []string{"/var/lib/course-worker", "/var/log/course-worker"} {
		if !slices.Contains(rw, p) {
			t.Errorf("ReadWritePaths %v lacks %s (staging and logs)", rw, p)
		}
	}
	// The stop timeout covers the shutdown grace, the kill grace of the
	// subprocesses and the settling of jobs.
	stop, err := time.ParseDuration(strings.Join(u["TimeoutStopSec"], ""))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	cfg, err := config.Load("", []string{
		"WORKER_MYSQL_DSN=u:p@tcp(db:3306)/app", `WORKER_DOWNLOAD_COMMAND=["yt-dlp"]`, "WORKER_UPLOAD_DEST=gdrive:x",
		"WORKER_WEBHOOK_URL=http://app/hook", "WORKER_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	})
	if err != nil {
		t.Fatal(err)
	}
	if need := cfg.Worker.ShutdownGrace + process.DefaultKillGrace + 10*time.Second; stop < need+15*time.Second {
		t.Errorf("TimeoutStopSec=%s: want at least %s (grace %s + kill %s + settle 10s + 15s margin)",
			stop, need+15*time.Second, cfg.Worker.ShutdownGrace, process.DefaultKillGrace)
	}
	if wd, err := time.ParseDuration(strings.Join(u["WatchdogSec"], "")); err != nil || wd < 30*time.Second {
		t.Errorf("WatchdogSec=%v (%v): set, and long enough for a busy host", u["WatchdogSec"], err)
	}
}

// The unit's IP filter walls off the metadata services and link-local and
// multicast ranges, but not loopback or the LAN, where the operator's Redis,
// MySQL, webhook receiver and DNS resolver may be.
func TestSystemdUnitIPAddressDeny(t *testing.T) {
	u := unit(t)
	if allow := u["IPAddressAllow"]; len(allow) > 0 {
		t.Errorf("IPAddressAllow=%v: the unit allows nothing more by default (a drop-in may)", allow)
	}
	var deny []netip.Prefix
	for _, field := range strings.Fields(strings.Join(u["IPAddressDeny"], " ")) {
		p, err := netip.ParsePrefix(field)
		if err != nil {
			t.Fatalf("IPAddressDeny: %q is not a prefix: %v", field, err)
		}
		deny = append(deny, p)
	}
	denied := func(a string) bool {
		return slices.ContainsFunc(deny, func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr(a)) })
	}
	for _, a := range []string{"169.254.169.254", "169.254.1.1", "100.100.100.200", "fd00:ec2::254", "fe80::1", "224.0.0.251", "ff02::1"} {
		if !denied(a) {
			t.Errorf("IPAddressDeny lets %s through", a)
		}
	}
	for _, a := range []string{"127.0.0.1", "127.0.0.53", "::1", "10.1.2.3", "172.16.0.5", "192.168.1.10", "fd12::5", "8.8.8.8", "2606:4700::1111"} {
		if denied(a) {
			t.Errorf("IPAddressDeny blocks %s (Redis, MySQL, DNS or the course site may be there)", a)
		}
	}
}

// compose runs docker-compose on the compose file with the variables it needs.
func compose(t *testing.T, env map[string]string, args ...string) ([]string, error) {
	t.Helper()
	bin := tool(t, "docker-compose", "docker-compose")
	return run(t, env, bin, append([]string{"--project-directory", ".", "-f", "docker-compose.yml"}, args...)...)
}

var composeEnv = map[string]string{
	"MYSQL_PASSWORD":      "pw1",
	"MYSQL_ROOT_PASSWORD": "pw2",
	"WEBHOOK_URL":         "http://app:3000/api/webhooks/download",
	"WEBHOOK_SECRET":      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}

func TestComposeFileValidates(t *testing.T) {
	out, err := compose(t, composeEnv, "config", "-q")
	if err != nil || len(out) > 0 {
		t.Fatalf("docker-compose config -q: %v\n%s", err, strings.Join(out, "\n"))
	}
	// Without a secret it refuses, naming it.
	env := map[string]string{}
	for k, v := range composeEnv {
		if k != "WEBHOOK_SECRET" {
			env[k] = v
		}
	}
	out, err = compose(t, env, "config", "-q")
	if err == nil || !strings.Contains(strings.Join(out, "\n"), "set WEBHOOK_SECRET") {
		t.Fatalf("config without WEBHOOK_SECRET: %v\n%s", err, strings.Join(out, "\n"))
	}
	// The file as docker-compose resolves it.
	out, err = compose(t, composeEnv, "config")
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, strings.Join(out, "\n"))
	}
	var c struct {
		Services map[string]struct {
			Image       string         `yaml:"image"`
			Command     []string       `yaml:"command"`
			Volumes     []string       `yaml:"volumes"`
			Environment map[string]any `yaml:"environment"`
			Healthcheck map[string]any `yaml:"healthcheck"`
			DependsOn   map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
			StopGracePeriod string `yaml:"stop_grace_period"`
			Build           struct {
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(strings.Join(out, "\n")), &c); err != nil {
		t.Fatal(err)
	}
	redis, mysql, worker := c.Services["redis"], c.Services["mysql"], c.Services["worker"]
	if !strings.Contains(strings.Join(redis.Command, " "), "--appendonly yes") {
		t.Errorf("redis without AOF: %v", redis.Command)
	}
	if !strings.HasPrefix(mysql.Image, "mysql:8") {
		t.Errorf("mysql image %q, want MySQL 8", mysql.Image)
	}
	if !slices.ContainsFunc(mysql.Volumes, func(v string) bool {
		return strings.HasSuffix(v, "/deploy/schema.sql:/docker-entrypoint-initdb.d/01-schema.sql:ro")
	}) {
		t.Errorf("mysql does not load deploy/schema.sql: %v", mysql.Volumes)
	}
	for name, s := range c.Services {
		if len(s.Healthcheck) == 0 {
			t.Errorf("service %s has no health check", name)
		}
	}
	for _, dep := range []string{"redis", "mysql"} {
		if worker.DependsOn[dep].Condition != "service_healthy" {
			t.Errorf("worker does not wait for %s to be healthy: %+v", dep, worker.DependsOn)
		}
	}
	if worker.Build.Dockerfile != "deploy/Dockerfile" {
		t.Errorf("worker build: %+v", worker.Build)
	}
	for _, mount := range []string{"worker-logs:/var/log/course-worker", "worker-staging:/var/lib/course-worker/staging"} {
		if !slices.ContainsFunc(worker.Volumes, func(v string) bool { return strings.HasPrefix(v, mount) }) {
			t.Errorf("worker volumes %v lack %s", worker.Volumes, mount)
		}
	}
	if worker.Environment["WORKER_MYSQL_DSN"] != "worker:pw1@tcp(mysql:3306)/coursedl" {
		t.Errorf("WORKER_MYSQL_DSN = %v", worker.Environment["WORKER_MYSQL_DSN"])
	}
	grace, err := time.ParseDuration(worker.StopGracePeriod)
	if err != nil || grace < 45*time.Second {
		t.Errorf("stop_grace_period %q: must exceed worker.shutdown_grace (30s) + 15s", worker.StopGracePeriod)
	}

	// The image's configuration, with the compose file's environment, is one the
	// worker accepts, and it writes where the volumes are.
	cfg, err := config.Load(filepath.Join("..", "configs", "worker.docker.yaml"), []string{
		"WORKER_MYSQL_DSN=" + worker.Environment["WORKER_MYSQL_DSN"].(string),
		"WORKER_WEBHOOK_URL=" + composeEnv["WEBHOOK_URL"],
		"WORKER_WEBHOOK_SECRET=" + composeEnv["WEBHOOK_SECRET"],
	})
	if err != nil {
		t.Fatalf("configs/worker.docker.yaml: %v", err)
	}
	if cfg.Logs.Dir != "/var/log/course-worker" || cfg.Download.StagingDir != "/var/lib/course-worker/staging" ||
		cfg.Redis.Addr != "redis:6379" || cfg.Metrics.Listen != "0.0.0.0:9108" || cfg.Worker.ID == "" {
		t.Errorf("worker.docker.yaml: logs %q staging %q redis %q metrics %q", cfg.Logs.Dir, cfg.Download.StagingDir, cfg.Redis.Addr, cfg.Metrics.Listen)
	}
	if stop := cfg.Worker.ShutdownGrace + 15*time.Second; grace < stop {
		t.Errorf("stop_grace_period %s < worker.shutdown_grace %s + 15s", grace, cfg.Worker.ShutdownGrace)
	}
}

// No Docker engine runs where the tests run, so the image is not built here;
// these are the properties a build would show, read from the Dockerfile.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continued lines.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(raw), " ")
	var stages [][]string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], line)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	final := strings.Join(stages[len(stages)-1], "\n")
	if !strings.HasPrefix(final, "FROM debian:bookworm-slim") {
		t.Errorf("runtime stage: %q", stages[len(stages)-1][0])
	}
	for _, pkg := range []string{"ca-certificates", "rclone", "yt-dlp", "tini"} {
		if !regexp.MustCompile(`apt-get install[^\n]*\b` + regexp.QuoteMeta(pkg) + `\b`).MatchString(final) {
			t.Errorf("runtime stage does not install %s", pkg)
		}
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(final, -1)
	if len(user) == 0 || strings.HasPrefix(user[len(user)-1][1], "root") || strings.HasPrefix(user[len(user)-1][1], "0") {
		t.Errorf("the runtime stage must end as a non-root user: %v", user)
	}
	// Every file copied from the build context exists.
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--chown=\S+ )?([^-\n][^\n]*)$`).FindAllStringSubmatch(text, -1) {
		parts := strings.Fields(m[1])
		for _, src := range parts[:len(parts)-1] {
			if _, err := os.Stat(filepath.Join("..", src)); err != nil {
				t.Errorf("COPY %s: %v", src, err)
			}
		}
	}
	// The builder's Go is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goLine == nil || !strings.Contains(text, "ARG GO_VERSION="+string(goLine[1])) {
		t.Errorf("the builder's GO_VERSION does not match go.mod's go %s", goLine[1])
	}
}
