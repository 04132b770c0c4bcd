package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/store"
)

// dbBackups lists the pre-upgrade backups of the database in dataDir
// ("hub db-backups").
func dbBackups(fs *flag.FlagSet, args []string, dataDir *string, stdout io.Writer) error {
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	bs, err := store.Backups(filepath.Join(*dataDir, hub.DBFile))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKUP\tSCHEMA\tTAKEN")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\tv%d\t%s\n", b.Path, b.Version, b.Taken.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// restoreDB puts a backup in place of the database in dataDir ("hub
// restore-db BACKUP"); the hub must be stopped.
func restoreDB(ctx context.Context, fs *flag.FlagSet, args []string, dataDir *string, stdout io.Writer) error {
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	path := filepath.Join(*dataDir, hub.DBFile)
	v, replaced, err := store.Restore(ctx, path, fs.Arg(0), time.Now())
	if err != nil {
		return fmt.Errorf("restore-db: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s from %s (schema v%d)\n", path, fs.Arg(0), v)
	if replaced != "" {
		fmt.Fprintf(stdout, "the database it replaced is now %s\n", replaced)
	}
	return nil
}
