package bench

import (
	"bytes"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/progress"
)

func TestParseKiB(t *testing.T) {
	status := []byte("Name:\tworker\nVmPeak:\t  812345 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   15672 kB\nRssAnon:\t    9000 kB\n")
	if got, err := parseKiB(status, "VmRSS"); err != nil || got != 15672 {
		t.Fatalf("parseKiB(VmRSS) = %d, %v", got, err)
	}
	if got, err := parseKiB(status, "VmHWM"); err != nil || got != 20480 {
		t.Fatalf("parseKiB(VmHWM) = %d, %v", got, err)
	}
	if _, err := parseKiB([]byte("Name:\tworker\n"), "VmRSS"); err == nil {
		t.Fatal("no VmRSS: no error")
	}
	// The real thing, this process.
	if kib, err := rssKiB(os.Getpid()); err != nil || kib <= 0 {
		t.Fatalf("rssKiB(self) = %d, %v", kib, err)
	}
}

// The peak is the kernel's: memory touched and given back between two reads
// still counts.
func TestPeakRSS(t *testing.T) {
	peak, err := watchPeak(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	base, err := rssKiB(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b) // b is dead from here on: FreeOSMemory can free it
	debug.FreeOSMemory()
	now, _ := rssKiB(os.Getpid())
	got, err := peak.KiB()
	if err != nil {
		t.Fatal(err)
	}
	if got-base < 60<<10 || got-now < 32<<10 {
		t.Fatalf("RSS %d KiB before, %d after, peak %d: want a peak 64 MiB over the RSS before, and above the RSS after", base, now, got)
	}
}

func TestParseCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := []byte("4242 (my (odd) worker) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 1000 0 0\n")
	if got, err := parseCPU(stat); err != nil || got != 325*clockTick {
		t.Fatalf("parseCPU = %v, %v; want %v", got, err, 325*clockTick)
	}
	if _, err := parseCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("short stat: no error")
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Fatalf("cpuTime(self): %v", err)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, tt := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {0.99, 5}, {1, 5}} {
		if got := quantile(xs, tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	if got := ratios([]float64{2, 3}, []float64{4, 6, 8}); len(got) != 2 || got[0] != 0.5 || got[1] != 0.5 {
		t.Errorf("ratios = %v", got)
	}
}

func TestTargetMet(t *testing.T) {
	tests := []struct {
		target Target
		v      float64
		want   string
	}{
		{AtLeast(0.6), 0.6, "yes"},
		{AtLeast(0.6), 0.59, "no"},
		{AtMost(5), 4.9, "yes"},
		{AtMost(5), 5.1, "no"},
		{Target{}, 1, "-"},
		{AtMost(50), NA, "-"},
	}
	for _, tt := range tests {
		if got := tt.target.Met(tt.v); got != tt.want {
			t.Errorf("%s met by %v = %s, want %s", tt.target, tt.v, got, tt.want)
		}
	}
}

// The last lines are exactly "BENCH <name> <value> <unit>", one per figure.
func TestPrint(t *testing.T) {
	var b bytes.Buffer
	err := Print(&b, []Figure{
		{Name: "queue_jobs_per_s", Value: 31234.4, Unit: "jobs/s"},
		{Name: "queue_vs_naive_ratio", Value: 0.6789, Unit: "ratio", Decimals: 2, Target: AtLeast(0.6)},
		{Name: "ready_ms", Value: NA, Unit: "ms", Decimals: 1, Target: AtMost(300), Note: "NA: no /readyz"},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"BENCH queue_jobs_per_s 31234 jobs/s",
		"BENCH queue_vs_naive_ratio 0.68 ratio",
		"BENCH ready_ms NA ms",
	}
	if got := lines[len(lines)-3:]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("last lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(lines[0], "FIGURE") || !strings.Contains(b.String(), ">= 0.6  yes") {
		t.Fatalf("table:\n%s", b.String())
	}
}

func TestDownloadTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "task-1.log")
	text := "2026-11-28T20:00:00.000Z [worker] download started in /x\n" +
		strings.Repeat("2026-11-28T20:00:00.100Z [download] [download]  42.3% of ~1.23GiB\n", 2000) +
		"2026-11-28T20:00:01.300Z [worker] download finished in 1.234s\n" +
		"2026-11-28T20:00:01.400Z [worker] upload of \"Course\" started\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := downloadTime(path); err != nil || d != 1234*time.Millisecond {
		t.Fatalf("downloadTime = %v, %v", d, err)
	}
}

// The flood is what the figure says: whole 100-byte lines, yt-dlp progress lines
// the worker parses and publishes, then the file a download leaves.
func TestChildFlood(t *testing.T) {
	if len(floodLine) != 100 || floodLine[99] != '\n' {
		t.Fatalf("flood line of %d bytes: %q", len(floodLine), floodLine)
	}
	var d progress.Downloader
	if u, ok := d.Parse(floodLine[:99]); !ok || !u.HasPercent {
		t.Fatalf("the flood line is not a progress line: %+v", u)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := Child([]string{"flood", "1050", dir, out}); code != 0 {
		t.Fatalf("child exited %d", code)
	}
	data, _ := os.ReadFile(out)
	if !bytes.Equal(data, bytes.Repeat(floodLine, 10)) {
		t.Fatalf("flood wrote %d bytes, want 10 lines", len(data))
	}
	if _, err := os.Stat(filepath.Join(dir, "Course", "a.txt")); err != nil {
		t.Fatalf("no file left: %v", err)
	}
	if code := Child([]string{"nonsense", "1", dir}); code != 2 {
		t.Fatalf("unknown mode exited %d", code)
	}
}

// The bench's jobs are valid jobs of the contract.
func TestJobPayload(t *testing.T) {
	p := jobPayload(17, "https://www.udemy.com/course/go-in-depth/")
	j, err := job.Decode([]byte(p), []string{"www.udemy.com"})
	if err != nil || j.TaskID != 17 {
		t.Fatalf("job.Decode(%s) = %+v, %v", p, j, err)
	}
}

// The receiver verifies signatures and notes each task's first delivery.
func TestHookServer(t *testing.T) {
	h, err := newHookServer()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	signer, _ := notify.NewSigner(hookSecret)
	post := func(body, sig string) {
		t.Helper()
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.URL(), strings.NewReader(body))
		req.Header.Set("webhook-id", "msg_1")
		req.Header.Set("webhook-timestamp", ts)
		if sig == "" {
			sig = signer.Sign("msg_1", time.Now().Unix(), []byte(body))
		}
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close() // only the arrival counts
	}
	arrived := h.arrival(7)
	post(`{"type":"task.completed","taskId":7}`, "v1,bad")
	select {
	case <-arrived:
		t.Fatal("an unverified webhook counted")
	default:
	}
	post(`{"type":"task.completed","taskId":7}`, "")
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("verified webhook not noted")
	}
	if h.unverified() != 1 || h.at(7).IsZero() {
		t.Fatalf("unverified %d, at %v", h.unverified(), h.at(7))
	}
	select {
	case <-h.arrival(7): // already there: closed at once
	default:
		t.Fatal("arrival of a delivered task not closed")
	}
}

// stampCopy, the stream ceiling, writes every byte it reads, each line after a
// 25-byte time: a bound it does not earn by dropping work.
func TestStampCopy(t *testing.T) {
	long := strings.Repeat("x", 300<<10) // longer than its read buffer: cut at 256 KiB
	for _, c := range []struct{ in, want string }{
		{strings.Repeat("[download]  42.3% of 1GiB\n", 50_000) + "last, no break", ""},
		{long + "\n", long[:256<<10] + "\n" + long[256<<10:] + "\n"},
	} {
		if c.want == "" {
			c.want = c.in + "\n"
		}
		var out bytes.Buffer
		n, err := stampCopy(&out, strings.NewReader(c.in))
		if err != nil || n != int64(out.Len()) {
			t.Fatalf("stampCopy = %d, %v; wrote %d", n, err, out.Len())
		}
		stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z $`)
		var text strings.Builder
		for line := range strings.Lines(out.String()) {
			if len(line) < 25 || !stamp.MatchString(line[:25]) {
				t.Fatalf("line without a stamp: %.60q", line)
			}
			text.WriteString(line[25:])
		}
		if text.String() != c.want {
			t.Fatalf("the text after the stamps differs from the input (%d bytes, want %d)", text.Len(), len(c.want))
		}
	}
}
