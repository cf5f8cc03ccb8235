package sql

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInsertAndSelect(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	r := f.ok(t, aliceToken, `INSERT INTO items (id, name, qty, price) VALUES (1, 'hello', 3, 1.5), (2, 'world', NULL, 2)`)
	assert.Equal(t, "Inserted 2 row(s)", r.Message)
	r = f.ok(t, aliceToken, `SELECT id, name, qty, price FROM items ORDER BY id DESC`)
	assert.Equal(t, []Field{{"id", "BigInt", 0}, {"name", "Text", 1}, {"qty", "Int", 2}, {"price", "Double", 3}}, r.Schema)
	assert.Equal(t, [][]any{{2.0, "world", nil, 2.0}, {1.0, "hello", 3.0, 1.5}}, r.Rows)
	assert.Equal(t, 2, r.RowCount)
	r = f.ok(t, aliceToken, `SELECT * FROM app.items WHERE id = $1`, 1)
	require.Len(t, r.Rows, 1)
	assert.Equal(t, "hello", r.Rows[0][1])
	r = f.ok(t, aliceToken, `SELECT count(*) AS n, avg(price) AS p, sum(qty) FROM items`)
	assert.Equal(t, [][]any{{2.0, 1.75, 3.0}}, r.Rows)
	assert.Equal(t, "BigInt", r.Schema[0].DataType)
	f.fail(t, http.StatusBadRequest, CodeInvalidSQL, aliceToken, `SELEC 1`)
}
