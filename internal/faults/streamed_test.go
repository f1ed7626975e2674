package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/testutil"
)

// testKill9Streamed: a course of four lessons whose files go to the
// destination while the download goes on. Lesson 1 is there and recorded;
// rclone has moved lesson 2 but not yet exited (the fake holds it), so the
// task's state does not say so; the downloader waits before lesson 3. Then
// the worker gets SIGKILL and is started again under the same id. The task
// must complete once, without downloading or moving lesson 1 or 2 again: the
// downloader's archive skips them, the state says lesson 1 is at the
// destination, and lesson 2, gone from the folder, is found there.
func testKill9Streamed(t *testing.T, c *cluster) {
	const lessons = 4
	c.lessons = lessons
	downloads, moves := filepath.Join(c.root, "downloads"), filepath.Join(c.root, "rclone-runs")
	c.settings["WORKER_DOWNLOAD_COMMAND"] = fmt.Sprintf(`[%q, "lessons", "{url}", "{dir}"]`, fakeDownloader)
	// The gates never open: the first run of the downloader waits after
	// lesson 2, and its rclone after moving lesson 2, until the worker is
	// killed (then they exit); the second does not stop there, lessons 1 and
	// 2 being in its archive.
	c.settings["WORKER_DOWNLOAD_ENV"] = fmt.Sprintf(`["FAKE_LESSONS=%d", "FAKE_GATE=%s", "FAKE_GATE_AFTER=2", "FAKE_RECORD=%s"]`,
		lessons, filepath.Join(c.root, "gate"), downloads)
	c.settings["WORKER_UPLOAD_RCLONE"] = filepath.Join(repoRoot, "testdata", "fake-rclone")
	c.settings["WORKER_UPLOAD_ENV"] = fmt.Sprintf(`["FAKE_RCLONE_RECORD=%s", "FAKE_RCLONE_HOLD=lesson-2.txt", "FAKE_RCLONE_HOLD_GATE=%s"]`,
		moves, filepath.Join(c.root, "rclone-gate"))
	tk := c.addTasks(1, nil)[0]
	w := c.worker("streamed-a", nil)
	w.start()
	c.push(tk)
	state := filepath.Join(c.root, "staging-"+w.id, fmt.Sprintf("task-%d.state", tk.id))
	lesson2 := filepath.Join(c.root, "drive", fmt.Sprint(tk.id), "lesson-2.txt")
	waitFor(t, time.Minute, "lesson 1 moved and recorded, lesson 2 moved", func(context.Context) bool {
		_, err := os.Stat(lesson2)
		return err == nil && movedInState(state, "Fake Course/lesson-1.txt")
	})
	w.kill()
	if movedInState(state, "Fake Course/lesson-2.txt") {
		t.Fatal("the state says lesson 2 moved: its rclone was not held")
	}
	w.start()
	c.verdict("kill9_streamed", 1, true, "")
	made := map[string]int{}
	b, _ := os.ReadFile(downloads)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, _, _ := strings.Cut(line, " ")
		made[name]++
	}
	moved := testutil.RcloneMoves(t, moves)
	for n := 1; n <= lessons; n++ {
		name := fmt.Sprintf("lesson-%d", n)
		if made[name] != 1 {
			t.Errorf("%s downloaded %d times, want once (all: %v)", name, made[name], made)
		}
		if moved[name+".txt"] != 1 {
			t.Errorf("%s moved %d times, want once (all: %v)", name, moved[name+".txt"], moved)
		}
	}
	tl, _ := os.ReadFile(filepath.Join(c.root, "logs-"+w.id, "tasks", fmt.Sprintf("task-%d.log", tk.id)))
	if !strings.Contains(string(tl), `"Fake Course/lesson-2.txt", whose upload an earlier run started, is at the destination`) {
		t.Errorf("the task log does not say lesson 2 was found at the destination:\n%s", tl)
	}
}

// movedInState reports whether the task's state file records each of rels as
// moved to the destination.
func movedInState(path string, rels ...string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var st struct {
		Files map[string]struct{ Moved bool } `json:"files"`
	}
	if json.Unmarshal(b, &st) != nil {
		return false
	}
	return !slices.ContainsFunc(rels, func(r string) bool { return !st.Files[r].Moved })
}
