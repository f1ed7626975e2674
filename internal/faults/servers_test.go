package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/process"
)

// ports are those freePort handed out.
var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// freePort returns a loopback port that is free, below the kernel's range of
// ephemeral ports: a server the tests stop and start again on it must find it
// free, and no outgoing connection takes a port from below that range.
func freePort(t *testing.T) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const floor = 10000
	if low <= floor+1000 {
		t.Fatalf("ephemeral ports start at %d: no room below them", low)
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	var lc net.ListenConfig
	for range 1000 {
		port := floor + mathrand.IntN(low-floor)
		if ports[port] {
			continue // handed to another test's server, which may be down now
		}
		l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		_ = l.Close()
		ports[port] = true
		return port
	}
	t.Fatal("no free port")
	return 0
}

// outputFile appends a child's output lines to a file, across restarts.
type outputFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func newOutputFile(t *testing.T, path string) *outputFile {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return &outputFile{path: path, f: f}
}

// line is a process.Spec.OnLine.
func (o *outputFile) line(_ process.Stream, b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.f.Write(append(b, '\n'))
}

func (o *outputFile) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.f, "=== faults: %s: "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05.000")}, args...)...)
}

// server is a daemon the tests start, stop and start again on the same port
// and data folder.
type server struct {
	t    *testing.T
	name string
	path string   // program
	args []string // its arguments
	out  *outputFile
	up   func(ctx context.Context) error // answers once the server serves

	mu   sync.Mutex
	proc *process.Proc
}

func newServer(t *testing.T, name, program string, args []string, dir string, up func(context.Context) error) *server {
	t.Helper()
	path, err := lookPath(program)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, name: name, path: path, args: args, out: newOutputFile(t, filepath.Join(dir, name+".log")), up: up}
	s.start()
	// Stopped at the end of the test, before its folder is removed.
	t.Cleanup(func() {
		if s.running() {
			s.stop()
		}
	})
	return s
}

// start starts the server and waits until it serves.
func (s *server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.printf("starting %s", s.name)
	p, err := process.Start(context.Background(), process.Spec{
		Path:      s.path,
		Args:      s.args,
		Env:       process.MinimalEnv(nil),
		OnLine:    s.out.line,
		KillGrace: 30 * time.Second,
	})
	if err != nil {
		s.t.Fatalf("%s: %v", s.name, err)
	}
	s.proc = p
	exited := make(chan struct{})
	go func() {
		_, _ = p.Wait()
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		err := s.up(ctx)
		if err == nil {
			return
		}
		select {
		case <-exited:
			_, werr := p.Wait()
			s.t.Fatalf("%s exited at start-up (%v); see %s", s.name, werr, s.out.path)
		case <-ctx.Done():
			s.t.Fatalf("%s did not come up within 60 s (%v); see %s", s.name, err, s.out.path)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM (both redis-server and mariadbd shut down cleanly on it:
// Redis fsyncs its AOF) and waits for the exit.
func (s *server) stop() {
	s.t.Helper()
	s.stopWith(func() error { return s.proc.Signal(syscall.SIGTERM) })
}

// stopWith asks the server to stop with ask and waits for it to exit.
func (s *server) stopWith(ask func() error) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.printf("stopping %s", s.name)
	if err := ask(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.out.printf("stop request: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.proc.Wait()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			s.t.Errorf("%s did not stop cleanly: %v; see %s", s.name, err, s.out.path)
		}
	case <-time.After(60 * time.Second):
		_ = s.proc.Signal(syscall.SIGKILL)
		err := <-done
		s.t.Errorf("%s did not stop within 60 s; killed (%v)", s.name, err)
	}
	s.proc = nil
}

func (s *server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// redisServer is a private redis-server on a free loopback port.
type redisServer struct {
	*server
	addr string
	dir  string
}

// startRedis starts redis-server with its data in a folder of the test's. With
// aof, every write is in the append-only file before Redis answers
// (appendfsync always), so a restart on the same folder brings everything back.
func startRedis(t *testing.T, aof bool) *redisServer {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--daemonize", "no", "--logfile", "",
	}
	if aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	ping := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = ping.Close() })
	r := &redisServer{addr: addr, dir: dir}
	r.server = newServer(t, "redis-"+strconv.Itoa(port), "redis-server", args, dir, func(ctx context.Context) error {
		// A Redis loading its AOF answers LOADING errors until it is done.
		return ping.Ping(ctx).Err()
	})
	return r
}

// client returns a client on database db, closed when the test ends.
func (r *redisServer) client(t *testing.T, db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr, DB: db})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// shutdown stops Redis with the SHUTDOWN command (the AOF is fsynced first)
// and waits for the process to exit.
func (r *redisServer) shutdown() {
	r.t.Helper()
	r.stopWith(func() error {
		c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
		defer func() { _ = c.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The server closes the connection instead of answering.
		if err := c.Shutdown(ctx).Err(); err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "connection reset") {
			return err
		}
		return nil
	})
}

// mariaDB is a private mariadbd on a free loopback port.
type mariaDB struct {
	*server
	port int
}

// startMariaDB initialises a data folder and starts mariadbd on it.
func startMariaDB(t *testing.T) *mariaDB {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	install, err := lookPath("mariadb-install-db")
	if err != nil {
		t.Fatal(err)
	}
	out := newOutputFile(t, filepath.Join(dir, "install.log"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db", "--datadir=" + data}, userArgs()...)
	if _, err := process.Run(ctx, process.Spec{Path: install, Args: args, Env: process.MinimalEnv(nil), OnLine: out.line}); err != nil {
		t.Fatalf("mariadb-install-db: %v; see %s", err, out.path)
	}
	port := freePort(t)
	args = append([]string{
		"--no-defaults", "--datadir=" + data, "--port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "sock"),
		"--pid-file=" + filepath.Join(dir, "mariadbd.pid"), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M", "--max-connections=300",
	}, userArgs()...)
	admin, err := sqlx.Open("mysql", rootDSN(port, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	m := &mariaDB{port: port}
	m.server = newServer(t, "mariadb-"+strconv.Itoa(port), "mariadbd", args, dir, admin.PingContext)
	return m
}

// rootDSN is root's DSN on the server at port, for database db.
func rootDSN(port int, db string) string {
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Net = "tcp"
	cfg.Addr = "127.0.0.1:" + strconv.Itoa(port)
	cfg.DBName = db
	cfg.Timeout = 2 * time.Second
	return cfg.FormatDSN()
}

// database creates database name with the contract schema and returns a handle
// on it and the worker's DSN for it.
func (m *mariaDB) database(t *testing.T, name string) (*sqlx.DB, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := sqlx.Open("mysql", rootDSN(m.port, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	schema, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := mysql.ParseDSN(rootDSN(m.port, name))
	cfg.MultiStatements = true
	load, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = load.Close() }()
	if _, err := load.ExecContext(ctx, string(schema)); err != nil {
		t.Fatalf("load schema: %v", err)
	}
	dsn := rootDSN(m.port, name)
	db, err := sqlx.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, dsn
}
