package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux the worker runs on).
const clockTick = 10 * time.Millisecond

// rssKiB reads VmRSS, the resident memory of process pid, in KiB.
func rssKiB(pid int) (int64, error) { return statusKiB(pid, "VmRSS") }

// statusKiB reads the field named field (VmRSS, VmHWM) of /proc/<pid>/status.
func statusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseKiB(data, field)
}

// parseKiB finds the field named field, in kB, in the text of /proc/<pid>/status.
func parseKiB(status []byte, field string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(field+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("%s line %q", field, bytes.TrimSpace(line))
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// peakRSS is the highest RSS of a process from a point on, as the kernel keeps
// it (VmHWM): exact, and free for the process watched. Sampling /proc every
// 10 ms instead slowed the worker by a third in the stream figures.
type peakRSS struct{ pid int }

// watchPeak resets the high-water mark of pid's RSS to its RSS now
// (/proc/<pid>/clear_refs, Linux 4.0 and later).
func watchPeak(pid int) (peakRSS, error) {
	err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	if err != nil {
		return peakRSS{}, fmt.Errorf("reset the peak RSS of %d: %w", pid, err)
	}
	return peakRSS{pid}, nil
}

// KiB returns the highest RSS since watchPeak, in KiB.
func (p peakRSS) KiB() (int64, error) { return statusKiB(p.pid, "VmHWM") }

// cpuTime reads the CPU time process pid has used, user and system.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPU(data)
}

// parseCPU adds utime and stime (fields 14 and 15) of /proc/<pid>/stat. The
// command name, field 2, is in parentheses and may hold spaces and ')': the
// fields are counted from the last ')'.
func parseCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat without a command name")
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat with %d fields", len(f)+2)
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: utime %q, stime %q", f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// mib converts KiB to MiB.
func mib(kib int64) float64 { return float64(kib) / 1024 }
