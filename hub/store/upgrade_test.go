package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// upgradeTime is when the tests' upgrades happen; backups are named for it.
var upgradeTime = time.Date(2026, 12, 3, 16, 27, 0, 0, time.UTC)

// realMigrations returns this build's migrations.
func realMigrations(t *testing.T) []migration {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 3 {
		t.Fatalf("%d migrations; the upgrade tests want at least 3", len(ms))
	}
	return ms
}

// openWith opens path with the migrations ms, as a build that has only
// those would, logging into log (nil: t.Logf).
func openWith(t *testing.T, path string, ms []migration, log *bytes.Buffer) (*SQLite, error) {
	t.Helper()
	var w interface{ Write([]byte) (int, error) } = tLogWriter{t}
	if log != nil {
		w = log
	}
	return open(context.Background(), path, upgrader{
		migrations: ms, log: slog.New(slog.NewTextHandler(w, nil)), now: func() time.Time { return upgradeTime },
	})
}

type tLogWriter struct{ t *testing.T }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Logf("%s", bytes.TrimSuffix(p, []byte("\n")))
	return len(p), nil
}

// olderDB writes a database at schema version n (the first n of this
// build's migrations) holding a few rows, closed, and returns its path.
func olderDB(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := openWith(t, path, realMigrations(t)[:n], nil)
	if err != nil {
		t.Fatalf("open at v%d: %v", n, err)
	}
	// notices and kiosks exist since v1.
	if _, err := s.db.Exec(`INSERT INTO kiosks (id) VALUES ('k-sangcheng-01'), ('k-ruiyi-01')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`INSERT INTO notices (id, title, body, category, priority, valid_from, targets, created_at)
		VALUES ('n1', '停水通知', '明日停水', 'notice', 'normal', 1, '[]', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// state is what the tests compare before and after: the schema version,
// the tables and indexes, and the rows of the tables olderDB fills.
type state struct {
	version int
	schema  []string
	rows    []string
}

// readState reads the state of the database file at path without
// migrating it.
func readState(t *testing.T, path string) state {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var st state
	if err := db.QueryRow(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&st.version); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rows, err := db.Query(`SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		st.schema = append(st.schema, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = db.Query(`SELECT 'kiosk ' || id FROM kiosks UNION ALL SELECT 'notice ' || id || ' ' || title FROM notices ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		st.rows = append(st.rows, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return st
}

func (a state) equal(b state) bool {
	return a.version == b.version && slices.Equal(a.schema, b.schema) && slices.Equal(a.rows, b.rows)
}

func backupPath(path string, version int) string {
	return fmt.Sprintf("%s.pre-v%d-20261203T162700Z", path, version)
}

// TestUpgradeBacksUp upgrades databases of older schemas and checks each
// left a backup: a sound database at the old version with the same rows.
func TestUpgradeBacksUp(t *testing.T) {
	ms := realMigrations(t)
	latest := len(ms)
	for _, n := range []int{1, latest - 1} {
		t.Run(fmt.Sprintf("from v%d", n), func(t *testing.T) {
			path := olderDB(t, n)
			before := readState(t, path)
			var log bytes.Buffer
			s, err := openWith(t, path, ms, &log)
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			if v, err := s.SchemaVersion(context.Background()); err != nil || v != latest {
				t.Errorf("schema version after the upgrade = %d, %v; want %d", v, err, latest)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			backup := backupPath(path, n)
			if !strings.Contains(log.String(), backup) {
				t.Errorf("the log does not name the backup %s:\n%s", backup, log.String())
			}
			if fi, err := os.Stat(backup); err != nil {
				t.Fatalf("no backup: %v", err)
			} else if fi.Mode().Perm() != 0o600 {
				t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
			}
			if got := readState(t, backup); !got.equal(before) {
				t.Errorf("backup holds\n%+v\nwant the database before the upgrade\n%+v", got, before)
			}
			if _, err := os.Stat(backup + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary backup file left: %v", err)
			}
			bs, err := Backups(path)
			if err != nil || len(bs) != 1 || bs[0].Path != backup || bs[0].Version != n || !bs[0].Taken.Equal(upgradeTime) {
				t.Errorf("Backups = %+v, %v; want the one backup", bs, err)
			}
		})
	}
}

// TestUpgradeSchemaV1File upgrades the schema v1 file kept in testdata.
func TestUpgradeSchemaV1File(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "schema-v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hub.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openWith(t, path, realMigrations(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(backupPath(path, 1))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+backupPath(path, 1)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ticket string
	if err := db.QueryRow(`SELECT ticket FROM feedback`).Scan(&ticket); err != nil || ticket != "T-V1-0001" {
		t.Errorf("backup (%d bytes) feedback ticket %q, %v; want T-V1-0001", len(b), ticket, err)
	}
}

func TestNewDatabaseNotBackedUp(t *testing.T) {
	_, path := openTemp(t)
	bs, err := Backups(path)
	if err != nil || len(bs) != 0 {
		t.Errorf("Backups of a new database = %+v, %v; want none", bs, err)
	}
}

// TestFailedMigrationRollsBack injects failing migrations after this
// build's: the upgrade fails naming the migration, and the database is as
// it was, so this build still runs on it.
func TestFailedMigrationRollsBack(t *testing.T) {
	ms := realMigrations(t)
	latest := len(ms)
	next := func(offset int, name, sql string) migration {
		return migration{version: latest + offset, name: fmt.Sprintf("%04d_%s.sql", latest+offset, name), sql: sql}
	}
	good := next(1, "good", `CREATE TABLE upgrade_good (x INTEGER); INSERT INTO upgrade_good VALUES (1);`)
	tests := []struct {
		name  string
		extra []migration
		want  string // the migration named in the error
	}{
		{"first statement fails", []migration{next(1, "broken", `INSERT INTO no_such_table VALUES (1);`)}, "_broken.sql"},
		{"last of several statements fails", []migration{next(1, "partial",
			`CREATE TABLE upgrade_partial (x INTEGER);
			INSERT INTO upgrade_partial VALUES (1);
			ALTER TABLE notices ADD COLUMN upgrade_col TEXT;
			UPDATE kiosks SET id = id || '-x';
			INSERT INTO no_such_table VALUES (1);`)}, "_partial.sql"},
		{"syntax error after good statements", []migration{next(1, "syntax",
			`CREATE TABLE upgrade_syntax (x INTEGER); CREATE TABEL oops (y);`)}, "_syntax.sql"},
		{"second pending migration fails", []migration{good, next(2, "broken",
			`DELETE FROM notices; INSERT INTO no_such_table VALUES (1);`)}, "_broken.sql"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := olderDB(t, latest)
			before := readState(t, path)
			s, err := openWith(t, path, append(slices.Clip(ms), tc.extra...), nil)
			if err == nil {
				s.Close()
				t.Fatal("upgrade with a failing migration succeeded")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rolled back") {
				t.Errorf("error %q does not name the migration %s and say it was rolled back", err, tc.want)
			}
			if !strings.Contains(err.Error(), backupPath(path, latest)) {
				t.Errorf("error %q does not name the backup", err)
			}
			if got := readState(t, path); !got.equal(before) {
				t.Errorf("database after the failed upgrade\n%+v\nwant as before\n%+v", got, before)
			}
			// The previous build runs on it.
			s, err = openWith(t, path, ms, nil)
			if err != nil {
				t.Fatalf("this build on the database after the failed upgrade: %v", err)
			}
			defer s.Close()
			if n, err := s.Notices(context.Background()); err != nil || len(n) != 1 {
				t.Errorf("notices = %v, %v; want the one", n, err)
			}
		})
	}
}

func TestSchemaTooNewRefused(t *testing.T) {
	ms := realMigrations(t)
	latest := len(ms)
	path := olderDB(t, latest)
	before := readState(t, path)
	s, err := openWith(t, path, ms[:latest-2], nil)
	if err == nil {
		s.Close()
		t.Fatal("an older build opened a newer database")
	}
	want := fmt.Sprintf("database schema v%d is newer than this hub (v%d): restore the backup taken before the upgrade or install the newer hub",
		latest, latest-2)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want ErrSchemaTooNew saying %q", err, want)
	}
	if got := readState(t, path); !got.equal(before) {
		t.Errorf("database after the refusal\n%+v\nwant as before\n%+v", got, before)
	}
	if bs, err := Backups(path); err != nil || len(bs) != 0 {
		t.Errorf("backups after the refusal = %+v, %v; want none", bs, err)
	}
}

// TestBackupFailureMigratesNothing makes the backup fail (a directory
// where the backup goes): the upgrade is refused and the database left at
// its version.
func TestBackupFailureMigratesNothing(t *testing.T) {
	ms := realMigrations(t)
	latest := len(ms)
	path := olderDB(t, latest-1)
	before := readState(t, path)
	backup := backupPath(path, latest-1)
	if err := os.MkdirAll(filepath.Join(backup, "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := openWith(t, path, ms, nil)
	if err == nil {
		s.Close()
		t.Fatal("upgrade without a backup succeeded")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "not upgrading") || !strings.Contains(err.Error(), backup) {
		t.Errorf("error %q does not say the upgrade was refused for the backup %s", err, backup)
	}
	if got := readState(t, path); !got.equal(before) {
		t.Errorf("database after the refused upgrade\n%+v\nwant as before\n%+v", got, before)
	}
	if _, err := os.Stat(backup + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary backup file left: %v", err)
	}
}

// TestPruneBackups keeps the KeepBackups newest pre-upgrade backups, by
// the time in their names, and touches no other file.
func TestPruneBackups(t *testing.T) {
	ms := realMigrations(t)
	latest := len(ms)
	path := olderDB(t, latest-1)
	dir := filepath.Dir(path)
	old := []string{
		"hub.db.pre-v9-20250101T000000Z",
		"hub.db.pre-v10-20260101T000000Z",
		"hub.db.pre-v8-20260601T000000Z", // newer than v10's though older
		"hub.db.pre-v11-20261101T000000Z",
	}
	others := []string{
		"hub.db.pre-v1-20240101T000000Z.tmp",
		"hub.db.pre-v1-2024",
		"hub.db.replaced-20240101T000000Z",
		"other.db.pre-v1-20240101T000000Z",
		"hub.db-wal.pre-v1-20240101T000000Z",
	}
	for _, name := range append(slices.Clip(old), others...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	s, err := openWith(t, path, ms, &log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bs, err := Backups(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, filepath.Base(b.Path))
	}
	want := []string{filepath.Base(backupPath(path, latest-1)), old[3], old[2]}
	if KeepBackups != 3 || !slices.Equal(got, want) {
		t.Errorf("backups kept (KeepBackups %d): %v, want %v", KeepBackups, got, want)
	}
	for _, name := range others {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("pruning touched %s: %v", name, err)
		}
	}
	for _, name := range old[:2] {
		if !strings.Contains(log.String(), name) {
			t.Errorf("the log does not name the removed %s", name)
		}
	}
}

// TestRestore goes back to the version before an upgrade with its backup.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	ms := realMigrations(t)
	latest := len(ms)
	path := olderDB(t, latest-1)
	before := readState(t, path)
	s, err := openWith(t, path, ms, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`INSERT INTO kiosks (id) VALUES ('k-after-the-upgrade')`); err != nil {
		t.Fatal(err)
	}
	backup := backupPath(path, latest-1)
	restoreTime := upgradeTime.Add(time.Hour)

	// While the hub has it open.
	if _, _, err := restore(ctx, path, backup, restoreTime, latest-1); !errors.Is(err, ErrInUse) {
		t.Errorf("restore while the database is open: %v, want ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	upgraded := readState(t, path)

	// Files that are no backup of a database this build can run.
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte("not a database at all, but long enough to look at"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		file   string
		latest int
		want   string
	}{
		"junk":      {junk, latest - 1, "not a"},
		"missing":   {filepath.Join(t.TempDir(), "nope.db"), latest - 1, "no such file"},
		"too new":   {path, latest - 1, "newer than this hub"},
		"old build": {backup, latest - 2, "newer than this hub"},
	} {
		if _, _, err := restore(ctx, path, tc.file, restoreTime, tc.latest); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("restore %s: %v, want an error saying %q", name, err, tc.want)
		}
	}
	if got := readState(t, path); !got.equal(upgraded) {
		t.Errorf("refused restores changed the database:\n%+v\nwant\n%+v", got, upgraded)
	}

	// The previous build restores the backup and runs on it.
	v, replaced, err := restore(ctx, path, backup, restoreTime, latest-1)
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".replaced-20261203T172700Z"; v != latest-1 || replaced != want {
		t.Errorf("restore = v%d, %s; want v%d, %s", v, replaced, latest-1, want)
	}
	if got := readState(t, path); !got.equal(before) {
		t.Errorf("restored database\n%+v\nwant as before the upgrade\n%+v", got, before)
	}
	if got := readState(t, replaced); !got.equal(upgraded) {
		t.Errorf("replaced database\n%+v\nwant the upgraded one\n%+v", got, upgraded)
	}
	if _, err := os.Stat(backup); err != nil {
		t.Errorf("the backup is gone after the restore: %v", err)
	}
	if _, err := os.Stat(path + ".restoring"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	s, err = openWith(t, path, ms[:latest-1], nil)
	if err != nil {
		t.Fatalf("the previous build on the restored database: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
