// Package ctl is the operator's tool, workerctl: it reads and repairs the worker's
// state in Redis and MySQL from the command line. Each command is a method of Tool
// that returns a report, and each report renders itself for a person (text) or for
// a program (--json); Main parses the command line with cobra and wires them.
//
// It reads the same configuration file as the worker (config.LoadForTool), reaches
// Redis through package rdb (the one door that owns every key) and reads rows
// through package store. It never runs a task: `enqueue` and `dead requeue` push
// jobs exactly as the web app does, and the workers take them from there.
package ctl

import (
	"context"
	"errors"

	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/store"
)

// Rows reads download_tasks rows; *store.Store satisfies it.
type Rows interface {
	Task(ctx context.Context, id int64) (store.Task, error)
	Detail(ctx context.Context, id int64) (store.Detail, error)
}

// errNoMySQL is returned by commands that read rows when mysql.dsn is not set.
var errNoMySQL = errors.New("this command reads download_tasks: set mysql.dsn (WORKER_MYSQL_DSN, or --env-file with the worker's environment file)")

// Tool holds the connections of one workerctl run.
type Tool struct {
	Redis   *rdb.Client // its Queue is redis.queue
	Rows    Rows        // nil when mysql.dsn is not set
	LogsDir string      // logs.dir
}

func (t *Tool) rows() (Rows, error) {
	if t.Rows == nil {
		return nil, errNoMySQL
	}
	return t.Rows, nil
}
