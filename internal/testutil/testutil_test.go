package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The schema the tests load is the contract's, byte for byte.
func TestSchemaMatchesContract(t *testing.T) {
	contract := filepath.Join(Root(t), "..", "shared", "contract", "schema.sql")
	want, err := os.ReadFile(contract)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("contract schema: %v", err)
		}
		t.Skipf("no contract beside the repository: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(Root(t), "deploy", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/schema.sql differs from ../shared/contract/schema.sql: copy it again")
	}
}

func TestServices(t *testing.T) {
	a, b := Redis(t), Redis(t)
	if RedisDB(a) == RedisDB(b) {
		t.Fatalf("two tests share redis db %d", RedisDB(a))
	}
	db, _ := MySQL(t)
	var n int
	if err := db.Get(&n, "SELECT COUNT(*) FROM download_tasks"); err != nil || n != 0 {
		t.Fatalf("fresh schema: n=%d err=%v", n, err)
	}
}
