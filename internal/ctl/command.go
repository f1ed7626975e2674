package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/coursedl/worker/internal/config"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/store"
)

// Exit statuses of workerctl.
const (
	ExitOK          = 0
	ExitError       = 1 // the command failed; or `tail` saw the task fail
	ExitUsage       = 2
	ExitInterrupted = 130
)

// commandTimeout bounds every command but tail.
const commandTimeout = 30 * time.Second

// Env is what Main runs with.
type Env struct {
	Args           []string  // without the program name
	Stdin          io.Reader // `web hash-password` reads the password from it
	Stdout, Stderr io.Writer
	Environ        []string // the process environment: WORKER_* overrides, WORKERCTL_CONFIG
	Terminal       bool     // Stdout is a terminal: `tail` redraws its progress line
	Web            WebFunc  // serves `workerctl web` (package console's Serve); nil: no console
}

// exitCode ends a command with a status and no message of its own.
type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

// Main runs workerctl and returns its exit status.
func Main(ctx context.Context, e Env) int {
	m := &cli{env: e}
	// ExecuteContext(ctx) below hands ctx to every command as c.Context(), a path
	// contextcheck does not follow.
	root := m.commands() //nolint:contextcheck // the commands get ctx from cobra
	root.SetArgs(e.Args)
	root.SetOut(e.Stdout)
	root.SetErr(e.Stderr)
	err := root.ExecuteContext(ctx)
	var code exitCode
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &code):
		return int(code)
	case !m.ran: // cobra refused the command line
		fmt.Fprintf(e.Stderr, "workerctl: %v\nRun 'workerctl --help' for usage.\n", err)
		return ExitUsage
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return ExitInterrupted
	default:
		fmt.Fprintf(e.Stderr, "workerctl: %v\n", err)
		return ExitError
	}
}

// cli holds the flags and the connections of one run.
type cli struct {
	env        Env
	configPath string
	envFile    string
	json       bool
	ran        bool           // a command's RunE began: its errors are not usage errors
	cfg        *config.Config // the configuration open loaded
}

func (m *cli) commands() *cobra.Command {
	root := &cobra.Command{
		Use:   "workerctl",
		Short: "Look at and repair the course delivery worker's queue, dead letters and tasks",
		Long: `workerctl reads the worker's state in Redis and MySQL and pushes jobs as the web
app does. It reads the worker's configuration file (--config, or WORKERCTL_CONFIG)
with the same WORKER_* environment overrides; --env-file adds the variables of the
unit's EnvironmentFile (the process environment wins over the file). Every command
takes --json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	defConfig := ""
	for _, kv := range m.env.Environ {
		if v, ok := cutPrefix(kv, "WORKERCTL_CONFIG="); ok {
			defConfig = v
		}
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&m.configPath, "config", "c", defConfig, "the worker's YAML configuration file (default $WORKERCTL_CONFIG)")
	pf.StringVar(&m.envFile, "env-file", "", "read NAME=value variables from this file first, e.g. /etc/course-worker/worker.env")
	pf.BoolVar(&m.json, "json", false, "print JSON for programs instead of text")

	root.AddCommand(m.statsCmd(), m.enqueueCmd(), m.deadCmd(), m.taskCmd(), m.tailCmd(), m.pauseCmd(), m.resumeCmd(), m.outboxCmd(), m.webCmd())
	return root
}

func (m *cli) statsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Queue depth, workers with heartbeat age and jobs in hand, delayed, dead, outbox",
		Args:  cobra.NoArgs,
		RunE: m.run(false, func(ctx context.Context, t *Tool, _ []string) (Report, error) {
			return t.Stats(ctx)
		}),
	}
}

func (m *cli) enqueueCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "enqueue TASK_ID",
		Short: "Read the task's row and push its job onto the queue, as the web app does",
		Args:  cobra.ExactArgs(1),
		RunE: m.run(true, func(ctx context.Context, t *Tool, args []string) (Report, error) {
			id, err := taskID(args[0])
			if err != nil {
				return nil, err
			}
			return t.Enqueue(ctx, id)
		}),
	}
}

func (m *cli) deadCmd() *cobra.Command {
	dead := &cobra.Command{
		Use:   "dead",
		Short: "List, requeue or purge the dead-letter list (dl:dead)",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	dead.AddCommand(m.deadListCmd(), m.deadRequeueCmd(), m.deadPurgeCmd())
	return dead
}

func (m *cli) deadListCmd() *cobra.Command {
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first, numbered from the oldest (#1)",
		Args:  cobra.NoArgs,
		RunE: m.run(false, func(ctx context.Context, t *Tool, _ []string) (Report, error) {
			return t.DeadList(ctx, limit)
		}),
	}
	list.Flags().IntVar(&limit, "limit", 50, "show the newest N entries (0: all)")
	return list
}

func (m *cli) deadRequeueCmd() *cobra.Command {
	var sel Selection
	requeue := &cobra.Command{
		Use:   "requeue N... | --task TASK_ID | --all",
		Short: "Push dead letters' original jobs back onto the queue and remove them",
		Long: `Push the original payload of dead letters back onto the queue (LPUSH, as the web
app does) and remove each entry, in one step per entry. N is the number in the #
column of 'dead list' (1 is the oldest; new dead letters do not change it).
--task requeues every dead letter of one task, --all every one. Fix what the
reason says first (the row, the allowed hosts), or the job comes back.`,
		RunE: m.run(false, func(ctx context.Context, t *Tool, args []string) (Report, error) {
			s, err := requeueSelection(args, sel)
			if err != nil {
				return nil, err
			}
			r, err := t.DeadRequeue(ctx, s)
			if err == nil && len(r.Skipped) > 0 {
				return r, exitCode(ExitError)
			}
			return r, err
		}),
	}
	requeue.Flags().BoolVar(&sel.All, "all", false, "requeue every dead letter")
	requeue.Flags().Int64Var(&sel.TaskID, "task", 0, "requeue every dead letter of this task")
	return requeue
}

// requeueSelection returns sel, which holds `dead requeue`'s --task and --all,
// with the entry numbers given as args. It checks that the entries are named in
// exactly one way: numbers, --task or --all.
func requeueSelection(args []string, sel Selection) (Selection, error) {
	sel.Indexes = nil
	for _, a := range args {
		n, err := strconv.Atoi(a)
		if err != nil || n < 1 {
			return Selection{}, fmt.Errorf("%q is not an entry number from `dead list` (1, 2, ...)", a)
		}
		sel.Indexes = append(sel.Indexes, n)
	}
	forms := 0
	for _, set := range []bool{len(args) > 0, sel.TaskID != 0, sel.All} {
		if set {
			forms++
		}
	}
	if forms != 1 {
		return Selection{}, errors.New("give entry numbers, or --task TASK_ID, or --all (one of them)")
	}
	return sel, nil
}

func (m *cli) deadPurgeCmd() *cobra.Command {
	var yes bool
	purge := &cobra.Command{
		Use:   "purge --yes",
		Short: "Delete every dead letter",
		Args:  cobra.NoArgs,
		RunE: m.run(false, func(ctx context.Context, t *Tool, _ []string) (Report, error) {
			if !yes {
				l, err := t.DeadList(ctx, 1)
				if err != nil {
					return nil, err
				}
				if l.Total > 0 {
					return nil, fmt.Errorf("dead purge deletes %s for good; run it again with --yes", deadLetters(l.Total))
				}
			}
			return t.DeadPurge(ctx)
		}),
	}
	purge.Flags().BoolVar(&yes, "yes", false, "really delete them")
	return purge
}

func (m *cli) taskCmd() *cobra.Command {
	var n int
	c := &cobra.Command{
		Use:   "task TASK_ID",
		Short: "The task's row, its latest progress, attempts, lock, and the last lines of its log",
		Args:  cobra.ExactArgs(1),
		RunE: m.run(true, func(ctx context.Context, t *Tool, args []string) (Report, error) {
			id, err := taskID(args[0])
			if err != nil {
				return nil, err
			}
			return t.Task(ctx, id, n)
		}),
	}
	c.Flags().IntVarP(&n, "lines", "n", 20, "log lines to show")
	return c
}

func (m *cli) tailCmd() *cobra.Command {
	var n int
	c := &cobra.Command{
		Use:   "tail TASK_ID",
		Short: "Follow the task's log and progress until it completes or fails",
		Long: `Follow the task's log (through rotations) and show its progress from dl:progress,
until an event with stage completed or failed arrives. The exit status is 0 when
the task completed and 1 when it failed. With --json, one object per line:
{"log": LINE}, {"progress": EVENT}, and last {"end": STAGE, "taskId": N}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			m.ran = true
			id, err := taskID(args[0])
			if err != nil {
				return err
			}
			t, closeTool, err := m.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer closeTool()
			end, err := t.Tail(c.Context(), id, m.env.Stdout, TailOptions{Lines: n, Terminal: m.env.Terminal && !m.json, JSON: m.json})
			if err != nil {
				return err
			}
			if end.Stage != progress.StageCompleted {
				return exitCode(ExitError)
			}
			return nil
		},
	}
	c.Flags().IntVarP(&n, "lines", "n", 10, "log lines to show before following")
	return c
}

// run wraps a command: load the configuration, connect, run f under
// commandTimeout, and print its report as text or JSON (also when f returns an
// exitCode with it).
func (m *cli) run(needRows bool, f func(context.Context, *Tool, []string) (Report, error)) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		m.ran = true
		ctx, cancel := context.WithTimeout(c.Context(), commandTimeout)
		defer cancel()
		t, closeTool, err := m.open(ctx, needRows)
		if err != nil {
			return err
		}
		defer closeTool()
		r, err := f(ctx, t, args)
		var code exitCode
		if err != nil && !errors.As(err, &code) {
			return err
		}
		if m.json {
			if werr := writeJSON(m.env.Stdout, r); werr != nil {
				return werr
			}
		} else if werr := r.WriteText(m.env.Stdout); werr != nil {
			return werr
		}
		return err
	}
}

// open loads the configuration and connects to Redis, and to MySQL when the
// command needs it or mysql.dsn is set.
func (m *cli) open(ctx context.Context, needRows bool) (*Tool, func(), error) {
	environ := m.env.Environ
	if m.envFile != "" {
		vars, err := readEnvFile(m.envFile)
		if err != nil {
			return nil, nil, err
		}
		environ = append(vars, environ...) // the process environment wins
	}
	cfg, err := config.LoadForTool(m.configPath, environ)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration:\n%w", err)
	}
	if needRows && cfg.MySQL.DSN == "" {
		return nil, nil, errNoMySQL
	}
	m.cfg = cfg
	dial := rdb.DialConfig(cfg.Redis)
	dial.DialTimeout = 5 * time.Second
	client := rdb.Dial(dial)
	t := &Tool{Redis: rdb.New(client, rdb.Options{Queue: cfg.Redis.Queue}), LogsDir: cfg.Logs.Dir}
	closers := []func() error{client.Close}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	if cfg.MySQL.DSN != "" {
		openCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := store.Open(openCtx, cfg.MySQL.DSN)
		switch {
		case err == nil:
			t.Rows = s
			closers = append(closers, s.Close)
		case needRows:
			closeAll()
			return nil, nil, err
		}
		// A command that does not need rows goes on without them.
	}
	return t, closeAll, nil
}

func taskID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not a task id (a positive whole number)", s)
	}
	return id, nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}
