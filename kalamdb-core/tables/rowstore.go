package tables

import (
	"context"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// RowStore reads and writes the rows of one user or shared table as one
// caller sees them: for a user table, the rows of the user it is bound to
// and no others, whatever bytes the user id holds; for a shared table,
// every row. Get one from DB.RowStore, once per request: it stays bound to
// the table it was opened on, so a table dropped and re-created under the
// same name is never mixed with the old one.
//
// UserTableStore and SharedTableStore are the same operations with the
// table type known in advance; each of their calls goes through a
// RowStore. A RowStore is safe for concurrent use.
type RowStore struct {
	rt *rowTable
	// user is the caller of a user table; "" for a shared table.
	user string
}

// Table returns the table's definition.
func (s *RowStore) Table() *catalog.Table {
	defer s.rt.reading()()
	return s.rt.t
}

// User returns the user the store is bound to: "" for a shared table.
func (s *RowStore) User() string { return s.user }

// Insert adds rows, all or none: each row is a value per column, in the
// table's column order (catalog.Table.ValuesFromMap builds one from a
// map). The rows get consecutive _seq values starting at the returned one,
// in the order given, and share one _updated.
//
// It fails with core.ErrDuplicateKey when a primary key is already present
// (for the user, in a user table), or twice in rows; core.ErrInvalidRow (a
// *core.ColumnError) when a row does not fit the table;
// core.ErrInvalidArgument for a bad user id or no rows; and
// core.ErrTableNotFound when the table was dropped. Of two concurrent
// inserts of one key, exactly one succeeds.
func (s *RowStore) Insert(ctx context.Context, rows ...[]row.Value) (int64, error) {
	defer s.rt.reading()()
	return s.rt.insert(ctx, s.user, rows)
}

// Get returns the row with primary key pk, or core.ErrRowNotFound.
func (s *RowStore) Get(ctx context.Context, pk row.Value) (row.Row, error) {
	defer s.rt.reading()()
	return s.rt.get(ctx, s.user, pk)
}

// Update sets the columns in set on row pk and returns the new version
// (with a new _seq and _updated). It fails with core.ErrRowNotFound when
// the row is absent or deleted, and core.ErrInvalidRow for a bad column
// name or value, or an attempt to change the primary key.
func (s *RowStore) Update(ctx context.Context, pk row.Value, set map[string]row.Value) (row.Row, error) {
	defer s.rt.reading()()
	return s.rt.update(ctx, s.user, pk, set)
}

// Delete soft-deletes row pk: reads stop seeing it at once, and a tombstone
// (the last values with _deleted set and a new _seq) stays in the buffer
// until a flush has recorded the deletion. It fails with
// core.ErrRowNotFound when the row is absent or already deleted.
func (s *RowStore) Delete(ctx context.Context, pk row.Value) error {
	defer s.rt.reading()()
	return s.rt.delete(ctx, s.user, pk)
}

// Scan returns a page of live rows in primary-key order.
func (s *RowStore) Scan(ctx context.Context, opts ScanOptions) (Page, error) {
	defer s.rt.reading()()
	return s.rt.scan(ctx, s.user, opts)
}

// Count returns the number of live rows.
func (s *RowStore) Count(ctx context.Context) (int64, error) {
	defer s.rt.reading()()
	return s.rt.count(ctx, s.user)
}
