package trouble

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestLogsChangesOnly(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	tr := New(zap.New(core), "redis failing", "redis back")
	boom := errors.New("connection refused")
	for _, err := range []error{nil, boom, boom, boom, nil, nil, boom, nil} {
		tr.Report(err)
	}
	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Level.String()+" "+e.Message)
	}
	want := []string{"warn redis failing", "info redis back", "warn redis failing", "info redis back"}
	if len(got) != len(want) {
		t.Fatalf("logged %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("logged %q, want %q", got, want)
		}
	}
}
