package testutil

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
)

// SyncBuffer is an output one goroutine writes and another reads: a logger's
// stderr, a command's stdout. It is a zapcore.WriteSyncer.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Sync does nothing: nothing is buffered.
func (s *SyncBuffer) Sync() error { return nil }

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Get fetches url and returns the status code and the body; a request that
// fails fails the test.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read whole or failed: nothing is lost by closing
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
