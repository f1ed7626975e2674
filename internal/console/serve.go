package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/coursedl/worker/internal/ctl"
)

// shutdownGrace is how long Serve waits for requests in flight once asked to
// stop; event streams end at once.
const shutdownGrace = 10 * time.Second

// Serve runs the console on console.listen until ctx ends (SIGINT or SIGTERM
// in workerctl), then stops it gracefully: event streams end, requests in
// flight get shutdownGrace. With no console.users it refuses any address but
// a loopback one. It logs to p.Stderr: start, logins, refusals and every
// action with its user.
func Serve(ctx context.Context, p ctl.WebParams) error {
	if p.Listen == "" {
		return errors.New("console.listen is empty: set it to the address to serve on, e.g. 127.0.0.1:9109 (WORKER_CONSOLE_LISTEN)")
	}
	if len(p.Users) == 0 && !loopback(p.Listen) {
		return fmt.Errorf("console.listen %q is not a loopback address, and console.users is empty: "+
			"without users the console is read-only and serves on loopback only (127.0.0.1, ::1 or localhost); "+
			"add users (workerctl web hash-password makes a hash) or listen on 127.0.0.1", p.Listen)
	}
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.AddSync(p.Stderr), zap.InfoLevel)).Named("console")
	params := Params{Tool: p.Tool, Users: p.Users, Log: log}
	if p.Store != nil {
		params.Rows = p.Store
	}
	c, err := New(params)
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", p.Listen)
	if err != nil {
		return fmt.Errorf("console.listen: %w", err)
	}
	mode := fmt.Sprintf("%d users", len(p.Users))
	if c.ReadOnly() {
		mode = "read-only: console.users is empty"
	}
	log.Info("console serving", zap.String("url", "http://"+ln.Addr().String()+"/"), zap.String("mode", mode))
	return c.serve(ctx, ln)
}

// serve serves on ln until ctx ends.
func (c *Console) serve(ctx context.Context, ln net.Listener) error {
	base, endStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer endStreams()
	srv := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          zap.NewStdLog(c.p.Log),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return c.Run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		endStreams() // event streams never go idle by themselves
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		return srv.Shutdown(stop) //nolint:contextcheck // the grace outlives ctx, which has ended
	})
	err := g.Wait()
	c.p.Log.Info("console stopped")
	return err
}

// loopback reports whether the host of a host:port address is a loopback
// one: 127.0.0.0/8, ::1, or the name localhost.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
