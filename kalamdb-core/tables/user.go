package tables

import (
	"context"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// UserTableStore reads and writes the rows of one user table. Every row
// belongs to one user, and every call names the user: a call reaches that
// user's rows and no others, whatever bytes the user id holds. Each call is
// the RowStore call of that user (see DB.RowStore, which binds the user
// once for a whole request).
//
// Get a UserTableStore from DB.User. It is safe for concurrent use.
type UserTableStore struct{ rt *rowTable }

// as returns the store bound to user.
func (s *UserTableStore) as(user string) *RowStore { return &RowStore{rt: s.rt, user: user} }

// Table returns the table's definition.
func (s *UserTableStore) Table() *catalog.Table { return s.as("").Table() }

// Insert adds rows for user, all or none; see RowStore.Insert.
func (s *UserTableStore) Insert(ctx context.Context, user string, rows ...[]row.Value) (int64, error) {
	return s.as(user).Insert(ctx, rows...)
}

// Get returns user's row with primary key pk, or core.ErrRowNotFound.
func (s *UserTableStore) Get(ctx context.Context, user string, pk row.Value) (row.Row, error) {
	return s.as(user).Get(ctx, pk)
}

// Update sets the columns in set on user's row pk and returns the new
// version; see RowStore.Update.
func (s *UserTableStore) Update(ctx context.Context, user string, pk row.Value, set map[string]row.Value) (row.Row, error) {
	return s.as(user).Update(ctx, pk, set)
}

// Delete soft-deletes user's row pk; see RowStore.Delete.
func (s *UserTableStore) Delete(ctx context.Context, user string, pk row.Value) error {
	return s.as(user).Delete(ctx, pk)
}

// Scan returns a page of user's live rows in primary-key order.
func (s *UserTableStore) Scan(ctx context.Context, user string, opts ScanOptions) (Page, error) {
	return s.as(user).Scan(ctx, opts)
}

// Count returns the number of user's live rows.
func (s *UserTableStore) Count(ctx context.Context, user string) (int64, error) {
	return s.as(user).Count(ctx)
}

// Buffer returns the maintenance view of the table's hot buffer.
func (s *UserTableStore) Buffer() *Buffer { return &Buffer{rt: s.rt} }
