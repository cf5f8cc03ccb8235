package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

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
	dir, err := s.parquetDir(ctx, durable)
	if err != nil {
		return err
	}
	compact := s.cfg.Flush.CompactSegments
	if compact == 0 {
		compact = -1 // never
	}
	fopts := flush.Options{Dir: dir, CompactSegments: compact}
	if s.hooks.parquetFS != nil {
		fopts.FS = s.hooks.parquetFS(segment.DirFS(dir))
	}
	m, err := flush.Open(ctx, s.backend, fopts)
	if err != nil {
		return fmt.Errorf("opening the table layer (Parquet under %s): %w", dir, err)
	}
	s.flush, s.db, s.flushDir = m, m.DB(), dir
	if left := m.Leftovers(); len(left) > 0 {
		s.log.Warn("cold tier: files left by an interrupted flush could not be removed; no read sees them, and a later start removes them",
			"parquet_dir", dir, "files", len(left), "first", left[0])
	}
	s.cold = newColdTier(s.log, dir)
	s.metrics.ColdTier(s.cold.failingTables, s.cold.lastFailureTime)
	opts.Degraded = func() []string {
		if p := s.cold.problem(); p != "" {
			return []string{p}
		}
		return nil
	}
	opts.DB = s.db
	opts.EvictionInterval = time.Duration(s.cfg.Stream.EvictionIntervalSeconds) * time.Second
	opts.Defaults = api.Defaults{
		FlushRows:      int64(s.cfg.Flush.DefaultRows),
		FlushInterval:  time.Duration(s.cfg.Flush.DefaultIntervalSeconds) * time.Second,
		StreamTTL:      time.Duration(s.cfg.Stream.DefaultTTLSeconds) * time.Second,
		StreamMaxRows:  int64(s.cfg.Stream.DefaultMaxBufferRows),
		StreamMaxBytes: s.cfg.Stream.DefaultMaxBufferBytes,
	}
	opts.Stats = s.tableStats
	opts.DropTable = func(ctx context.Context, ns, name string) error {
		t, err := s.db.Catalog().Table(ns, name)
		if err != nil {
			return err
		}
		if err := m.DropTable(ctx, ns, name); err != nil {
			return err
		}
		s.cold.forget(t.ID)
		s.flushes.mu.Lock()
		delete(s.flushes.m, t.ID)
		s.flushes.mu.Unlock()
		return nil
	}
	opts.OnWrite = func(t *catalog.Table, n int) { s.flushState(t).writes.Add(int64(n)) }
	if err := s.seedFlushStates(ctx); err != nil {
		return err
	}
	opts.Flush = func(w http.ResponseWriter, r *http.Request, t *catalog.Table) error {
		res, err := s.flushTable(r.Context(), t, "manual")
		s.cold.record(t, "flush", err, time.Now())
		if err != nil {
			return err
		}
		files := res.Files
		if files == nil {
			files = []string{}
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"rows_flushed": res.Rows, "files": files})
		return nil
	}
	opts.Compact = func(w http.ResponseWriter, r *http.Request, t *catalog.Table) error {
		start := time.Now()
		res, err := s.flush.CompactAll(r.Context(), t.Namespace, t.Name)
		s.metrics.ObserveCompaction("manual", res.Merged, res.Dropped, time.Since(start), err)
		s.cold.record(t, "compaction", err, time.Now())
		if err != nil {
			return err
		}
		if res.Merged > 0 {
			s.log.Info("compacted (major)", "table", t.FullName(), "merged", res.Merged, "written", res.Written,
				"rows", res.Rows, "dropped", res.Dropped, "duration", time.Since(start))
		}
		files := res.Files
		if files == nil {
			files = []string{}
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"segments_merged": res.Merged, "segments_written": res.Written,
			"rows": res.Rows, "versions_dropped": res.Dropped, "files": files})
		return nil
	}
	s.metrics.BufferedRows(s.totalBufferedRows)
	all, _ := s.db.Catalog().Tables("")
	s.log.Info("tables open", "namespaces", len(s.db.Catalog().Namespaces()), "tables", len(all), "parquet_dir", dir)
	return nil
}

// flushState is what the scheduler knows of a table's buffer without
// reading it: how many row versions were written since the last flush (at
// least: an update of a row written since counts again, which can only make
// a flush come early) and when the last flush was.
type flushState struct {
	writes atomic.Int64
	mu     sync.Mutex
	last   time.Time
}

func (st *flushState) lastFlush() time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.last
}

// flushStates holds the flushState of every user and shared table, by id.
type flushStates struct {
	mu sync.Mutex
	m  map[uint64]*flushState
}

// flushState returns t's state, creating it (nothing written, last flush
// now) for a table not seen before.
func (s *Server) flushState(t *catalog.Table) *flushState {
	s.flushes.mu.Lock()
	defer s.flushes.mu.Unlock()
	if s.flushes.m == nil {
		s.flushes.m = map[uint64]*flushState{}
	}
	st := s.flushes.m[t.ID]
	if st == nil {
		st = &flushState{last: time.Now()}
		s.flushes.m[t.ID] = st
	}
	return st
}

// seedFlushStates counts, once at start, the versions each user and shared
// table has buffered (up to its row limit), so that the policies apply to
// rows written before a restart too.
func (s *Server) seedFlushStates(ctx context.Context) error {
	all, err := s.db.Catalog().Tables("")
	if err != nil {
		return err
	}
	for _, t := range all {
		if t.Type == catalog.StreamTable {
			continue
		}
		limit := 1
		if t.Flush.RowLimit > 0 {
			limit = int(min(t.Flush.RowLimit, 1<<30))
		}
		n, err := countKeys(ctx, s.backend, t.Partition(), nil, limit)
		if err != nil {
			return fmt.Errorf("counting the buffer of %s: %w", t.FullName(), err)
		}
		s.flushState(t).writes.Store(n)
	}
	return nil
}

// flushTable flushes one table and records the metrics.
func (s *Server) flushTable(ctx context.Context, t *catalog.Table, trigger string) (flush.Result, error) {
	st := s.flushState(t)
	written := st.writes.Load()
	start := time.Now()
	res, err := s.flush.Flush(ctx, t.Namespace, t.Name)
	d := time.Since(start)
	s.metrics.ObserveFlush(trigger, int(res.Rows), d, err)
	if err != nil {
		return res, err // the caller records it (coldTier.record), which logs it
	}
	st.writes.Add(-written) // writes during the flush still count
	st.mu.Lock()
	st.last = start
	st.mu.Unlock()
	if res.Rows > 0 {
		s.log.Info("flushed", "table", t.FullName(), "trigger", trigger, "rows", res.Rows, "files", len(res.Files), "kept", res.Kept, "duration", d)
	}
	return res, nil
}

// compactTable merges t's small segments when [flush] compact_segments
// says so (flush.Manager.CompactDue).
func (s *Server) compactTable(ctx context.Context, t *catalog.Table) error {
	start := time.Now()
	res, err := s.flush.CompactDue(ctx, t.Namespace, t.Name)
	s.metrics.ObserveCompaction("policy", res.Merged, res.Dropped, time.Since(start), err)
	if err != nil {
		return err
	}
	if res.Merged > 0 {
		s.log.Info("compacted", "table", t.FullName(), "merged", res.Merged, "written", res.Written,
			"rows", res.Rows, "dropped", res.Dropped, "duration", time.Since(start))
	}
	return nil
}

// due reports whether t's flush policy asks for a flush: its row limit of
// versions was written since the last flush, or its interval has passed
// since the last flush and something was written.
func (s *Server) due(t *catalog.Table) bool {
	st := s.flushState(t)
	w := st.writes.Load()
	if w <= 0 {
		return false
	}
	if t.Flush.RowLimit > 0 && w >= t.Flush.RowLimit {
		return true
	}
	return t.Flush.Interval > 0 && time.Since(st.lastFlush()) >= t.Flush.Interval
}

// runFlushPolicies runs a round of policyRound every interval until stop
// closes.
func (s *Server) runFlushPolicies(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		s.policyRound(stop, time.Now())
	}
}

// policyRound flushes each user and shared table whose flush policy is due
// (reading no buffer to decide: the API counts the writes, see
// flushState), then compacts it when due. A table whose last flush or
// compaction failed is retried, due or not, once its backoff allows
// (coldTier), and not before. A failure or a panic is recorded for the
// table and the round goes on; it stops early when stop closes.
func (s *Server) policyRound(stop <-chan struct{}, now time.Time) {
	err := guard.Run("server: flush policies", func() error {
		ts, err := s.db.Catalog().Tables("")
		if err != nil {
			return err
		}
		for _, t := range ts {
			select {
			case <-stop:
				return nil
			default:
			}
			if t.Type == catalog.StreamTable || !(s.cold.failing(t.ID) || s.due(t)) || !s.cold.ready(t.ID, now) {
				continue
			}
			op := "flush"
			err := guard.Run("server: policy flush of "+t.FullName(), func() error {
				if _, err := s.flushTable(context.Background(), t, "policy"); err != nil {
					return err
				}
				op = "compaction"
				return s.compactTable(context.Background(), t)
			})
			s.cold.record(t, op, err, now)
		}
		return nil
	})
	if err != nil {
		s.logError("flush scheduler round failed", err)
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

// startFlushPolicies starts the flush scheduler; Shutdown stops it.
func (s *Server) startFlushPolicies() {
	stop, done := make(chan struct{}), make(chan struct{})
	go s.runFlushPolicies(time.Second, stop, done)
	var once sync.Once
	s.stopPolicies = func() {
		once.Do(func() {
			close(stop)
			<-done
		})
	}
	s.stopBg = append(s.stopBg, s.stopPolicies)
}

// closeTables ends the table layer at shutdown: with flush.on_shutdown and
// a durable backend it flushes every user and shared table first (a
// non-durable backend's segments would go to a temporary folder removed
// right after: flushing them is work for nothing). Stream eviction stops. A
// failed final flush is logged and is no error of the shutdown: the rows
// it could not move stay in the storage backend, which is closed as usual,
// and the next start flushes them.
func (s *Server) closeTables(ctx context.Context) error {
	if s.cfg.Flush.OnShutdown && s.backend.Capabilities().Durable {
		start := time.Now()
		s.flush.Stop()
		res, err := s.flush.FlushAll(ctx)
		s.metrics.ObserveFlush("shutdown", int(res.Rows), time.Since(start), err)
		switch {
		case err != nil:
			s.logError("final flush failed: the rows not flushed stay buffered in the storage backend and are flushed after the next start",
				err, "parquet_dir", s.flushDir, "tables", res.Tables, "rows_flushed", res.Rows)
		case res.Rows > 0:
			s.log.Info("flushed at shutdown", "tables", res.Tables, "rows", res.Rows, "files", len(res.Files))
		}
	}
	return s.db.Close()
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
	n, err := countKeys(ctx, s.backend, t.Partition(), prefix, 0)
	if err != nil {
		return api.TableStats{}, err
	}
	segs, err := s.flush.Segments(t.Namespace, t.Name)
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

// countKeys counts the keys of partition p that start with prefix, up to
// limit when it is positive. A partition dropped meanwhile has none.
func countKeys(ctx context.Context, b store.StorageBackend, p store.Partition, prefix []byte, limit int) (int64, error) {
	it, err := b.Scan(ctx, p, store.ScanOptions{Prefix: prefix, Limit: limit})
	if err != nil {
		if errors.Is(err, store.ErrPartitionNotFound) {
			return 0, nil
		}
		return 0, err
	}
	var n int64
	for it.Next() {
		n++
	}
	if err := it.Close(); err != nil && !errors.Is(err, store.ErrPartitionNotFound) {
		return 0, err
	}
	return n, nil
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
	return countKeys(ctx, s.backend, t.Partition(), nil, 0)
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
