package flush_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

var users = []string{"alice", "Alice", "../../etc", "a/b", "\x00", "日本"}

func TestFlushUserTableMovesRowsAndKeepsReads(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	s := e.store("items")
	md := model{}
	for ui, u := range users {
		for id := int64(0); id < 100; id++ {
			require.NoError(t, s.insert(e.ctx, u, vals(id*int64(ui+1), 0)))
			md.set(u, id*int64(ui+1), 0)
		}
	}
	e.check("items", md, users, nil)

	res, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.Equal(t, 1, res.Tables)
	assert.EqualValues(t, 600, res.Rows)
	assert.EqualValues(t, 600, res.Removed)
	assert.Zero(t, res.Kept)
	assert.Len(t, res.Files, len(users), "one segment per user")
	assert.Zero(t, e.bufferLen("items"), "the buffer is empty")
	e.check("items", md, users, nil)

	// Each user's file is in that user's directory, and nowhere else.
	for _, u := range users {
		dir, err := segment.UserDir(u)
		require.NoError(t, err)
		matches, err := filepath.Glob(filepath.Join(e.root, ns, "items", filepath.FromSlash(dir), "*.parquet"))
		require.NoError(t, err)
		assert.Len(t, matches, 1, "user %q", u)
	}
	// Nothing ends in .tmp.
	require.NoError(t, filepath.WalkDir(e.root, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		assert.False(t, strings.HasSuffix(p, segment.TempExt), p)
		return nil
	}))

	// A reopen reads the same rows from the segments.
	e.reopen()
	e.check("items", md, users, nil)
}

func TestColdRowsKeepUniquenessUpdatesAndDeletes(t *testing.T) {
	for _, typ := range []catalog.TableType{catalog.UserTable, catalog.SharedTable} {
		t.Run(string(typ), func(t *testing.T) {
			e := newEnv(t)
			e.createTable("items", typ, catalog.FlushPolicy{})
			s := e.store("items")
			u := "bob"
			if typ == catalog.SharedTable {
				u = ""
			}
			md := model{}
			for id := int64(1); id <= 50; id++ {
				require.NoError(t, s.insert(e.ctx, u, vals(id, 0)))
				md.set(u, id, 0)
			}
			_, err := e.m.Flush(e.ctx, ns, "items")
			require.NoError(t, err)
			require.Zero(t, e.bufferLen("items"))

			// A key that lives only in Parquet is still a duplicate.
			err = s.insert(e.ctx, u, vals(7, 9))
			require.ErrorIs(t, err, core.ErrDuplicateKey)

			// Update and delete cold rows; the newer versions win.
			require.NoError(t, s.update(e.ctx, u, 3, 1))
			md.set(u, 3, 1)
			require.NoError(t, s.delete(e.ctx, u, 5))
			md.del(u, 5)
			e.check("items", md, []string{u}, map[string][]int64{u: {5}})

			// Flush the update and the tombstone: the deleted row stays
			// deleted, in the cold tier too.
			res, err := e.m.Flush(e.ctx, ns, "items")
			require.NoError(t, err)
			assert.EqualValues(t, 2, res.Rows)
			assert.EqualValues(t, 1, res.Tombstones)
			require.Zero(t, e.bufferLen("items"))
			e.check("items", md, []string{u}, map[string][]int64{u: {5}})

			// The deleted key can be inserted again, then deleted and
			// flushed again.
			require.NoError(t, s.insert(e.ctx, u, vals(5, 2)))
			md.set(u, 5, 2)
			e.check("items", md, []string{u}, nil)
			_, err = e.m.Flush(e.ctx, ns, "items")
			require.NoError(t, err)
			require.NoError(t, s.delete(e.ctx, u, 5))
			md.del(u, 5)
			_, err = e.m.Flush(e.ctx, ns, "items")
			require.NoError(t, err)
			e.reopen()
			e.check("items", md, []string{u}, map[string][]int64{u: {5}})
			err = e.store("items").insert(e.ctx, u, vals(9, 1))
			require.ErrorIs(t, err, core.ErrDuplicateKey, "after a reopen too")
		})
	}
}

func TestDeletionsWithNothingColdAreNotWritten(t *testing.T) {
	e := newEnv(t)
	e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	for id := int64(1); id <= 10; id++ {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
	}
	for id := int64(1); id <= 10; id++ {
		require.NoError(t, s.delete(e.ctx, "", id))
	}
	res, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	assert.Zero(t, res.Rows, "no segment for rows born and deleted in the buffer")
	assert.Empty(t, res.Files)
	assert.EqualValues(t, 10, res.Removed)
	assert.Zero(t, e.bufferLen("items"))
	segs, err := e.m.Segments(context.Background(), ns, "items")
	require.NoError(t, err)
	assert.Empty(t, segs)
	e.check("items", model{}, []string{""}, map[string][]int64{"": {1, 5, 10}})
}

func TestScanPagesAcrossBufferAndSegments(t *testing.T) {
	e := newEnv(t, func(o *flush.Options) { o.MaxSegmentRows = 40 })
	e.createTable("items", catalog.UserTable, catalog.FlushPolicy{})
	s := e.store("items")
	md := model{}
	gone := map[string][]int64{}
	// Five rounds, each inserting interleaved keys, updating and deleting
	// some older ones, then flushing all but the last round: keys of one
	// page come from several segments and the buffer.
	for round := 0; round < 5; round++ {
		for i := int64(0); i < 60; i++ {
			id := i*5 + int64(round)
			require.NoError(t, s.insert(e.ctx, "u", vals(id, 0)))
			md.set("u", id, 0)
		}
		if round > 0 {
			for i := int64(0); i < 60; i += 7 {
				id := i*5 + int64(round-1)
				if _, ok := md["u"][id]; ok {
					require.NoError(t, s.update(e.ctx, "u", id, round))
					md.set("u", id, round)
				}
			}
			for i := int64(3); i < 60; i += 11 {
				id := i*5 + int64(round-1)
				if _, ok := md["u"][id]; ok {
					require.NoError(t, s.delete(e.ctx, "u", id))
					md.del("u", id)
					gone["u"] = append(gone["u"], id)
				}
			}
		}
		if round < 4 {
			res, err := e.m.Flush(e.ctx, ns, "items")
			require.NoError(t, err)
			assert.Greater(t, len(res.Files), 1, "segments of at most 40 versions")
		}
	}
	require.Positive(t, e.bufferLen("items"))
	e.check("items", md, []string{"u"}, gone)

	// Start and After pages across the boundary.
	for _, start := range []int64{-1, 0, 3, 77, 150, 299, 300} {
		page, err := s.scan(e.ctx, "u", tables.ScanOptions{Start: row.Int64(start), Limit: 5})
		require.NoError(t, err)
		want := []int64{}
		for id := range md["u"] {
			if id >= start {
				want = append(want, id)
			}
		}
		sortInt64(want)
		if len(want) > 5 {
			want = want[:5]
		}
		got := make([]int64, len(page.Rows))
		for i, r := range page.Rows {
			got[i] = r.Values[0].Int64()
		}
		assert.Equal(t, want, got, "start %d", start)
	}
}

func sortInt64(s []int64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestStreamTablesAreNeverFlushed(t *testing.T) {
	e := newEnv(t)
	_, err := e.m.DB().Catalog().CreateNamespace(e.ctx, ns)
	require.NoError(t, err)
	_, err = e.m.DB().Catalog().CreateTable(e.ctx, catalog.Table{Namespace: ns, Name: "ev", Type: catalog.StreamTable,
		Columns: []catalog.Column{{Name: "x", Type: row.TypeInt64}},
		Stream:  catalog.StreamOptions{TTL: 3600e9, MaxBuffer: 100}})
	require.NoError(t, err)
	st, err := e.m.DB().Stream(e.ctx, ns, "ev")
	require.NoError(t, err)
	_, err = st.Append(e.ctx, []row.Value{row.Int64(1)})
	require.NoError(t, err)
	_, err = e.m.Flush(e.ctx, ns, "ev")
	require.ErrorIs(t, err, core.ErrWrongTableType)
	res, err := e.m.FlushAll(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, res.Tables)
	due, err := e.m.Due(e.ctx, ns, "ev")
	require.NoError(t, err)
	assert.False(t, due)
	assert.EqualValues(t, 1, st.Len())
}

func TestFlushOfMissingTable(t *testing.T) {
	e := newEnv(t)
	_, err := e.m.Flush(e.ctx, ns, "nope")
	require.True(t, errors.Is(err, core.ErrNamespaceNotFound) || errors.Is(err, core.ErrTableNotFound), "%v", err)
}

func TestOpenNeedsADirectory(t *testing.T) {
	_, err := flush.Open(t.Context(), nil, flush.Options{})
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	_, err = flush.Open(t.Context(), nil, flush.Options{Dir: t.TempDir(), MaxSegmentRows: -1})
	require.ErrorIs(t, err, core.ErrInvalidArgument)
}
