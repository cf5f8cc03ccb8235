package tables

import (
	"context"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// UserTableStore reads and writes the rows of one user table. Every row
// belongs to one user, and every call names the user: a call reaches that
// user's rows and no others, whatever bytes the user id holds.
//
// Get a UserTableStore from DB.User. It is safe for concurrent use.
type UserTableStore struct{ rt *rowTable }

// Table returns the table's definition.
func (s *UserTableStore) Table() *catalog.Table {
	defer s.rt.reading()()
	return s.rt.t
}

// Insert adds rows for user, all or none: each row is a value per column, in
// the table's column order (catalog.Table.ValuesFromMap builds one from a
// map). The rows get consecutive _seq values starting at the returned one,
// in the order given, and share one _updated.
//
// It fails with core.ErrDuplicateKey when a primary key is already present
// for user (or twice in rows), core.ErrInvalidRow (a *core.ColumnError)
// when a row does not fit the table, core.ErrInvalidArgument for a bad user
// id, and core.ErrTableNotFound when the table was dropped. Of two
// concurrent inserts of one key, exactly one succeeds.
func (s *UserTableStore) Insert(ctx context.Context, user string, rows ...[]row.Value) (int64, error) {
	defer s.rt.reading()()
	return s.rt.insert(ctx, user, rows)
}

// Get returns user's row with primary key pk, or core.ErrRowNotFound.
func (s *UserTableStore) Get(ctx context.Context, user string, pk row.Value) (row.Row, error) {
	defer s.rt.reading()()
	return s.rt.get(ctx, user, pk)
}

// Update sets the columns in set on user's row pk and returns the new
// version (with a new _seq and _updated). It fails with core.ErrRowNotFound
// when the row is absent or deleted, and core.ErrInvalidRow for a bad
// column name or value, or an attempt to change the primary key.
func (s *UserTableStore) Update(ctx context.Context, user string, pk row.Value, set map[string]row.Value) (row.Row, error) {
	defer s.rt.reading()()
	return s.rt.update(ctx, user, pk, set)
}

// Delete soft-deletes user's row pk: reads stop seeing it at once, and a
// tombstone (the last values with _deleted set and a new _seq) stays in the
// buffer until a flush has recorded the deletion. It fails with
// core.ErrRowNotFound when the row is absent or already deleted.
func (s *UserTableStore) Delete(ctx context.Context, user string, pk row.Value) error {
	defer s.rt.reading()()
	return s.rt.delete(ctx, user, pk)
}

// Scan returns a page of user's live rows in primary-key order.
func (s *UserTableStore) Scan(ctx context.Context, user string, opts ScanOptions) (Page, error) {
	defer s.rt.reading()()
	return s.rt.scan(ctx, user, opts)
}

// Count returns the number of user's live rows.
func (s *UserTableStore) Count(ctx context.Context, user string) (int64, error) {
	defer s.rt.reading()()
	return s.rt.count(ctx, user)
}

// Buffer returns the maintenance view of the table's hot buffer.
func (s *UserTableStore) Buffer() *Buffer { return &Buffer{rt: s.rt} }
