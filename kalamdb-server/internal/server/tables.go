package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
)

// openTables opens the table layer on the backend and wires it into the
// API options.
func (s *Server) openTables(ctx context.Context, opts *api.Options) error {
	db, err := tables.Open(ctx, s.backend, tables.Options{})
	if err != nil {
		return fmt.Errorf("opening the table layer: %w", err)
	}
	s.db = db
	opts.DB = db
	opts.EvictionInterval = time.Duration(s.cfg.Stream.EvictionIntervalSeconds) * time.Second
	opts.Defaults = api.Defaults{
		FlushRows:     int64(s.cfg.Flush.DefaultRows),
		FlushInterval: time.Duration(s.cfg.Flush.DefaultIntervalSeconds) * time.Second,
		StreamTTL:     time.Duration(s.cfg.Stream.DefaultTTLSeconds) * time.Second,
		StreamMaxRows: int64(s.cfg.Stream.DefaultMaxBufferRows),
	}
	opts.Stats = func(ctx context.Context, t *catalog.Table, _ auth.Principal) (api.TableStats, error) {
		n, err := s.bufferedRows(ctx, t)
		return api.TableStats{BufferedRows: n}, err
	}
	s.metrics.BufferedRows(s.totalBufferedRows)
	all, _ := db.Catalog().Tables("")
	s.log.Info("catalog open", "namespaces", len(db.Catalog().Namespaces()), "tables", len(all))
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
	it, err := s.backend.Scan(ctx, t.Partition(), store.ScanOptions{})
	if err != nil {
		if errors.Is(err, store.ErrPartitionNotFound) {
			return 0, nil // dropped meanwhile
		}
		return 0, err
	}
	var n int64
	for it.Next() {
		n++
	}
	return n, it.Close()
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

// flushOnShutdown flushes every table's buffer when flush.on_shutdown is
// set. Flushing to Parquet does not exist yet: the rows stay in the
// backend, which is closed cleanly right after.
func (s *Server) flushOnShutdown(_ context.Context) error { return nil }
