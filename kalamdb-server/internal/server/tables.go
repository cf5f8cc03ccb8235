package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
)

// openTables opens the table layer with its Parquet cold tier on the
// backend and wires it into the API options.
func (s *Server) openTables(ctx context.Context, opts *api.Options, durable bool) error {
	compact := s.cfg.Flush.CompactSegments
	if compact == 0 { // "never" in the configuration, "default" in Options
		compact = flush.NeverCompact
	}
	grace := s.cfg.GCGrace()
	if grace == 0 { // "at once" in the configuration, "default" in Options
		grace = -1
	}
	fopts := flush.Options{CompactSegments: compact, OnEvent: s.onEvent, GCGrace: grace}
	var dir string
	if seg := s.cfg.Segments(); seg.Remote() && durable {
		st, err := s.openObjectStore(ctx, seg)
		if err != nil {
			return err
		}
		fopts.Store, dir = st, s.flushDir
	} else {
		var err error
		if dir, err = s.parquetDir(ctx, durable); err != nil {
			return err
		}
		fopts.Dir = dir
		if s.hooks.parquetFS != nil {
			fopts.FS = s.hooks.parquetFS(segment.DirFS(dir))
		}
	}
	if fopts.Store == nil {
		fsys := fopts.FS
		if fsys == nil {
			fsys = segment.DirFS(dir)
		}
		fopts.Store = segment.FSStore(fsys, dir)
	}
	s.segHold = backup.NewSegmentHold(fopts.Store)
	s.segHold.OnError = func(name string, err error) {
		s.log.Warn("cold tier: removing a segment after an online backup failed; a later start removes it as garbage", "segment", name, "err", err)
	}
	fopts.Store = s.segHold
	if s.hooks.clock != nil {
		fopts.Tables.Clock = s.hooks.clock
	}
	fopts.Tables.CatalogRefreshed = s.catalogRefreshLog()
	fopts.Tables.LeaseTTL = s.cfg.LeaseTTL()
	m, err := flush.Open(ctx, s.backend, fopts)
	if err != nil {
		return fmt.Errorf("opening the table layer (Parquet under %s): %w", dir, err)
	}
	s.flush, s.db, s.flushDir = m, m.DB(), dir
	if n := m.Young(); n > 0 {
		s.log.Info("cold tier: unrecorded segment objects younger than storage.segment_gc_grace are kept (uploads that may be about to commit); a later start removes those that stay unrecorded",
			"segments", dir, "objects", n, "grace", grace)
	}
	if left := m.Leftovers(); len(left) > 0 {
		s.log.Warn("cold tier: files left by an interrupted flush could not be removed; no read sees them, and a later start removes them",
			"parquet_dir", dir, "files", len(left), "first", left[0])
	}
	s.metrics.ColdTier(func() int { return len(m.Health().Failing) }, func() time.Time { return m.Health().LastFailure })
	s.metrics.SegmentCache(m.CacheStats)
	opts.Degraded = func() []string {
		var problems []string
		if p := s.objectStoreProblem(); p != "" {
			problems = append(problems, p)
		}
		if p := s.coldProblem(); p != "" {
			problems = append(problems, p)
		}
		return problems
	}
	opts.DB = s.db
	opts.DatabaseID = s.db.Catalog().DatabaseID()
	opts.Cold = m
	opts.Backup = s.Backup
	opts.EvictionInterval = time.Duration(s.cfg.Stream.EvictionIntervalSeconds) * time.Second
	opts.Defaults = api.Defaults{
		FlushRows:      int64(s.cfg.Flush.DefaultRows),
		FlushInterval:  time.Duration(s.cfg.Flush.DefaultIntervalSeconds) * time.Second,
		StreamTTL:      time.Duration(s.cfg.Stream.DefaultTTLSeconds) * time.Second,
		StreamMaxRows:  int64(s.cfg.Stream.DefaultMaxBufferRows),
		StreamMaxBytes: s.cfg.Stream.DefaultMaxBufferBytes,
	}
	opts.Stats = s.tableStats
	s.metrics.BufferedRows(s.totalBufferedRows)
	all, _ := s.db.Catalog().Tables("")
	s.log.Info("tables open", "database_id", opts.DatabaseID, "namespaces", len(s.db.Catalog().Namespaces()), "tables", len(all), "parquet_dir", dir)
	return nil
}

// catalogRefreshLog returns the report of the background refreshes of the
// catalog (on a backend several servers share): a failure is logged when
// refreshes start failing and the recovery when they succeed again, not
// every second; a change other servers made is logged at debug level.
func (s *Server) catalogRefreshLog() func(changed bool, err error) {
	var failing atomic.Bool
	return func(changed bool, err error) {
		switch {
		case err != nil:
			if !failing.Swap(true) {
				s.log.Warn("reading the catalog again failed: changes other servers make are seen when a request names them, or once the backend answers",
					"err", err)
			}
			return
		case failing.Swap(false):
			s.log.Info("reading the catalog again works again")
		}
		if changed {
			s.log.Debug("catalog changed by another server")
		}
	}
}

// logError logs err at error level, with the stack when it is a panic.
func (s *Server) logError(msg string, err error, attrs ...any) {
	attrs = append(attrs, "err", err)
	if stack := guard.Stack(err); stack != nil {
		attrs = append(attrs, "stack", string(stack))
	}
	s.log.Error(msg, attrs...)
}

// closeTables ends the table layer at shutdown: with flush.on_shutdown and
// a durable backend it flushes every user and shared table first (a
// non-durable backend's segments would go to a temporary folder removed
// right after: flushing them is work for nothing). Stream eviction stops. A
// failed final flush is logged and is no error of the shutdown: the rows
// it could not move stay in the storage backend, which is closed as usual,
// and the next start flushes them.
func (s *Server) closeTables(ctx context.Context) error {
	if s.bucket != nil {
		defer s.bucket.Close()
	}
	if !s.cfg.Flush.OnShutdown || !s.backend.Capabilities().Durable {
		s.flush.Stop()
		return s.db.Close()
	}
	res, err := s.flush.Close(ctx)
	switch {
	case err != nil:
		s.logError("final flush failed: the rows not flushed stay buffered in the storage backend and are flushed after the next start",
			err, "parquet_dir", s.flushDir, "tables", res.Tables, "rows_flushed", res.Rows)
	case res.Rows > 0:
		s.log.Info("flushed at shutdown", "tables", res.Tables, "rows", res.Rows, "files", len(res.Files))
	}
	return nil
}

// startStreams starts the eviction of every stream table.
func (s *Server) startStreams(ctx context.Context) error {
	all, err := s.db.Catalog().Tables("")
	if err != nil {
		return err
	}
	for _, t := range all {
		if t.Type != catalog.StreamTable {
			continue
		}
		st, err := s.db.Stream(ctx, t.Namespace, t.Name)
		if err != nil {
			return fmt.Errorf("opening stream table %s: %w", t.FullName(), err)
		}
		s.api.StartEviction(st)
	}
	return nil
}

// tableStats reports what GET …/tables/{t} shows of t's volume, as p may see
// it: of a user table, p's own buffered versions and segments (another
// user's volume is not p's business); of a shared table, all of them; of a
// stream, its stored events. Counting reads the buffer, so the figures are
// kept for statsTTL and computed once for the callers that ask meanwhile:
// a client asking in a loop costs one count a second.
func (s *Server) tableStats(ctx context.Context, t *catalog.Table, p auth.Principal) (api.TableStats, error) {
	user := ""
	if t.Type == catalog.UserTable {
		user = p.ID
	}
	return s.stats.get(statsKey{table: t.ID, user: user}, func() (api.TableStats, error) {
		return s.countStats(ctx, t, user)
	})
}

// countStats counts what tableStats reports, for user (a user table) or
// for everyone ("").
func (s *Server) countStats(ctx context.Context, t *catalog.Table, user string) (api.TableStats, error) {
	if t.Type == catalog.StreamTable {
		n, err := s.bufferedRows(ctx, t)
		return api.TableStats{BufferedRows: n}, err
	}
	var prefix []byte
	if user != "" {
		us, err := s.db.User(ctx, t.Namespace, t.Name)
		if err != nil {
			return api.TableStats{}, err
		}
		if prefix, err = us.Buffer().Prefix(user); err != nil {
			return api.TableStats{}, err
		}
	}
	n, err := countKeys(ctx, s.backend, t.Partition(), prefix)
	if err != nil {
		return api.TableStats{}, err
	}
	segs, err := s.flush.Segments(ctx, t.Namespace, t.Name)
	if err != nil {
		return api.TableStats{}, err
	}
	st := api.TableStats{BufferedRows: n}
	for _, seg := range segs {
		if user == "" || seg.User == user {
			st.Segments++
		}
	}
	return st, nil
}

// statsTTL is how long table figures are reused.
const statsTTL = time.Second

type statsKey struct {
	table uint64
	user  string
}

// statsCache keeps table figures for a while, and has one caller compute
// them while the others that ask for the same ones wait.
type statsCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[statsKey]*statsEntry
}

type statsEntry struct {
	done chan struct{} // closed once st and err are set
	at   time.Time
	st   api.TableStats
	err  error
}

// get returns the figures of key: kept ones younger than the TTL, the ones
// being computed, or new ones from compute. Errors are not kept.
func (c *statsCache) get(key statsKey, compute func() (api.TableStats, error)) (api.TableStats, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[statsKey]*statsEntry{}
	}
	e := c.m[key]
	if e != nil {
		select {
		case <-e.done:
			if time.Since(e.at) >= c.ttl {
				e = nil
			}
		default: // being computed: wait for it
		}
	}
	if e != nil {
		c.mu.Unlock()
		<-e.done
		return e.st, e.err
	}
	if len(c.m) >= 4096 {
		for k, old := range c.m {
			select {
			case <-old.done:
				if time.Since(old.at) >= c.ttl {
					delete(c.m, k)
				}
			default:
			}
		}
	}
	e = &statsEntry{done: make(chan struct{})}
	c.m[key] = e
	c.mu.Unlock()

	e.st, e.err = compute()
	e.at = time.Now()
	if e.err != nil {
		c.mu.Lock()
		if c.m[key] == e {
			delete(c.m, key)
		}
		c.mu.Unlock()
	}
	close(e.done)
	return e.st, e.err
}

// countKeys counts the keys of partition p that start with prefix (store.Count);
// a partition dropped meanwhile has none.
func countKeys(ctx context.Context, b store.StorageBackend, p store.Partition, prefix []byte) (int64, error) {
	n, err := store.Count(ctx, b, p, store.ScanOptions{Prefix: prefix})
	if errors.Is(err, store.ErrPartitionNotFound) {
		return 0, nil
	}
	return n, err
}

// bufferedRows counts the rows t holds in the storage backend: every
// buffered version of a user or shared table (tombstones included, until a
// flush removes them), the stored events of a stream.
func (s *Server) bufferedRows(ctx context.Context, t *catalog.Table) (int64, error) {
	if t.Type == catalog.StreamTable {
		st, err := s.db.Stream(ctx, t.Namespace, t.Name)
		if err != nil {
			return 0, err
		}
		return st.Len(), nil
	}
	return countKeys(ctx, s.backend, t.Partition(), nil)
}

// bufferedCache keeps the last total of buffered rows, so that scrapes do
// not scan every table each time.
type bufferedCache struct {
	mu    sync.Mutex
	at    time.Time
	total float64
}

// bufferedCacheTTL is how long a total of buffered rows is reused.
const bufferedCacheTTL = 15 * time.Second

// totalBufferedRows is the kalamdb_buffered_rows gauge.
func (s *Server) totalBufferedRows() float64 {
	s.buffered.mu.Lock()
	defer s.buffered.mu.Unlock()
	if time.Since(s.buffered.at) < bufferedCacheTTL {
		return s.buffered.total
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := s.db.Catalog().Tables("")
	if err != nil {
		return s.buffered.total
	}
	var total int64
	for _, t := range all {
		n, err := s.bufferedRows(ctx, t)
		if err != nil {
			s.log.Debug("counting buffered rows", "table", t.FullName(), "err", err)
			continue
		}
		total += n
	}
	s.buffered.at, s.buffered.total = time.Now(), float64(total)
	return s.buffered.total
}

// removeTempParquet removes the throw-away Parquet directory of a
// non-durable backend.
func (s *Server) removeTempParquet() {
	if s.tempParquet != "" {
		if err := os.RemoveAll(s.tempParquet); err != nil {
			s.log.Warn("removing the temporary Parquet directory", "dir", s.tempParquet, "err", err)
		}
	}
}
