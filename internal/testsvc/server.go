package testsvc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/process"
)

// RedisServer is a redis-server of a test's or the bench's own, on a free
// loopback port, for what the shared test Redis cannot be: a master with a
// replica, a server to stop.
type RedisServer struct {
	Addr string
	proc *process.Proc
}

// StartRedis starts redis-server without persistence, its files in dir, with
// the extra arguments (such as "--replicaof", host, port), and returns once it
// answers PING. Stop it with Stop.
func StartRedis(ctx context.Context, dir string, extra ...string) (*RedisServer, error) {
	port, err := freePort(ctx)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
	}, extra...)
	p, err := process.Start(context.WithoutCancel(ctx), process.Spec{
		Path: "redis-server", Args: args, Env: process.MinimalEnv(nil), KillGrace: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	s := &RedisServer{Addr: addr, proc: p}
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer func() { _ = c.Close() }()
	for {
		if err = c.Ping(ctx).Err(); err == nil {
			return s, nil
		}
		select {
		case <-ctx.Done():
			_ = s.Stop()
			return nil, fmt.Errorf("redis-server on %s did not answer: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop ends the server with SIGKILL (it keeps nothing) and waits for it.
func (s *RedisServer) Stop() error {
	if err := s.proc.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	_, _ = s.proc.Wait() // killed: the error says so
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
