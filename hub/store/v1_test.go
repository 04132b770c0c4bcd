package store

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var writeV1 = flag.Bool("write-v1", false, "rewrite testdata/schema-v1.db from testdata/schema-v1.sql")

// TestWriteSchemaV1 regenerates the schema v1 database file kept in testdata.
// It only writes with -write-v1; without it it checks the file is there.
func TestWriteSchemaV1(t *testing.T) {
	out := filepath.Join("testdata", "schema-v1.db")
	if !*writeV1 {
		if _, err := os.Stat(out); err != nil {
			t.Fatalf("%v (regenerate with -write-v1)", err)
		}
		return
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != 1 {
		t.Fatalf("schema version %d, %v; -write-v1 needs a build whose latest schema is v1", v, err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "schema-v1.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, string(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
