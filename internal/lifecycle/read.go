package lifecycle

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// MaxDaysSearched bounds how many daily files TaskLines reads.
const MaxDaysSearched = 31

// TaskLines returns the lines about taskID in the lifecycle files of dir,
// oldest first, at most max (the newest max). It reads the daily files from the
// newest back, and stops at the first older file without a line of the task
// once it has found some (a task's lines fall within a few days), or after
// MaxDaysSearched files. A line is the task's when its task field, right after
// the event, is "[TaskId: <taskID>]"; a field value that merely mentions it
// does not count.
func TaskLines(dir string, taskID int64, max int) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "lifecycle-*.log"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files) // by date: lifecycle-YYYY-MM-DD.log
	slices.Reverse(files)
	want := []byte(" [TaskId: " + strconv.FormatInt(taskID, 10) + "]")
	var days [][]string // newest day first
	for i, f := range files {
		if i == MaxDaysSearched {
			break
		}
		lines, err := linesOf(f, want)
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 && len(days) > 0 {
			break
		}
		if len(lines) > 0 {
			days = append(days, lines)
		}
	}
	var out []string
	for i := len(days) - 1; i >= 0; i-- {
		out = append(out, days[i]...)
	}
	if max > 0 && len(out) > max {
		out = out[len(out)-max:]
	}
	return out, nil
}

// linesOf returns the lines of the file whose task field is want.
func linesOf(path string, want []byte) ([]string, error) {
	f, err := os.Open(path) //nolint:gosec // G304: a lifecycle file of logs.dir, found by its name pattern
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // only read from
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := sc.Bytes(); bytes.HasPrefix(afterEvent(line), want) {
			out = append(out, string(line))
		}
	}
	return out, sc.Err()
}

// afterEvent returns what follows the event's closing bracket in a line
// ("<time> [EVENT] ..."), skipping escaped brackets; nil when there is none.
func afterEvent(line []byte) []byte {
	i := bytes.Index(line, []byte(" ["))
	if i < 0 {
		return nil
	}
	for j := i + 2; j < len(line); j++ {
		switch line[j] {
		case '\\':
			j++
		case ']':
			return line[j+1:]
		}
	}
	return nil
}
