package tables

import (
	"context"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// SharedTableStore reads and writes the rows of one shared table: the
// UserTableStore API without the user, each call the RowStore call of the
// table. Get one from DB.Shared. It is safe for concurrent use.
type SharedTableStore struct{ rows RowStore }

// Table returns the table's definition.
func (s *SharedTableStore) Table() *catalog.Table { return s.rows.Table() }

// Insert adds rows, all or none; see RowStore.Insert.
func (s *SharedTableStore) Insert(ctx context.Context, rows ...[]row.Value) (int64, error) {
	return s.rows.Insert(ctx, rows...)
}

// Get returns the row with primary key pk, or core.ErrRowNotFound.
func (s *SharedTableStore) Get(ctx context.Context, pk row.Value) (row.Row, error) {
	return s.rows.Get(ctx, pk)
}

// Update sets the columns in set on row pk and returns the new version; see
// RowStore.Update.
func (s *SharedTableStore) Update(ctx context.Context, pk row.Value, set map[string]row.Value) (row.Row, error) {
	return s.rows.Update(ctx, pk, set)
}

// Delete soft-deletes row pk; see RowStore.Delete.
func (s *SharedTableStore) Delete(ctx context.Context, pk row.Value) error {
	return s.rows.Delete(ctx, pk)
}

// Scan returns a page of live rows in primary-key order.
func (s *SharedTableStore) Scan(ctx context.Context, opts ScanOptions) (Page, error) {
	return s.rows.Scan(ctx, opts)
}

// Count returns the number of live rows.
func (s *SharedTableStore) Count(ctx context.Context) (int64, error) {
	return s.rows.Count(ctx)
}

// Buffer returns the maintenance view of the table's hot buffer.
func (s *SharedTableStore) Buffer() *Buffer { return &Buffer{rt: s.rows.rt} }
