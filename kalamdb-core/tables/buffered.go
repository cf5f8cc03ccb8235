package tables

import (
	"context"
	"slices"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// Buffered calls fn with every version the buffer holds of the store's rows
// (the user's of a user table), tombstones included (r.Deleted, with the
// row's last values), in primary-key order: one version per key, the
// newest written. It starts at the row whose primary key is from (after it
// when exclusive; a null from starts at the first row) and stops at the
// first error fn returns, which it returns. r is valid during the call
// only, and has a value for every column of the table.
//
// It is the hot half of what Scan merges, for a reader that merges the
// buffer with the cold tier itself (a query engine that reads segment files
// directly); such a reader reads the buffer before it lists the segments
// (see flush.Snapshot).
func (s *RowStore) Buffered(ctx context.Context, from row.Value, exclusive bool, fn func(r *row.Row) error) error {
	defer s.rt.reading()()
	rt := s.rt
	prefix, err := rt.scopePrefix(nil, s.user)
	if err != nil {
		return err
	}
	var start []byte
	if !from.IsNull() {
		if start, err = rt.t.AppendKey(slices.Clone(prefix), from); err != nil {
			return err
		}
	}
	it, err := rt.buffer.Scan(ctx, prefix, start, exclusive)
	if err != nil {
		return rt.wrap(err)
	}
	defer it.Close()
	var r row.Row
	for it.Next() {
		if err := it.Row(&r); err != nil {
			return rt.wrap(err)
		}
		rt.fill(&r)
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rt.wrap(it.Close())
}
