package process

import (
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero fields of a Spec.
const (
	DefaultKillGrace   = 5 * time.Second
	DefaultOutputGrace = 2 * time.Second
	DefaultMaxLine     = 64 << 10
	DefaultTailLines   = 20
)

// Spec describes one run of a program. Only Path is required.
type Spec struct {
	// Path is the program, resolved with exec.LookPath: a bare name is looked
	// up in the worker's PATH, a relative path is taken from the worker's
	// working directory (not from Dir). No shell is involved.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Dir is the child's working directory; empty means the worker's.
	Dir string
	// Env is the child's whole environment, "KEY=value" each. Nil means an
	// empty environment: the worker's own is never inherited (see MinimalEnv).
	Env []string
	// Timeout bounds the run; 0 means none. Past it the process group is
	// stopped as on cancellation and the error has TimedOut set.
	Timeout time.Duration
	// KillGrace is how long the group has between SIGTERM and SIGKILL when
	// the run is stopped; default DefaultKillGrace.
	KillGrace time.Duration
	// OutputGrace is how long Run keeps reading output after the child
	// exited and its group was killed, for a process that left the group but
	// still holds the pipes; default DefaultOutputGrace.
	OutputGrace time.Duration
	// OnLine, if set, is called with each line of output, without its line
	// break; see Run for how lines are split. Calls are serialized, never
	// concurrent, and all of them happen before Run returns. line is only
	// valid during the call.
	OnLine func(s Stream, line []byte)
	// OnLines, if set, is called instead of OnLine with the lines of one read
	// of a stream (at most maxBatch lines a call), in order: lines that came
	// in together are handed on together, so a caller that takes a lock or
	// reads the clock for its lines does so once a call rather than once a
	// line. OnLine's rules hold: calls are serialized, all of them happen
	// before Run returns, and lines and the slice are valid only during the
	// call.
	OnLines func(s Stream, lines [][]byte)
	// MaxLine is the longest line delivered; longer lines come in chunks of
	// MaxLine bytes. Default DefaultMaxLine.
	MaxLine int
	// TailLines is how many last lines of stderr (each cut to 512 bytes) are
	// kept for Result and ExitError; default DefaultTailLines, negative for none.
	TailLines int
}

func (s Spec) withDefaults() Spec {
	if s.KillGrace == 0 {
		s.KillGrace = DefaultKillGrace
	}
	if s.OutputGrace <= 0 {
		s.OutputGrace = DefaultOutputGrace
	}
	if s.MaxLine <= 0 {
		s.MaxLine = DefaultMaxLine
	}
	if s.TailLines == 0 {
		s.TailLines = DefaultTailLines
	}
	return s
}

// Stream names one of the child's output streams. The values are the
// streams' file descriptor numbers.
type Stream int

// The output streams of a child process.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// String returns "stdout" or "stderr".
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return "Stream(" + strconv.Itoa(int(s)) + ")"
}

// Defaults used by MinimalEnv when the worker's own environment lacks a value.
const (
	defaultPath = "/usr/local/bin:/usr/bin:/bin"
	defaultLang = "C.UTF-8"
)

// MinimalEnv returns a small environment for a child: PATH, HOME and LANG
// taken from the worker's environment (or sane defaults when unset), plus
// extra, which wins over them. The result is sorted by key, one "KEY=value" per
// entry. Keys that are empty or hold '=' or NUL, and values that hold NUL,
// cannot be passed to a child and are left out.
func MinimalEnv(extra map[string]string) []string {
	vars := map[string]string{
		"PATH": getenv("PATH", defaultPath),
		"HOME": getenv("HOME", os.TempDir()),
		"LANG": getenv("LANG", defaultLang),
	}
	for k, v := range extra {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			continue
		}
		vars[k] = v
	}
	keys := slices.Sorted(maps.Keys(vars))
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// ParseEnv turns config-style "NAME=value" items into the map MinimalEnv takes;
// an item without "=" is left out (config validation refuses it first).
func ParseEnv(items []string) map[string]string {
	m := make(map[string]string, len(items))
	for _, kv := range items {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func getenv(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
