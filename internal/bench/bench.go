// Package bench measures what the worker adds around the network-bound download:
// the queue, a task's own overhead, pipeline throughput, output streaming, the
// process's memory and CPU, start-up, and workerctl; and the time from the job
// to the buyer's link of a course that real yt-dlp downloads and rclone
// uploads, each throttled, against those two alone (link.go). cmd/bench runs it
// (make bench) against the private Redis and MariaDB of scripts/services.sh.
//
// Every ratio is measured against its reference in the same run, the two
// interleaved round by round, so that a noisy, shared machine moves both alike.
// The process-level figures come from the real worker binary, started through
// package process and read from /proc.
//
// It prints a table for a person and then one line per figure,
//
//	BENCH <name> <value> <unit>
//
// so that runs can be compared across commits. The targets are reported, never
// asserted: a benchmark is not a test.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/testsvc"
)

// Options says what to run and where the programs are.
type Options struct {
	Root      string    // the repository (holds deploy/schema.sql)
	Worker    string    // the worker binary
	WorkerCtl string    // the workerctl binary; "" when there is none
	Self      string    // this program, run as a child (see Child)
	Only      []string  // groups to run (see Groups); all when empty
	Quick     bool      // fewer rounds and smaller sizes, for a smoke run
	Keep      bool      // keep the scratch folder (logs, task logs) for a look
	Out       io.Writer // the table and the BENCH lines
	Log       io.Writer // progress while running
}

// Bench holds the services of one run.
type Bench struct {
	opts    Options
	redisDB int
	rdb     *redis.Client
	db      *sqlx.DB
	dsn     string
	dir     string // scratch folder: logs, staging, drive
	figures []Figure
}

// Run measures every figure of the selected groups and prints them.
func Run(ctx context.Context, opts Options) error {
	b := &Bench{opts: opts}
	rdb, release, err := testsvc.OpenRedis(ctx)
	if err != nil {
		return err
	}
	defer release()
	b.rdb, b.redisDB = rdb, rdb.Options().DB
	db, dsn, drop, err := testsvc.OpenMySQL(ctx, filepath.Join(opts.Root, "deploy", "schema.sql"))
	if err != nil {
		return err
	}
	defer drop()
	b.db, b.dsn = db, dsn
	b.dir, err = os.MkdirTemp("", "coursedl-bench-")
	if err != nil {
		return err
	}
	if opts.Keep {
		b.progressf("scratch folder %s is kept", b.dir)
	} else {
		defer func() {
			if err := os.RemoveAll(b.dir); err != nil {
				b.progressf("scratch folder: %v", err)
			}
		}()
	}

	start := time.Now()
	for _, g := range groups {
		if !b.selected(g.name) {
			continue
		}
		b.progressf("== %s", g.name)
		if err := g.run(ctx, b); err != nil {
			return fmt.Errorf("%s: %w", g.name, err)
		}
	}
	b.progressf("done in %s", time.Since(start).Round(time.Second))
	return Print(opts.Out, b.figures)
}

func (b *Bench) selected(name string) bool {
	if len(b.opts.Only) == 0 {
		return true
	}
	for _, o := range b.opts.Only {
		if o == name {
			return true
		}
	}
	return false
}

// add records a figure.
func (b *Bench) add(f Figure) { b.figures = append(b.figures, f) }

// progressf reports what the run is doing.
func (b *Bench) progressf(format string, args ...any) {
	if b.opts.Log != nil {
		fmt.Fprintf(b.opts.Log, "bench: "+format+"\n", args...)
	}
}

// redisClient is a client on the bench's database with the worker's settings
// (app.New), its pool size included.
func (b *Bench) redisClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  testsvc.RedisAddr(),
		DB:                    b.redisDB,
		ContextTimeoutEnabled: true,
		ReadTimeout:           10 * time.Second,
	})
}
