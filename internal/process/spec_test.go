package process

import (
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestExitErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  ExitError
		want string
	}{
		{"exit with tail", ExitError{Program: "yt-dlp", ExitCode: 1, StderrTail: []string{"a", "ERROR: no"}},
			"yt-dlp: exit status 1: ERROR: no"},
		{"exit without tail", ExitError{Program: "yt-dlp", ExitCode: 2}, "yt-dlp: exit status 2"},
		{"signal", ExitError{Program: "yt-dlp", ExitCode: -1, Signal: syscall.SIGTERM}, "yt-dlp: killed by signal terminated"},
		{"timed out", ExitError{Program: "yt-dlp", ExitCode: -1, Signal: syscall.SIGKILL, TimedOut: true, Timeout: 2 * time.Hour},
			"yt-dlp: timed out after 2h0m0s"},
		{"canceled", ExitError{Program: "rclone", ExitCode: -1, Signal: syscall.SIGTERM, Canceled: true}, "rclone: canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStreamString(t *testing.T) {
	tests := []struct {
		s    Stream
		want string
	}{
		{Stdout, "stdout"},
		{Stderr, "stderr"},
		{Stream(7), "Stream(7)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Stream(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestMinimalEnv(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string // the worker's; "" unsets
		extra map[string]string
		want  []string
	}{
		{"from the worker", map[string]string{"PATH": "/p", "HOME": "/h", "LANG": "en_US.UTF-8"}, nil,
			[]string{"HOME=/h", "LANG=en_US.UTF-8", "PATH=/p"}},
		{"defaults", map[string]string{"PATH": "", "HOME": "", "LANG": "", "TMPDIR": "/t"}, nil,
			[]string{"HOME=/t", "LANG=C.UTF-8", "PATH=" + defaultPath}},
		{"extra added, sorted by key, and winning",
			map[string]string{"PATH": "/p", "HOME": "/h", "LANG": "C"},
			map[string]string{"Z": "last", "A1": "x", "A": "first", "LANG": "de_DE.UTF-8", "EMPTY": ""},
			[]string{"A=first", "A1=x", "EMPTY=", "HOME=/h", "LANG=de_DE.UTF-8", "PATH=/p", "Z=last"}},
		{"invalid extra dropped", map[string]string{"PATH": "/p", "HOME": "/h", "LANG": "C"},
			map[string]string{"": "x", "A=B": "x", "N\x00": "x", "V": "a\x00b", "OK": "a=b"},
			[]string{"HOME=/h", "LANG=C", "OK=a=b", "PATH=/p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
				if v == "" {
					if err := os.Unsetenv(k); err != nil { // t.Setenv restores it afterwards
						t.Fatal(err)
					}
				}
			}
			if got := MinimalEnv(tt.extra); !slices.Equal(got, tt.want) {
				t.Errorf("MinimalEnv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseEnv(t *testing.T) {
	got := ParseEnv([]string{"A=1", "B=x=y", "NOEQUALS", "C="})
	want := map[string]string{"A": "1", "B": "x=y", "C": ""}
	if len(got) != len(want) {
		t.Fatalf("ParseEnv = %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("ParseEnv = %v, want %v", got, want)
		}
	}
}
