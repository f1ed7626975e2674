package testsvc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
//
// The port was free a moment before the server binds it: another test's server
// may take it first. Then ours exits and the one answering is not ours (its
// process_id says so), and StartRedis tries again on another port.
func StartRedis(ctx context.Context, dir string, extra ...string) (*RedisServer, error) {
	var err error
	for range 5 {
		var s *RedisServer
		if s, err = startRedis(ctx, dir, extra); err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}
	return nil, err
}

var errPortTaken = errors.New("the port was taken by another server")

func startRedis(ctx context.Context, dir string, extra []string) (*RedisServer, error) {
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
		info, err := c.Info(ctx, "server").Result()
		if err == nil {
			if strings.Contains(info, "process_id:"+strconv.Itoa(p.Pid())+"\r\n") {
				return s, nil
			}
			_ = s.Stop()
			return nil, fmt.Errorf("redis-server on %s: %w", addr, errPortTaken)
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
