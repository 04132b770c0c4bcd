package store

// Upgrading an existing database, and going back.
//
// When a build opens a database (an unchanged one, one at the build's
// version, is simply opened):
//
//  1. A database whose schema is newer than the build knows (an older hub
//     started after a newer one upgraded it) is refused with
//     ErrSchemaTooNew and left as it is.
//  2. A database at schema version 1 or later is first copied beside
//     itself with VACUUM INTO (a consistent snapshot, also while other
//     processes read it) to PATH.pre-vN-YYYYMMDDTHHMMSSZ, N the version
//     before the upgrade and the time in UTC; the copy and its directory
//     are synced before anything is migrated. If the copy fails (a full
//     disk) nothing is migrated. Of these copies the KeepBackups newest
//     are kept. A new database (version 0) is not copied.
//  3. Every pending migration is applied in one transaction: a migration
//     that fails, in any of its statements, rolls back the whole upgrade,
//     so the database stays exactly at the version the previous build ran
//     on, and that build still runs on it. A migration file therefore
//     must not BEGIN or COMMIT on its own.
//
// Restore puts a backup back in place of the database.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// KeepBackups is how many pre-upgrade backups of a database are kept
// beside it: the newest, by the time in their names. Older ones are
// removed after a new one has been taken.
const KeepBackups = 3

// backupTime is the layout of the UTC time in the names of pre-upgrade
// backups and of databases set aside by Restore.
const backupTime = "20060102T150405Z"

// upgrader is what upgrade needs besides the database: the migrations of
// this build (versions 1..n in order), where to log, and the clock that
// names backups.
type upgrader struct {
	migrations []migration
	log        *slog.Logger
	now        func() time.Time
}

// schemaTooNewError is ErrSchemaTooNew with the versions.
type schemaTooNewError struct{ db, build int }

func (e schemaTooNewError) Error() string {
	return fmt.Sprintf("store: database schema v%d is newer than this hub (v%d): "+
		"restore the backup taken before the upgrade or install the newer hub", e.db, e.build)
}

func (e schemaTooNewError) Is(target error) bool { return target == ErrSchemaTooNew }

// upgrade brings the database at path to the schema of up.migrations.
func (s *SQLite) upgrade(ctx context.Context, path string, up upgrader) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	from, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	latest := len(up.migrations)
	switch {
	case from > latest:
		return schemaTooNewError{db: from, build: latest}
	case from == latest:
		return nil
	}
	backup := ""
	if from > 0 {
		backup, err = s.backup(ctx, path, from, up.now())
		if err != nil {
			return fmt.Errorf("store: not upgrading the database from schema v%d to v%d: %w", from, latest, err)
		}
		up.log.Info("backed up the database before upgrading its schema", "backup", backup, "from", from, "to", latest)
		if err := pruneBackups(path, KeepBackups, up.log); err != nil {
			// The new backup is in place: an old one left over costs
			// only disk space.
			up.log.Warn("removing old pre-upgrade backups failed", "err", err)
		}
	}
	found, err := s.migrate(ctx, up.migrations, up.now())
	if err != nil {
		msg := fmt.Sprintf("store: upgrade from schema v%d to v%d rolled back, the database is unchanged", from, latest)
		if backup != "" {
			msg += " (backup " + backup + ")"
		}
		return fmt.Errorf("%s: %w", msg, err)
	}
	switch {
	case found == 0:
		up.log.Info("created the database schema", "version", latest)
	case found < latest:
		up.log.Info("upgraded the database schema", "from", found, "to", latest)
	}
	return nil
}

// migrate applies the migrations the database has not applied, all in one
// transaction, and returns the version the database was at.
func (s *SQLite) migrate(ctx context.Context, ms []migration, now time.Time) (from int, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("migrate: begin: %w", err)
	}
	defer rollback(tx, &err)
	// Read again under the write lock: another process may have upgraded
	// the database since upgrade looked.
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&from); err != nil {
		return 0, fmt.Errorf("migrate: schema version: %w", err)
	}
	if from > len(ms) {
		return from, schemaTooNewError{db: from, build: len(ms)}
	}
	for _, m := range ms[from:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return from, fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, now.UnixNano()); err != nil {
			return from, fmt.Errorf("migration %s: record: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return from, fmt.Errorf("migrate: commit: %w", err)
	}
	return from, nil
}

// backup copies the database, at schema version, to a pre-upgrade backup
// beside path named for version and now, synced with its directory, and
// returns the backup's path. On error no backup is left.
func (s *SQLite) backup(ctx context.Context, path string, version int, now time.Time) (name string, err error) {
	name = fmt.Sprintf("%s.pre-v%d-%s", path, version, now.UTC().Format(backupTime))
	tmp := name + ".tmp"
	if err := removeIfExists(tmp); err != nil {
		return "", fmt.Errorf("backup %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, removeIfExists(tmp))
		}
	}()
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return "", fmt.Errorf("backup %s: %w", name, err)
	}
	// The backup holds what the database holds (residents' phone numbers):
	// only the hub's user reads it.
	if err := syncFile(tmp, 0o600); err != nil {
		return "", fmt.Errorf("backup %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return "", fmt.Errorf("backup %s: %w", name, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return "", errors.Join(fmt.Errorf("backup %s: %w", name, err), os.Remove(name))
	}
	return name, nil
}

// Backup is a copy of the database taken before an upgrade.
type Backup struct {
	Path    string
	Version int       // the schema version the database had, and the copy has
	Taken   time.Time // UTC, to the second
}

// Backups returns the pre-upgrade backups beside the database at path,
// newest first.
func Backups(path string) ([]Backup, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("store: backups of %s: %w", path, err)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(base) + `\.pre-v([0-9]+)-([0-9]{8}T[0-9]{6}Z)$`)
	var out []Backup
	for _, e := range entries {
		m := re.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		v, err := strconv.Atoi(m[1])
		if err != nil {
			continue // too many digits: not one of ours
		}
		t, err := time.Parse(backupTime, m[2])
		if err != nil {
			continue
		}
		out = append(out, Backup{Path: filepath.Join(dir, e.Name()), Version: v, Taken: t})
	}
	slices.SortFunc(out, func(a, b Backup) int {
		if c := b.Taken.Compare(a.Taken); c != 0 {
			return c
		}
		return b.Version - a.Version
	})
	return out, nil
}

// pruneBackups removes all but the keep newest pre-upgrade backups of the
// database at path.
func pruneBackups(path string, keep int, log *slog.Logger) error {
	bs, err := Backups(path)
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range bs[min(keep, len(bs)):] {
		if err := os.Remove(b.Path); err != nil {
			errs = append(errs, fmt.Errorf("store: remove old backup: %w", err))
			continue
		}
		log.Info("removed an old pre-upgrade backup", "backup", b.Path)
	}
	return errors.Join(errs...)
}

// Restore replaces the database at path with a copy of the file backup: a
// pre-upgrade backup (Backups) or any other copy of the hub database, e.g.
// from sqlite3's .backup. The hub must be stopped: while another process
// has the database open Restore refuses with ErrInUse. Before anything
// changes the copy is checked (SQLite's quick_check, and a schema version
// from 1 to the one this build knows). The database it replaces, if any,
// is moved aside to path.replaced-YYYYMMDDTHHMMSSZ (now, in UTC) and
// returned as replaced ("" if there was none); version is the restored
// database's schema version.
func Restore(ctx context.Context, path, backup string, now time.Time) (version int, replaced string, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, "", err
	}
	return restore(ctx, path, backup, now, len(ms))
}

func restore(ctx context.Context, path, backup string, now time.Time, latest int) (version int, replaced string, err error) {
	tmp := path + ".restoring"
	if err := removeDB(tmp); err != nil {
		return 0, "", fmt.Errorf("store: restore %s: %w", backup, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, removeDB(tmp))
		}
	}()
	if err := copyFile(backup, tmp); err != nil {
		return 0, "", fmt.Errorf("store: restore %s: %w", backup, err)
	}
	version, err = checkCopy(ctx, tmp, latest)
	if err != nil {
		return 0, "", fmt.Errorf("store: restore %s: %w", backup, err)
	}
	if _, err := os.Stat(path); err == nil {
		replaced = fmt.Sprintf("%s.replaced-%s", path, now.UTC().Format(backupTime))
		if err := setAside(ctx, path, replaced); err != nil {
			return 0, "", fmt.Errorf("store: restore %s: %w", backup, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, "", fmt.Errorf("store: restore %s: %w", backup, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, "", fmt.Errorf("store: restore %s: %w", backup, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return 0, "", fmt.Errorf("store: restore %s: %w", backup, err)
	}
	return version, replaced, nil
}

// checkCopy checks that the database file at path is sound and has a
// schema version from 1 to latest, leaves it as one file (no -wal) and
// returns its version.
func checkCopy(ctx context.Context, path string, latest int) (version int, err error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return 0, fmt.Errorf("not a sound SQLite database: %w", err)
	}
	if check != "ok" {
		return 0, fmt.Errorf("not a sound SQLite database: quick_check: %s", check)
	}
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, fmt.Errorf("not a hub database: %w", err)
	}
	switch {
	case version < 1:
		return 0, errors.New("not a hub database: no schema version")
	case version > latest:
		return 0, schemaTooNewError{db: version, build: latest}
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode); err != nil {
		return 0, fmt.Errorf("journal mode: %w", err)
	}
	return version, nil
}

// setAside moves the database at path, which no other process may have
// open, to aside. Its write-ahead log is first folded into it, so aside is
// one complete file.
func setAside(ctx context.Context, path, aside string) (err error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		return err
	}
	var mode string
	err = db.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode)
	if cerr := db.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	var c interface{ Code() int }
	if errors.As(err, &c) && (c.Code()&0xff == sqliteBusy || c.Code()&0xff == sqliteLocked) {
		return fmt.Errorf("%s: %w (stop the hub first)", path, ErrInUse)
	}
	if err != nil {
		return fmt.Errorf("%s: %w (if it is damaged, move %s and its -wal and -shm files away by hand)", path, err, filepath.Base(path))
	}
	if err := os.Rename(path, aside); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// SQLite's primary result codes for "another connection holds the lock".
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// copyFile copies src to a new file dst (mode 0600), synced.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return errors.Join(err, out.Close())
	}
	if err := out.Sync(); err != nil {
		return errors.Join(err, out.Close())
	}
	return out.Close()
}

// syncFile sets the mode of the file at path and syncs it.
func syncFile(path string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	return f.Close()
}

// syncDir syncs a directory, making renames and removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// removeDB removes a database file and its -wal and -shm files.
func removeDB(path string) error {
	return errors.Join(removeIfExists(path), removeIfExists(path+"-wal"), removeIfExists(path+"-shm"))
}
