package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/store"
)

// TestRestoreDB lists a pre-upgrade backup and restores it, refusing while
// the database is open.
func TestRestoreDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, hub.DBFile)
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureKiosks(ctx, []string{"k-sangcheng-01"}); err != nil {
		t.Fatal(err)
	}
	version, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := strconv.Itoa(version)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A copy named as a pre-upgrade backup.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	backup := path + ".pre-v" + v + "-20261203T162700Z"
	if err := os.WriteFile(backup, b, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(ctx, append(args[:1:1], append([]string{"-data", dir}, args[1:]...)...), strings.NewReader(""), &out,
			slog.New(slog.DiscardHandler), Options{})
		return out.String(), err
	}
	out, err := run("db-backups")
	if err != nil || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(backup)+` +v`+v+` +2026-12-0[34] `).MatchString(out) {
		t.Errorf("db-backups = %q, %v; want the backup listed", out, err)
	}
	if _, err := run("restore-db"); err == nil || !strings.Contains(err.Error(), "want 1 argument") {
		t.Errorf("restore-db without a backup: %v", err)
	}

	s, err = store.Open(ctx, path) // the hub is running
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run("restore-db", backup); err == nil || !strings.Contains(err.Error(), "stop the hub first") {
		t.Errorf("restore-db while the hub runs: %v, want it refused", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out, err = run("restore-db", backup)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^restored .+ from .+ \(schema v` + v + `\)\nthe database it replaced is now (.+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("restore-db said %q", out)
	}
	if _, err := os.Stat(m[1]); err != nil {
		t.Errorf("replaced database: %v", err)
	}
	s, err = store.Open(ctx, path)
	if err != nil {
		t.Fatalf("open the restored database: %v", err)
	}
	defer s.Close()
	if k, err := s.Kiosk(ctx, "k-sangcheng-01"); err != nil || k.ID != "k-sangcheng-01" {
		t.Errorf("kiosk in the restored database = %+v, %v", k, err)
	}
}
