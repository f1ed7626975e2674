package console_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/coursedl/worker/internal/console"
	"github.com/coursedl/worker/internal/ctl"
	"github.com/coursedl/worker/internal/testutil"
)

// workerctlWeb runs `workerctl web` with the environment given until the test
// ends, and returns the console's address and its log.
func workerctlWeb(t *testing.T, environ []string) (string, *testutil.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- ctl.Main(ctx, ctl.Env{Args: []string{"web"}, Stdout: stderr, Stderr: stderr, Environ: environ, Web: console.Serve})
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != ctl.ExitOK && code != ctl.ExitInterrupted {
			t.Errorf("workerctl web exited %d:\n%s", code, stderr.String())
		}
	})
	serving := regexp.MustCompile(`"url": "(http://127\.0\.0\.1:\d+)/"`)
	var addr string
	testutil.Eventually(t, 20*time.Second, func() bool {
		if m := serving.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	}, "workerctl web did not start:\n%s", stderr)
	return addr, stderr
}

// No secret of the configuration reaches a page or the console's log: the
// MySQL password, the webhook secret, the Sentinels' password, the users'
// hashes, the cookies file's contents.
func TestNoSecretOnPages(t *testing.T) {
	b := newBench(t, nil) // the data; the console under test is workerctl web's
	ctx := context.Background()
	// A MySQL user with a password, for the DSN.
	dbName := b.db.QueryRowx("SELECT DATABASE()")
	var name string
	if err := dbName.Scan(&name); err != nil {
		t.Fatal(err)
	}
	user, password := "console_"+strings.ToLower(rand.Text()[:8]), "Dsn-Secret-"+rand.Text()[:12]
	b.db.MustExec(fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, password))
	t.Cleanup(func() { b.db.MustExec(fmt.Sprintf("DROP USER '%s'@'%%'", user)) })
	b.db.MustExec(fmt.Sprintf("GRANT SELECT ON %s.* TO '%s'@'%%'", name, user))
	cfg, err := mysql.ParseDSN(testutil.MySQLDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Passwd, cfg.DBName = user, password, name
	cookies := filepath.Join(t.TempDir(), "cookies.txt")
	cookieSecret := "cookie-value-" + rand.Text()
	if err := os.WriteFile(cookies, []byte("# Netscape HTTP Cookie File\n.udemy.com\tTRUE\t/\tTRUE\t0\taccess_token\t"+cookieSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	webhookSecret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sentinelSecret := "sentinel-" + rand.Text()
	users := userItems(t, "olga")
	hash := users[0][strings.LastIndex(users[0], ":")+1:]
	id, job := b.task(12, "buyer@example.com")
	if err := b.door.DeadLetter(ctx, job, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	addr, log := workerctlWeb(t, []string{
		"WORKER_REDIS_ADDR=" + testutil.RedisAddr(),
		fmt.Sprintf("WORKER_REDIS_DB=%d", testutil.RedisDB(b.rc)),
		"WORKER_REDIS_SENTINEL_PASSWORD=" + sentinelSecret,
		"WORKER_MYSQL_DSN=" + cfg.FormatDSN(),
		"WORKER_WEBHOOK_SECRET=" + webhookSecret,
		"WORKER_DOWNLOAD_COOKIES_FILE=" + cookies,
		"WORKER_LOGS_DIR=" + b.logs,
		"WORKER_CONSOLE_LISTEN=127.0.0.1:0",
		`WORKER_CONSOLE_USERS=["` + users[0] + `"]`,
	})
	srv := httptest.NewUnstartedServer(nil) // only its URL, for the browser helper
	srv.URL = addr
	b.srv = srv
	br := b.browser().login("olga")
	secrets := []string{password, webhookSecret, strings.TrimPrefix(webhookSecret, "whsec_"), sentinelSecret, cookieSecret, hash}
	for _, path := range []string{"/", "/running", "/search", fmt.Sprintf("/search?q=%d", id), "/search?q=order:12",
		"/dead", "/delayed", "/webhooks", "/workers", "/login", "/nowhere"} {
		br.get(path).lacks(t, secrets...)
	}
	br.get(fmt.Sprintf("/search?q=%d", id)).has(t, "buyer@example.com") // the search did read MySQL, with the password
	for _, s := range secrets {
		if strings.Contains(log.String(), s) {
			t.Errorf("the console's log holds a secret:\n%s", log)
		}
	}
}
