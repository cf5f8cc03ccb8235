package flush_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// TestLongestKeysFitTheStore: a row under the longest user id and the
// longest primary key, both of the byte the key encoding doubles, is
// buffered, flushed (manifest records included), compacted, read back and
// deleted: every key the cold tier writes fits store.MaxKeySize too.
func TestLongestKeysFitTheStore(t *testing.T) {
	e := newEnv(t)
	_, err := e.m.DB().Catalog().CreateNamespace(e.ctx, ns)
	require.NoError(t, err)
	_, err = e.m.DB().Catalog().CreateTable(e.ctx, catalog.Table{Namespace: ns, Name: "docs", Type: catalog.UserTable, PrimaryKey: "k",
		Columns: []catalog.Column{{Name: "k", Type: row.TypeString}, {Name: "n", Type: row.TypeInt64}}})
	require.NoError(t, err)
	s, err := e.m.DB().User(e.ctx, ns, "docs")
	require.NoError(t, err)
	user, key := strings.Repeat("\x00", catalog.MaxUserIDLen), strings.Repeat("\x00", catalog.MaxKeyLen)
	for gen := range 3 {
		if gen == 0 {
			_, err = s.Insert(e.ctx, user, []row.Value{row.String(key), row.Int64(0)})
		} else {
			_, err = s.Update(e.ctx, user, row.String(key), map[string]row.Value{"n": row.Int64(int64(gen))})
		}
		require.NoError(t, err)
		_, err = e.m.Flush(e.ctx, ns, "docs")
		require.NoError(t, err)
	}
	_, err = e.m.MajorCompact(e.ctx, ns, "docs")
	require.NoError(t, err)
	e.reopen()
	s, err = e.m.DB().User(e.ctx, ns, "docs")
	require.NoError(t, err)
	r, err := s.Get(e.ctx, user, row.String(key))
	require.NoError(t, err)
	assert.Equal(t, int64(2), r.Values[1].Int64())
	require.NoError(t, s.Delete(e.ctx, user, row.String(key)))
	_, err = e.m.Flush(e.ctx, ns, "docs")
	require.NoError(t, err)
	page, err := s.Scan(e.ctx, user, tables.ScanOptions{})
	require.NoError(t, err)
	assert.Empty(t, page.Rows)
}

// TestDropDuringAScan: a scan that began before its table was dropped reads
// its segments to the end (the drop leaves each file to its last reader, as
// a compaction does), instead of failing on a file removed under it; the
// last reader removes the files.
func TestDropDuringAScan(t *testing.T) {
	e := newEnv(t, func(o *flush.Options) { o.RowGroupCacheBytes = -1; o.KeyCacheBytes = -1 })
	tbl := e.createTable("items", catalog.SharedTable, catalog.FlushPolicy{})
	s := e.store("items")
	for id := int64(1); id <= 500; id++ {
		require.NoError(t, s.insert(e.ctx, "", vals(id, 0)))
	}
	_, err := e.m.Flush(e.ctx, ns, "items")
	require.NoError(t, err)
	segs, err := e.m.Segments(context.Background(), ns, "items")
	require.NoError(t, err)
	require.Len(t, segs, 1)
	src, err := e.m.ColdTier().ColdSource(tbl)
	require.NoError(t, err)
	it, err := src.Scan(e.ctx, nil, nil, false)
	require.NoError(t, err)
	require.True(t, it.Next(), "the scan has begun: its segments are held")

	require.NoError(t, e.m.DropTable(e.ctx, ns, "items"))
	_, err = os.Stat(filepath.Join(e.root, segs[0].Path))
	require.NoError(t, err, "the file stays while a scan reads it")
	n := 1
	for it.Next() {
		n++
	}
	require.NoError(t, it.Close(), "the scan reads to its end")
	assert.Equal(t, 500, n)
	_, err = os.Stat(filepath.Join(e.root, segs[0].Path))
	assert.True(t, os.IsNotExist(err), "the last reader removed the file: %v", err)
}
