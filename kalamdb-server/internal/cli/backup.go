package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/server"
)

// The commands that copy a database: backup, restore and migrate
// (docs/backup.md). They open the storage backend themselves, so the
// database is stopped (an embedded engine in use is refused by the
// engine).

func newBackup(env Env) *cobra.Command {
	var o overrides
	var to, serverURL, tokenFile string
	cmd := &cobra.Command{
		Use:   "backup --to DEST",
		Short: "Back up a stopped database to a directory, a .tar.gz file or an object-store URL",
		Long: `Back up the database of the configuration (stopped) to DEST: a directory
(created, or empty), a new .tar.gz file, or an object-store URL of the forms
storage.segments_url takes (s3://bucket?prefix=…, gs://…, azblob://…,
file:///dir). The backup holds every partition of the storage backend and
every segment its manifests record, with an index of digests written last
(docs/backup.md).

With --server URL the running server takes the backup (online, writes paused
only while it opens one snapshot of every partition) and writes it to DEST as
it sees it; the token of an admin comes from --token-file or $KALAMDB_TOKEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usageError{errors.New("backup needs --to DEST")}
			}
			ctx, stop := signalContext()
			defer stop()
			if serverURL != "" {
				return onlineBackup(ctx, env, serverURL, tokenFile, to)
			}
			st, log, err := o.openStorage(ctx, cmd, env)
			if err != nil {
				return err
			}
			defer st.Close()
			segs, err := st.Segments(ctx, false)
			if err != nil {
				return err
			}
			log.Info("backup started", "from", st.Where(), "to", to)
			start := time.Now()
			report, done := progress(env, log)
			idx, err := backup.Backup(ctx, backup.Source{Backend: st.Backend, Name: st.Name, Segments: segs}, to, backup.Options{Progress: report, ObjectStores: server.ObjectStores})
			done()
			if err != nil {
				return err
			}
			keys, bytes := idx.Totals()
			fmt.Fprintf(env.Stdout, "backed up %d partitions (%d keys) and %d segments, %s, to %s in %s\n",
				len(idx.Partitions), keys, len(idx.Segments), sizeString(bytes), to, time.Since(start).Round(time.Millisecond))
			printTables(env.Stdout, idx)
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "where to write the backup: a directory, a .tar.gz file or an object-store URL")
	cmd.Flags().StringVar(&serverURL, "server", "", "back up online through the running server at this URL (POST /v1/admin/backup); DEST is then as the server sees it")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "with --server: the file holding an admin's token (default $"+envToken+")")
	return cmd
}

// envToken is the environment variable of the admin token of an online
// backup.
const envToken = "KALAMDB_TOKEN"

// onlineBackup asks the server at base to back its database up to dest.
func onlineBackup(ctx context.Context, env Env, base, tokenFile, dest string) error {
	token := ""
	for _, kv := range env.Environ {
		if v, ok := strings.CutPrefix(kv, envToken+"="); ok {
			token = v
		}
	}
	if tokenFile != "" {
		data, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	if token == "" {
		return usageError{fmt.Errorf("backup --server needs an admin's token: --token-file FILE or $%s", envToken)}
	}
	body, err := json.Marshal(map[string]string{"to": dest})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/v1/admin/backup", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("--server %q: %w", base, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("online backup through %s: %w", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("online backup through %s: reading the answer: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("online backup through %s: %s: %s", base, resp.Status, strings.TrimSpace(string(data)))
	}
	var res struct {
		Partitions  int                 `json:"partitions"`
		Keys        int64               `json:"keys"`
		Segments    int                 `json:"segments"`
		Bytes       int64               `json:"bytes"`
		Consistency string              `json:"consistency"`
		Tables      []backup.TableCount `json:"tables"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("online backup through %s: the answer is not understood: %w", base, err)
	}
	fmt.Fprintf(env.Stdout, "backed up online %d partitions (%d keys) and %d segments, %s, to %s in %s (%s)\n",
		res.Partitions, res.Keys, res.Segments, sizeString(res.Bytes), dest, time.Since(start).Round(time.Millisecond), res.Consistency)
	printTables(env.Stdout, &backup.Index{Tables: res.Tables})
	return nil
}

func newRestore(env Env) *cobra.Command {
	var o overrides
	var from string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --from SRC",
		Short: "Restore a backup into the (empty, stopped) database of the configuration, of any backend",
		Long: `Restore the backup at SRC into the database of the configuration, which
may use any storage backend. The backup is checked whole first (every
record and digest), and nothing is written from a damaged one. A target
that holds any key is refused, with what it holds, unless --force, which
replaces everything. The restore ends with a verification: every key and
value compared with the backup, every segment's digest checked; the counts
per table are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageError{errors.New("restore needs --from SRC")}
			}
			ctx, stop := signalContext()
			defer stop()
			st, log, err := o.openStorage(ctx, cmd, env)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := durableTarget(st); err != nil {
				return err
			}
			log.Info("restore started", "from", from, "to", st.Where())
			start := time.Now()
			report, done := progress(env, log)
			rep, err := backup.Restore(ctx, from, target(st), backup.Options{Force: force, Progress: report, ObjectStores: server.ObjectStores})
			done()
			if err != nil {
				return err
			}
			printReport(env.Stdout, rep, "restored", time.Since(start))
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "the backup: a directory, a .tar.gz file or an object-store URL")
	cmd.Flags().BoolVar(&force, "force", false, "replace whatever the target database holds")
	return cmd
}

func newMigrate(env Env) *cobra.Command {
	var from, to, tempDir string
	var force bool
	cmd := &cobra.Command{
		Use:   "migrate --from OLD.toml --to NEW.toml",
		Short: "Copy the database of one configuration into another (any backends), then verify it",
		Long: `Copy the (stopped) database of the configuration OLD.toml into the database
of NEW.toml, whatever their storage backends: a backup into a temporary
directory (--temp-dir), a restore of it into the target, and the restore's
verification; the temporary backup is removed. The target must be empty
unless --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageError{errors.New("migrate needs --from OLD.toml and --to NEW.toml")}
			}
			ctx, stop := signalContext()
			defer stop()
			oldO, newO := overrides{configPath: from}, overrides{configPath: to}
			src, _, err := oldO.openStorage(ctx, cmd, env)
			if err != nil {
				return fmt.Errorf("--from %s: %w", from, err)
			}
			defer src.Close()
			dst, log, err := newO.openStorage(ctx, cmd, env)
			if err != nil {
				return fmt.Errorf("--to %s: %w", to, err)
			}
			defer dst.Close()
			if err := durableTarget(dst); err != nil {
				return err
			}
			segs, err := src.Segments(ctx, false)
			if err != nil {
				return err
			}
			log.Info("migration started", "from", src.Where(), "to", dst.Where())
			start := time.Now()
			report, done := progress(env, log)
			rep, err := backup.Migrate(ctx, backup.Source{Backend: src.Backend, Name: src.Name, Segments: segs}, target(dst),
				backup.Options{Force: force, TempDir: tempDir, Progress: report})
			done()
			if err != nil {
				return err
			}
			printReport(env.Stdout, rep, "migrated", time.Since(start))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the configuration of the database to copy")
	cmd.Flags().StringVar(&to, "to", "", "the configuration of the database to copy into")
	cmd.Flags().StringVar(&tempDir, "temp-dir", "", "where the intermediate backup is kept (default: the system's temporary directory)")
	cmd.Flags().BoolVar(&force, "force", false, "replace whatever the target database holds")
	return cmd
}

// openStorage loads the configuration and opens its database, with the
// logger the configuration asks for.
func (o *overrides) openStorage(ctx context.Context, cmd *cobra.Command, env Env) (*server.Storage, *slog.Logger, error) {
	cfg, _, _, err := o.load(cmd, env)
	if err != nil {
		return nil, nil, err
	}
	log, _ := server.NewLogger(cfg.Log, env.Stderr)
	st, err := server.OpenStorage(ctx, cfg, env.backends())
	if err != nil {
		return nil, nil, err
	}
	return st, log, nil
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// durableTarget refuses a restore into a backend that keeps nothing.
func durableTarget(st *server.Storage) error {
	if !st.Backend.Capabilities().Durable {
		return fmt.Errorf("storage backend %q is not durable: what a restore wrote into it would be gone when the command ends; restore into a durable backend", st.Name)
	}
	return nil
}

// target is the backup.Target of st: its segments go where the restored
// instance id puts them.
func target(st *server.Storage) backup.Target {
	return backup.Target{Backend: st.Backend, Segments: func(ctx context.Context, _ store.StorageBackend) (segment.Store, error) {
		segs, err := st.Segments(ctx, false)
		if err == nil && segs == nil {
			err = errors.New("the backup holds segments but no database id (in partition server:meta or the catalog): it is not the backup of a server's database, and its segments have no place")
		}
		return segs, err
	}}
}

// progress reports the progress of a command: a bar redrawn in place when
// stderr is a terminal, log lines otherwise. done ends the bar's line.
func progress(env Env, log *slog.Logger) (report func(backup.Progress), done func()) {
	if f, ok := env.Stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return progressBar(env.Stderr)
		}
	}
	return progressLog(log), func() {}
}

// progressBar draws one line per phase on w, redrawn in place (a carriage
// return), at most ten times a second; done ends the last line.
func progressBar(w io.Writer) (report func(backup.Progress), done func()) {
	var phase string
	var last time.Time
	report = func(p backup.Progress) {
		if p.Phase == phase && time.Since(last) < 100*time.Millisecond {
			return
		}
		if phase != "" && p.Phase != phase {
			fmt.Fprintln(w)
		}
		phase, last = p.Phase, time.Now()
		fmt.Fprintf(w, "\r%s", barLine(p, time.Since(p.Started)))
	}
	done = func() {
		if phase != "" {
			fmt.Fprintln(w)
		}
	}
	return report, done
}

// barLine is the text of the progress bar of p after elapsed.
func barLine(p backup.Progress, elapsed time.Duration) string {
	const width = 30
	if p.TotalBytes <= 0 {
		return fmt.Sprintf("%-8s %d keys, %s, %s   ", p.Phase, p.Keys, sizeString(p.Bytes), elapsed.Round(time.Second))
	}
	done := min(float64(p.Bytes)/float64(p.TotalBytes), 1)
	n := int(done * width)
	eta := "?"
	if done > 0.01 {
		eta = time.Duration(float64(elapsed) * (1 - done) / done).Round(time.Second).String()
	}
	return fmt.Sprintf("%-8s %3d%% [%s%s] %d/%d keys, %s of %s, eta %s   ", p.Phase, int(100*done),
		strings.Repeat("=", n), strings.Repeat(" ", width-n), p.Keys, p.TotalKeys, sizeString(p.Bytes), sizeString(p.TotalBytes), eta)
}

// progressLog logs the progress of a phase at its start and end, and
// every few seconds between, with an estimate of the time left when the
// totals are known.
func progressLog(log *slog.Logger) func(backup.Progress) {
	var phase string
	var last time.Time
	return func(p backup.Progress) {
		if p.Phase == phase && time.Since(last) < 3*time.Second {
			return
		}
		phase, last = p.Phase, time.Now()
		elapsed := time.Since(p.Started)
		attrs := []any{"phase", p.Phase, "file", p.File, "keys", p.Keys, "bytes", p.Bytes, "elapsed", elapsed.Round(time.Millisecond)}
		if p.TotalBytes > 0 {
			done := float64(p.Bytes) / float64(p.TotalBytes)
			attrs = append(attrs, "total_keys", p.TotalKeys, "total_bytes", p.TotalBytes, "percent", int(100*done))
			if done > 0.01 {
				attrs = append(attrs, "eta", time.Duration(float64(elapsed)*(1-done)/done).Round(time.Second))
			}
		}
		log.Info("progress", attrs...)
	}
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func printReport(w io.Writer, rep *backup.Report, verb string, took time.Duration) {
	fmt.Fprintf(w, "%s %d partitions (%d keys) and %d segments, %s, in %s; verified: every key and value compared, every segment's SHA-256 checked\n",
		verb, rep.Partitions, rep.Keys, rep.Segments, sizeString(rep.Bytes), took.Round(time.Millisecond))
	printTables(w, rep.Index)
}

// printTables prints the counts per table of a backup.
func printTables(w io.Writer, idx *backup.Index) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tBUFFERED\tSEGMENTS\tSEGMENT_ROWS")
	for _, t := range idx.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", t.Table, t.Buffered, t.Segments, t.SegmentRows)
	}
	_ = tw.Flush()
}
