package sql

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"
)

// runOnSegments checks that queries see the merged buffer and segments:
// newest version wins, deleted rows hidden, each user's rows only.
func runOnSegments(t *testing.T, b store.StorageBackend) {
	f := newFixtureOn(t, b, true)
	f.setup(t)
	var vals []string
	for i := 1; i <= 50; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 'v%d', %d)", i, i, i))
	}
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES `+strings.Join(vals, ", "))
	f.ok(t, bobToken, `INSERT INTO items (id, name, qty) VALUES (1, 'bob', 1)`)
	r := f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	assert.Equal(t, "Flushed 1 table(s)", r.Message)
	assert.Equal(t, 51.0, r.Rows[0][1])

	// Newer versions in the buffer over the segment's.
	f.ok(t, aliceToken, `UPDATE items SET qty = qty + 1000 WHERE id <= 10; DELETE FROM items WHERE id > 40`)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES (100, 'new', 5)`)
	check := func() {
		t.Helper()
		r := f.ok(t, aliceToken, `SELECT count(*), sum(qty), max(id) FROM items`)
		// ids 1..40 and 100; qty: 1..40 plus 10×1000, plus 5.
		assert.Equal(t, [][]any{{41.0, float64(40*41/2 + 10000 + 5), 100.0}}, r.Rows)
		assert.Equal(t, [][]any{{1005.0}}, f.ok(t, aliceToken, `SELECT qty FROM items WHERE id = 5`).Rows)
		assert.Empty(t, f.ok(t, aliceToken, `SELECT qty FROM items WHERE id = 45`).Rows)
		assert.Equal(t, 3.0, f.ok(t, aliceToken, `SELECT count(*) FROM items WHERE id > 8 AND id <= 11`).Rows[0][0])
		assert.Equal(t, [][]any{{"bob"}}, f.ok(t, bobToken, `SELECT name FROM items`).Rows)
	}
	check()
	f.ok(t, adminToken, `STORAGE FLUSH ALL IN app`)
	check()
	r = f.ok(t, adminToken, `STORAGE COMPACT TABLE app.items`)
	assert.Equal(t, "Compacted 1 table(s)", r.Message)
	check()
	f.fail(t, http.StatusBadRequest, "WRONG_TABLE_TYPE", adminToken, `CREATE STREAM TABLE app.ev (k TEXT); STORAGE FLUSH TABLE app.ev`)
}

func TestQueriesSeeBufferAndSegmentsMerged(t *testing.T) {
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	runOnSegments(t, b)
}

func TestQueriesSeeBufferAndSegmentsMergedOnRocksDB(t *testing.T) {
	c := rocksdb.DefaultConfig()
	c.Path = t.TempDir()
	b, err := rocksdb.OpenWith(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	runOnSegments(t, b)
}
