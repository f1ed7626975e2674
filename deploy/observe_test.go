package deploy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/coursedl/worker/internal/app"
	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/testutil"
)

var (
	alertsFile     = filepath.Join("prometheus", "alerts.yml")
	alertTestsFile = filepath.Join("prometheus", "alerts_test.yml")
	dashboardFile  = filepath.Join("grafana", "dashboard.json")
)

// alertRule is one rule of alerts.yml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// alertRules reads the rules of alerts.yml.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, alertsFile, &f)
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The rules load, and fire (and stay quiet) as alerts_test.yml says.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	if out, err := run(t, nil, promtool, "check", "rules", alertsFile); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, strings.Join(out, "\n"))
	}
	if out, err := run(t, nil, promtool, "test", "rules", alertTestsFile); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, strings.Join(out, "\n"))
	}
}

// Every alert the operator needs is there, says how bad it is and what to do,
// and alerts_test.yml sees it both fire and stay quiet.
func TestAlertRulesCoverage(t *testing.T) {
	rules := alertRules(t)
	var names []string
	for _, r := range rules {
		names = append(names, r.Alert)
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || len(r.Annotations["description"]) < 80 {
			t.Errorf("%s: a summary and a description that says what to look at, please", r.Alert)
		}
	}
	for _, want := range []string{"CourseNoWorkerAlive", "CourseQueueOldestJobWaiting", "CourseTasksFailing",
		"CourseDeadLettersGrowing", "CourseWebhookGivenUp", "CourseStagingDiskLow", "CourseIntakePaused"} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s in %s", want, alertsFile)
		}
	}

	var tests struct {
		Tests []struct {
			Cases []struct {
				Alert  string `yaml:"alertname"`
				Alerts []struct {
					Labels map[string]string `yaml:"exp_labels"`
				} `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, alertTestsFile, &tests)
	fired, quiet := map[string]bool{}, map[string]bool{}
	for _, g := range tests.Tests {
		for _, c := range g.Cases {
			if len(c.Alerts) == 0 {
				quiet[c.Alert] = true
			}
			for _, a := range c.Alerts {
				fired[c.Alert+"/"+a.Labels["severity"]] = true
			}
		}
	}
	for _, r := range rules {
		if !fired[r.Alert+"/"+r.Labels["severity"]] {
			t.Errorf("%s (%s) never fires in %s", r.Alert, r.Labels["severity"], alertTestsFile)
		}
		if !quiet[r.Alert] {
			t.Errorf("%s is never checked quiet in %s", r.Alert, alertTestsFile)
		}
	}
}

// dashboard is what the tests read of dashboard.json.
type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []panelQuery `json:"targets"`
	} `json:"panels"`
}

type panelQuery struct {
	Expr string `json:"expr"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	return d
}

// dashboardExprs is every query of the dashboard, by panel title.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	exprs := map[string][]string{}
	for _, p := range readDashboard(t).Panels {
		for _, q := range p.Targets {
			exprs[p.Title] = append(exprs[p.Title], q.Expr)
		}
	}
	return exprs
}

// The dashboard shows the console overview's figures from a Prometheus chosen
// by a variable, and its queries parse.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if len(d.Templating.List) == 0 || d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "prometheus" {
		t.Fatalf("the first variable must choose a Prometheus data source: %+v", d.Templating.List)
	}
	variable := "${" + d.Templating.List[0].Name + "}"
	titles := map[string]bool{}
	for _, p := range d.Panels {
		titles[p.Title] = true
		if p.Datasource.Type != "prometheus" || p.Datasource.UID != variable {
			t.Errorf("panel %q: data source %+v, want the variable %s", p.Title, p.Datasource, variable)
		}
		if len(p.Targets) == 0 || slices.ContainsFunc(p.Targets, func(q panelQuery) bool { return strings.TrimSpace(q.Expr) == "" }) {
			t.Errorf("panel %q has a missing or empty query", p.Title)
		}
	}
	for _, want := range []string{"Queue depth", "Running", "Delayed", "Dead letters", "Webhook pending",
		"Webhook given up", "Workers alive", "Intake paused", "Oldest queued job", "Tasks finished and failed",
		"Staging disk free"} {
		if !titles[want] {
			t.Errorf("no panel %q in %s", want, dashboardFile)
		}
	}

	// promtool parses each query as a recording rule; Grafana's interval
	// variable stands for a range it would choose.
	var rules, index strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	i := 0
	for title, exprs := range dashboardExprs(t) {
		for _, e := range exprs {
			i++
			fmt.Fprintf(&rules, "      - record: dashboard_query_%d\n        expr: %q\n", i, strings.ReplaceAll(e, "$__rate_interval", "5m"))
			fmt.Fprintf(&index, "dashboard_query_%d: panel %q: %s\n", i, title, e)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, nil, tool(t, "promtool", "prometheus"), "check", "rules", path); err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s\nthe queries:\n%s", err, strings.Join(out, "\n"), index.String())
	}
}

var metricName = regexp.MustCompile(`\bcoursedl_[a-z0-9_]+\b`)

// missingMetrics returns the coursedl_ metrics that the queries name and the
// worker does not export.
func missingMetrics(exported map[string]bool, queries []string) []string {
	var missing []string
	for _, q := range queries {
		for _, name := range metricName.FindAllString(q, -1) {
			if !exported[name] && !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
		}
	}
	return missing
}

// Every metric the alerts and the dashboard query is one a real worker
// exports: a renamed metric fails here, not silently in Prometheus.
func TestAlertsAndDashboardQueryExportedMetrics(t *testing.T) {
	exported := workerMetrics(t)
	var alertExprs []string
	for _, r := range alertRules(t) {
		alertExprs = append(alertExprs, r.Expr)
	}
	var panelExprs []string
	for _, exprs := range dashboardExprs(t) {
		panelExprs = append(panelExprs, exprs...)
	}
	for file, queries := range map[string][]string{alertsFile: alertExprs, dashboardFile: panelExprs} {
		if !metricName.MatchString(strings.Join(queries, "\n")) {
			t.Errorf("%s queries no coursedl_ metric", file)
		}
		if m := missingMetrics(exported, queries); len(m) > 0 {
			t.Errorf("%s queries metrics the worker does not export: %v", file, m)
		}
	}
}

// workerMetrics starts a worker on the test Redis and MariaDB with its
// metrics on a free port, and returns the names of the samples its /metrics
// serves.
func workerMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rc := testutil.Redis(t)
	_, dsn := testutil.MySQL(t)
	dir := t.TempDir()
	cfg, err := config.Load("", []string{
		"WORKER_WORKER_ID=deploy-" + rand.Text()[:8],
		"WORKER_REDIS_ADDR=" + testutil.RedisAddr(),
		fmt.Sprintf("WORKER_REDIS_DB=%d", testutil.RedisDB(rc)),
		"WORKER_MYSQL_DSN=" + dsn,
		`WORKER_DOWNLOAD_COMMAND=["yt-dlp", "{url}"]`,
		"WORKER_DOWNLOAD_STAGING_DIR=" + filepath.Join(dir, "staging"),
		"WORKER_DOWNLOAD_MIN_FREE_MB=1",
		"WORKER_UPLOAD_DEST=local:" + filepath.Join(dir, "drive"),
		"WORKER_WEBHOOK_URL=http://127.0.0.1:9/hook",
		"WORKER_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"WORKER_LOGS_DIR=" + filepath.Join(dir, "logs"),
		"WORKER_METRICS_LISTEN=127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Close() }() // after Run has returned
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}()

	code, body := testutil.Get(t, "http://"+a.MetricsAddr()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		names[line[:strings.IndexAny(line, "{ ")]] = true
	}
	if !names["coursedl_redis_up"] || !names["coursedl_queue_depth"] {
		t.Fatalf("the worker's /metrics lacks the gauges read from Redis:\n%s", body)
	}
	return names
}
