// Package testutil gives integration tests the project's real services: a Redis
// database and a MariaDB schema of their own, started by scripts/services.sh.
//
// Nothing here skips: a test that needs Redis or MariaDB fails with the command that
// starts them when they cannot be reached.
package testutil

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
)

const hint = "start the test services with `scripts/services.sh start` (or run `make test`)"

// RedisAddr is the address of the test Redis: TEST_REDIS_ADDR or the private default.
func RedisAddr() string {
	if a := os.Getenv("TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:16379"
}

// MySQLDSN is the server DSN (no database) of the test MariaDB: TEST_MYSQL_DSN or the
// private default.
func MySQLDSN() string {
	if d := os.Getenv("TEST_MYSQL_DSN"); d != "" {
		return d
	}
	return "root@tcp(127.0.0.1:13306)/"
}

// Redis returns a client on a Redis database (1-15) that no other running test holds,
// emptied first. The database is released when the test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, release, err := OpenRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return c
}

// OpenRedis is Redis for a program that is not a test (cmd/bench): it waits
// until a database is free or ctx ends. release closes the client and frees the
// database.
func OpenRedis(ctx context.Context) (c *redis.Client, release func(), err error) {
	admin := redis.NewClient(&redis.Options{Addr: RedisAddr()})
	if err := admin.Ping(ctx).Err(); err != nil {
		_ = admin.Close()
		return nil, nil, fmt.Errorf("redis at %s: %w; %s", RedisAddr(), err, hint)
	}
	token := randomHex()
	for {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("testutil:lock:%d", db)
			ok, err := admin.SetNX(ctx, key, token, 10*time.Minute).Result()
			if err != nil {
				_ = admin.Close()
				return nil, nil, fmt.Errorf("redis lock: %w", err)
			}
			if !ok {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: db})
			if err := c.FlushDB(ctx).Err(); err != nil {
				_ = c.Close()
				admin.Del(context.Background(), key)
				_ = admin.Close()
				return nil, nil, fmt.Errorf("redis flushdb: %w", err)
			}
			release := func() {
				_ = c.Close()
				if v, _ := admin.Get(context.Background(), key).Result(); v == token {
					admin.Del(context.Background(), key)
				}
				_ = admin.Close()
			}
			return c, release, nil
		}
		select {
		case <-ctx.Done():
			_ = admin.Close()
			return nil, nil, fmt.Errorf("no free test redis database: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RedisDB is the database number a client from Redis uses.
func RedisDB(c *redis.Client) int { return c.Options().DB }

// MySQL creates a database of its own holding the contract schema and returns a
// handle on it with its DSN. Task ids start at a random offset so that tests running
// at once in several packages never share one (progress events on Redis are global).
// The database is dropped when the test ends.
func MySQL(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, dsn, drop, err := OpenMySQL(ctx, filepath.Join(Root(t), "deploy", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return db, dsn
}

// OpenMySQL is MySQL for a program that is not a test (cmd/bench), with the
// schema file at schemaPath. drop closes the handle and drops the database.
func OpenMySQL(ctx context.Context, schemaPath string) (db *sqlx.DB, dsn string, drop func(), err error) {
	cfg, err := mysql.ParseDSN(MySQLDSN())
	if err != nil {
		return nil, "", nil, fmt.Errorf("TEST_MYSQL_DSN: %w", err)
	}
	admin, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, "", nil, fmt.Errorf("mysql: %w", err)
	}
	defer admin.Close()
	if err := admin.PingContext(ctx); err != nil {
		return nil, "", nil, fmt.Errorf("mysql at %s: %w; %s", cfg.Addr, err, hint)
	}
	schema, err := os.ReadFile(schemaPath)
	if err != nil {
		return nil, "", nil, fmt.Errorf("schema: %w", err)
	}
	name := "t_" + randomHex()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, "", nil, fmt.Errorf("create database: %w", err)
	}
	dropDB := func() {
		if a, err := sqlx.Open("mysql", MySQLDSN()); err == nil {
			_, _ = a.Exec("DROP DATABASE IF EXISTS " + name)
			_ = a.Close()
		}
	}
	fail := func(format string, err error) (*sqlx.DB, string, func(), error) {
		dropDB()
		return nil, "", nil, fmt.Errorf(format, err)
	}
	cfg.DBName = name
	cfg.MultiStatements = true
	withSchema, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return fail("mysql: %w", err)
	}
	defer withSchema.Close()
	if _, err := withSchema.ExecContext(ctx, string(schema)); err != nil {
		return fail("load schema: %w", err)
	}
	offset := 1_000_000 + binary.BigEndian.Uint32(randomBytes(4))%1_000_000_000
	if _, err := withSchema.ExecContext(ctx, fmt.Sprintf("ALTER TABLE download_tasks AUTO_INCREMENT = %d", offset)); err != nil {
		return fail("auto increment: %w", err)
	}
	cfg.MultiStatements = false
	cfg.ParseTime = true
	dsn = cfg.FormatDSN()
	db, err = sqlx.Open("mysql", dsn)
	if err != nil {
		return fail("mysql: %w", err)
	}
	drop = func() {
		_ = db.Close()
		dropDB()
	}
	return db, dsn, drop, nil
}

// Root is the repository's top folder (the one holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's folder")
		}
		dir = parent
	}
}

// Eventually polls cond every 20 ms until it holds or timeout passes, then fails the
// test with msg.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomHex() string { return strings.ToLower(fmt.Sprintf("%x", randomBytes(6))) }
