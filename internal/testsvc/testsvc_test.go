package testsvc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRoot(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "schema.sql")); err != nil {
		t.Fatalf("Root() = %s, which holds no deploy/schema.sql: %v", root, err)
	}
}

// Two users at once get two databases; a released database can be taken again.
func TestOpenRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, releaseA, err := OpenRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := OpenRedis(ctx)
	if err != nil {
		releaseA()
		t.Fatal(err)
	}
	defer releaseB()
	if a.Options().DB == b.Options().DB {
		t.Fatalf("two users share redis db %d", a.Options().DB)
	}
	if err := a.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	releaseA()
}

// The database holds the schema with no rows, and drop removes it.
func TestOpenMySQL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	db, _, drop, err := OpenMySQL(ctx, filepath.Join(root, "deploy", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var name string
	if err := db.GetContext(ctx, &name, "SELECT DATABASE()"); err != nil {
		drop()
		t.Fatal(err)
	}
	var n int
	if err := db.GetContext(ctx, &n, "SELECT COUNT(*) FROM download_tasks"); err != nil || n != 0 {
		drop()
		t.Fatalf("fresh schema in %s: n=%d err=%v", name, n, err)
	}
	drop()
	admin, _, dropOther, err := OpenMySQL(ctx, filepath.Join(root, "deploy", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	defer dropOther()
	var left int
	if err := admin.GetContext(ctx, &left, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("database %s is still there after drop", name)
	}
}
