package sql

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// poisoned is a backend whose writes of a value holding the bytes "poison"
// fail once armed: a Put of one, or any batch that puts one.
type poisoned struct {
	store.StorageBackend
	armed atomic.Bool
}

func (p *poisoned) fails(val []byte) bool {
	return p.armed.Load() && bytes.Contains(val, []byte("poison"))
}

func (p *poisoned) Put(ctx context.Context, part store.Partition, key, val []byte) error {
	if p.fails(val) {
		return errors.New("injected storage failure")
	}
	return p.StorageBackend.Put(ctx, part, key, val)
}

func (p *poisoned) Batch(ctx context.Context, ops []store.Operation) error {
	for _, op := range ops {
		if op.Kind == store.OpPut && p.fails(op.Value) {
			return errors.New("injected storage failure")
		}
	}
	return p.StorageBackend.Batch(ctx, ops)
}

// TestUpdateAndDeleteAreAllOrNothing: when storage fails to write one row
// of an UPDATE or a DELETE, no row changes, whether it was in the buffer or
// already flushed to a segment.
func TestUpdateAndDeleteAreAllOrNothing(t *testing.T) {
	mem := memory.New()
	t.Cleanup(func() { _ = mem.Close() })
	b := &poisoned{StorageBackend: mem}
	f := newFixtureOn(t, b, true)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'poison', 3)`)
	f.ok(t, adminToken, `STORAGE FLUSH TABLE app.items`)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES (4, 'd', 4), (5, 'e', 5)`)
	f.ok(t, bobToken, `INSERT INTO items (id, name, qty) VALUES (1, 'bob', 1)`)
	const all = `SELECT id, name, qty, _seq FROM items ORDER BY id`
	before := f.ok(t, aliceToken, all).Rows
	require.Len(t, before, 5)

	b.armed.Store(true)
	f.fail(t, http.StatusInternalServerError, api.CodeInternal, aliceToken,
		`UPDATE items SET qty = qty + 10, name = CASE WHEN id = 4 THEN 'poison' ELSE name END`)
	assert.Equal(t, before, f.ok(t, aliceToken, all).Rows, "a failed UPDATE changed some rows")
	f.fail(t, http.StatusInternalServerError, api.CodeInternal, aliceToken, `DELETE FROM items WHERE qty >= 2`)
	assert.Equal(t, before, f.ok(t, aliceToken, all).Rows, "a failed DELETE removed some rows")

	// Without the row that fails, both apply whole, to the caller's rows
	// only.
	assert.Equal(t, "Updated 4 row(s)", f.ok(t, aliceToken, `UPDATE items SET qty = qty + 10 WHERE id <> 3`).Message)
	assert.Equal(t, "Deleted 2 row(s)", f.ok(t, aliceToken, `DELETE FROM items WHERE id IN (1, 4)`).Message)
	assert.Equal(t, [][]any{{2.0, 12.0}, {3.0, 3.0}, {5.0, 15.0}}, f.ok(t, aliceToken, `SELECT id, qty FROM items ORDER BY id`).Rows)
	assert.Equal(t, [][]any{{1.0, "bob", 1.0}}, f.ok(t, bobToken, `SELECT id, name, qty FROM items`).Rows)
}

// TestUpdateAndDeleteWithinBatchLimits: on a backend with batch limits, an
// UPDATE or DELETE of more rows than one batch holds is refused whole.
func TestUpdateAndDeleteWithinBatchLimits(t *testing.T) {
	b, err := memory.OpenWith(memory.Config{MaxBatchOps: 8})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	f := newFixtureOn(t, b, false)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)`)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES (4, 'd', 4), (5, 'e', 5), (6, 'f', 6), (7, 'g', 7), (8, 'h', 8), (9, 'i', 9)`)
	const all = `SELECT id, name, qty, _seq FROM items ORDER BY id`
	before := f.ok(t, aliceToken, all).Rows

	msg := f.fail(t, http.StatusBadRequest, CodeInvalidArgument, aliceToken, `UPDATE items SET qty = 0`)
	assert.Contains(t, msg, "change fewer rows at a time")
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidArgument, aliceToken, `DELETE FROM items`)
	assert.Contains(t, msg, "MaxBatchOps")
	assert.Equal(t, before, f.ok(t, aliceToken, all).Rows, "a refused change is not applied in part")

	assert.Equal(t, "Updated 8 row(s)", f.ok(t, aliceToken, `UPDATE items SET qty = 0 WHERE id <= 8`).Message)
	assert.Equal(t, "Deleted 8 row(s)", f.ok(t, aliceToken, `DELETE FROM items WHERE id >= 2`).Message)
	assert.Equal(t, [][]any{{1.0, 0.0}}, f.ok(t, aliceToken, `SELECT id, qty FROM items`).Rows)
}
