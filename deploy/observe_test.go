package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var (
	alertsFile     = filepath.Join("prometheus", "alerts.yml")
	alertTestsFile = filepath.Join("prometheus", "alerts_test.yml")
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
