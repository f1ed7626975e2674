package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/testutil"
)

func logsConfig(t *testing.T) config.Logs {
	t.Helper()
	return config.Logs{Dir: t.TempDir(), Level: "info", Format: "console", MaxSizeMB: 100, MaxBackups: 10, MaxAgeDays: 30}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoggerLevelAndFormat(t *testing.T) {
	cases := []struct {
		level, format string
		out           []string // messages in worker-out.log and on stderr
	}{
		{"debug", "console", []string{"d-msg", "i-msg", "w-msg", "e-msg"}},
		{"info", "json", []string{"i-msg", "w-msg", "e-msg"}},
		{"warn", "console", []string{"w-msg", "e-msg"}},
		{"error", "json", []string{"e-msg"}},
	}
	for _, c := range cases {
		t.Run(c.level+"/"+c.format, func(t *testing.T) {
			cfg := logsConfig(t)
			cfg.Level, cfg.Format = c.level, c.format
			stderr := &testutil.SyncBuffer{}
			log, closeLog, err := newLogger(cfg, stderr)
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("d-msg")
			log.Info("i-msg", zap.Int64("task_id", 17))
			log.Warn("w-msg")
			log.Error("e-msg")
			closeLog()

			out := readFile(t, filepath.Join(cfg.Dir, "worker-out.log"))
			errs := readFile(t, filepath.Join(cfg.Dir, "worker-error.log"))
			for _, msg := range []string{"d-msg", "i-msg", "w-msg", "e-msg"} {
				want := contains(c.out, msg)
				if strings.Contains(out, msg) != want {
					t.Errorf("worker-out.log at %s: %s present=%v", c.level, msg, !want)
				}
				if strings.Contains(stderr.String(), msg) != want {
					t.Errorf("stderr at %s: %s present=%v", c.level, msg, !want)
				}
				// The error file holds warnings and errors only, whatever the level.
				wantErr := msg == "w-msg" || msg == "e-msg"
				if strings.Contains(errs, msg) != wantErr {
					t.Errorf("worker-error.log: %s present=%v", msg, !wantErr)
				}
			}
			// The files are JSON whatever logs.format says; stderr follows it.
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !json.Valid([]byte(line)) {
					t.Errorf("worker-out.log line is not JSON: %q", line)
				}
			}
			first := strings.SplitN(stderr.String(), "\n", 2)[0]
			if json.Valid([]byte(first)) != (c.format == "json") {
				t.Errorf("stderr in format %s: %q", c.format, first)
			}
			// A console line reads "<time>\tLEVEL\t<caller>\t<msg>".
			wantLevel := map[string]string{"d": "DEBUG", "i": "INFO", "w": "WARN", "e": "ERROR"}[c.out[0][:1]]
			if c.format == "console" && !strings.Contains(first, "\t"+wantLevel+"\t") {
				t.Errorf("console stderr line lacks %s: %q", wantLevel, first)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// backups lists the rotated files of worker-out.log.
func backups(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "worker-out-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fill writes about mb megabytes of info lines.
func fill(log *zap.Logger, mb int) {
	line := strings.Repeat("x", 1000)
	for i := 0; i < mb*1100; i++ {
		log.Info(line)
	}
}

func TestLoggerRotation(t *testing.T) {
	t.Run("max_size_mb and max_backups", func(t *testing.T) {
		cfg := logsConfig(t)
		cfg.MaxSizeMB, cfg.MaxBackups = 1, 2
		log, closeLog, err := newLogger(cfg, zapcore.AddSync(&bytes.Buffer{}))
		if err != nil {
			t.Fatal(err)
		}
		defer closeLog()
		fill(log, 1)
		testutil.Eventually(t, 5*time.Second, func() bool { return len(backups(t, cfg.Dir)) == 1 },
			"no rotation past logs.max_size_mb=1: %v", backups(t, cfg.Dir))
		fill(log, 3)
		// lumberjack removes the old backups in the background.
		testutil.Eventually(t, 5*time.Second, func() bool { return len(backups(t, cfg.Dir)) == 2 },
			"logs.max_backups=2 not honoured: %v", backups(t, cfg.Dir))
		st, err := os.Stat(filepath.Join(cfg.Dir, "worker-out.log"))
		if err != nil || st.Size() > 1<<20 {
			t.Fatalf("current file past max_size_mb: %v %v", st.Size(), err)
		}
	})
	t.Run("compress", func(t *testing.T) {
		cfg := logsConfig(t)
		cfg.MaxSizeMB, cfg.Compress = 1, true
		log, closeLog, err := newLogger(cfg, zapcore.AddSync(&bytes.Buffer{}))
		if err != nil {
			t.Fatal(err)
		}
		defer closeLog()
		fill(log, 1)
		testutil.Eventually(t, 5*time.Second, func() bool {
			b := backups(t, cfg.Dir)
			return len(b) == 1 && strings.HasSuffix(b[0], ".log.gz")
		}, "logs.compress: rotated file not gzipped: %v", backups(t, cfg.Dir))
	})
	t.Run("max_age_days", func(t *testing.T) {
		cfg := logsConfig(t)
		cfg.MaxSizeMB, cfg.MaxAgeDays = 1, 7
		// lumberjack reads a backup's age from the time in its name.
		stamp := func(d time.Duration) string {
			return filepath.Join(cfg.Dir, "worker-out-"+time.Now().UTC().Add(-d).Format("2006-01-02T15-04-05.000")+".log")
		}
		old, recent := stamp(10*24*time.Hour), stamp(3*24*time.Hour)
		for _, p := range []string{old, recent} {
			if err := os.WriteFile(p, []byte("{}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		log, closeLog, err := newLogger(cfg, zapcore.AddSync(&bytes.Buffer{}))
		if err != nil {
			t.Fatal(err)
		}
		defer closeLog()
		fill(log, 1) // a rotation makes lumberjack look at the backups
		testutil.Eventually(t, 5*time.Second, func() bool {
			_, err := os.Stat(old)
			return os.IsNotExist(err)
		}, "a 10-day-old backup survived logs.max_age_days=7")
		if _, err := os.Stat(recent); err != nil {
			t.Fatalf("a 3-day-old backup was removed: %v", err)
		}
	})
}
