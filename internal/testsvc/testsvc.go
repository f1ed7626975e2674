// Package testsvc hands out the project's private test services, the Redis and
// MariaDB that scripts/services.sh starts: their addresses, a Redis database that
// no other user holds, and a MariaDB database of its own holding the contract
// schema. Programs that are not tests use it directly (cmd/bench, through
// internal/bench); tests use the testing.TB wrappers of internal/testutil.
//
// It does not start the shared services, and it does not import testing: a
// failure is an error naming the command that starts them. StartRedis starts a
// redis-server of the caller's own (a master and its replica).
package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// OpenRedis returns a client on a Redis database (1-15) that no other user of this
// package holds, emptied first; it waits until a database is free or ctx ends.
// release closes the client and frees the database.
func OpenRedis(ctx context.Context) (c *redis.Client, release func(), err error) {
	admin := redis.NewClient(&redis.Options{Addr: RedisAddr()})
	if err := admin.Ping(ctx).Err(); err != nil {
		_ = admin.Close()
		return nil, nil, fmt.Errorf("redis at %s: %w; %s", RedisAddr(), err, hint)
	}
	token := randomHex()
	for {
		for db := 1; db <= 15; db++ {
			// The key name predates this package; it is kept so that users of
			// an older copy of the code on the same Redis see the same locks.
			key := fmt.Sprintf("testutil:lock:%d", db)
			ok, err := admin.SetNX(ctx, key, token, 10*time.Minute).Result()
			if err != nil {
				_ = admin.Close()
				return nil, nil, fmt.Errorf("redis lock: %w", err)
			}
			if !ok {
				continue
			}
			// The lock is given back even once ctx has ended.
			unlockCtx := context.WithoutCancel(ctx)
			c := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: db})
			if err := c.FlushDB(ctx).Err(); err != nil {
				_ = c.Close()
				admin.Del(unlockCtx, key)
				_ = admin.Close()
				return nil, nil, fmt.Errorf("redis flushdb: %w", err)
			}
			release := func() {
				_ = c.Close()
				if v, _ := admin.Get(unlockCtx, key).Result(); v == token {
					admin.Del(unlockCtx, key)
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

// OpenMySQL creates a database of its own holding the schema file at schemaPath
// and returns a handle on it with its DSN. Task ids start at a random offset so
// that users running at once in several processes never share one (progress
// events on Redis are global). drop closes the handle and drops the database.
func OpenMySQL(ctx context.Context, schemaPath string) (db *sqlx.DB, dsn string, drop func(), err error) {
	cfg, err := mysql.ParseDSN(MySQLDSN())
	if err != nil {
		return nil, "", nil, fmt.Errorf("TEST_MYSQL_DSN: %w", err)
	}
	admin, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, "", nil, fmt.Errorf("mysql: %w", err)
	}
	defer func() { _ = admin.Close() }()
	if err := admin.PingContext(ctx); err != nil {
		return nil, "", nil, fmt.Errorf("mysql at %s: %w; %s", cfg.Addr, err, hint)
	}
	schema, err := os.ReadFile(schemaPath) //nolint:gosec // G304: the caller's own schema file, not outside input
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
	cfg.DBName = name
	cfg.MultiStatements = true
	if err := loadSchema(ctx, cfg.FormatDSN(), string(schema)); err != nil {
		dropDB()
		return nil, "", nil, err
	}
	cfg.MultiStatements = false
	cfg.ParseTime = true
	dsn = cfg.FormatDSN()
	db, err = sqlx.Open("mysql", dsn)
	if err != nil {
		dropDB()
		return nil, "", nil, fmt.Errorf("mysql: %w", err)
	}
	drop = func() {
		_ = db.Close()
		dropDB()
	}
	return db, dsn, drop, nil
}

// loadSchema runs schema in the database of dsn (which allows several statements
// at once), then moves the task ids to a random offset.
func loadSchema(ctx context.Context, dsn, schema string) error {
	withSchema, err := sqlx.Open("mysql", dsn)
	if err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	defer func() { _ = withSchema.Close() }()
	if _, err := withSchema.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("load schema: %w", err)
	}
	offset := 1_000_000 + binary.BigEndian.Uint32(randomBytes(4))%1_000_000_000
	if _, err := withSchema.ExecContext(ctx, fmt.Sprintf("ALTER TABLE download_tasks AUTO_INCREMENT = %d", offset)); err != nil {
		return fmt.Errorf("auto increment: %w", err)
	}
	return nil
}

// Root is the repository's top folder (the one holding go.mod), found upwards
// from the working directory.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
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
