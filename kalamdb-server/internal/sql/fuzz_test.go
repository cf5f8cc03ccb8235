package sql

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
)

// badSQL are statements that must each get a 4xx naming the problem.
var badSQL = []string{
	``, `;`, `   -- only a comment`, `SELEC 1`, `SELECT`, `SELECT * FROM`, `SELECT 'open`, `SELECT "open`, `/* open`,
	`SELECT * FROM items WHERE`, `SELECT nope FROM items`, `SELECT * FROM nowhere.items`,
	`SELECT 1 +`, `SELECT nofunc(1)`, `SELECT CAST(1 AS NOTYPE)`, `SELECT 'a' + 1`, `SELECT CAST('x' AS INT)`, `SELECT $1`, `SELECT $0`, `SELECT $A00000000`, `SELECT ?`, `SELECT $name`, `SELECT $99999999999999999999`,
	`SELECT * FROM a.b.c.d`, `SELECT * FROM read_parquet('x')`, `PRAGMA version`, `EXPLAIN SELECT 1`, `CALL pragma_version()`,
	`INSERT`, `INSERT INTO`, `INSERT INTO items`, `INSERT INTO items (`, `INSERT INTO items (id`, `INSERT INTO items (id) VALUES`,
	`INSERT INTO items (id) VALUES (`, `INSERT INTO items (id, id) VALUES (1, 1)`, `INSERT INTO items VALUES (1)`,
	`INSERT INTO items (id, name) VALUES (1e400, 'x')`, `INSERT INTO items (id, name) VALUES (99999999999999999999999, 'x')`,
	`UPDATE`, `UPDATE items`, `UPDATE items SET`, `UPDATE items SET qty`, `UPDATE items SET qty =`, `UPDATE items SET qty = 1 WHERE`,
	`UPDATE items SET qty = 1 LIMIT 1`, `DELETE`, `DELETE FROM`, `DELETE items`, `DELETE FROM items WHERE nope`,
	`CREATE`, `CREATE TABLE`, `CREATE TABLE t`, `CREATE TABLE t (`, `CREATE TABLE t ()`, `CREATE TABLE t (id)`, `CREATE NAMESPACE`,
	`CREATE NAMESPACE ""`, `CREATE NAMESPACE "a/b"`, `CREATE TABLE app."" (id INT PRIMARY KEY)`, `CREATE INDEX i ON items (id)`,
	`DROP`, `DROP TABLE`, `DROP NAMESPACE`, `ALTER TABLE items`, `ALTER TABLE items ADD`, `ALTER TABLE items ADD COLUMN qty INT`,
	`ALTER TABLE items DROP COLUMN qty`, `SHOW`, `SHOW TABLES IN`, `SHOW COLUMNS`, `DESCRIBE`, `USE`, `USE a b`, `STORAGE`,
	`STORAGE FLUSH`, `STORAGE FLUSH TABLE`, `BEGIN`, `COMMIT`, `VACUUM`, `GRANT ALL ON items TO bob`,
	`SELECT * FROM items; SELEC`,
}

func TestBadSQLIsAClientError(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.ok(t, adminToken, `CREATE SHARED TABLE app.items2 (id INT PRIMARY KEY)`)
	for _, sql := range badSQL {
		r := f.sql(t, adminToken, sql)
		assert.True(t, r.status >= 400 && r.status < 500, "%q: %d %s", sql, r.status, r.body)
		if assert.NotNil(t, r.Error, "%q: %s", sql, r.body) {
			assert.NotEmpty(t, r.Error.Message, sql)
			assert.NotEqual(t, "INTERNAL", r.Error.Code, sql)
		}
	}
	// Nothing was half-applied: the table is as it was.
	assert.Empty(t, f.ok(t, adminToken, `SELECT * FROM items`).Rows)
	assert.Len(t, f.ok(t, adminToken, `DESCRIBE items`).Rows, 9)
}

func TestSyntaxErrorsPointAtTheProblem(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	msg := f.fail(t, http.StatusBadRequest, CodeInvalidSQL, aliceToken, `SELECT 1; SELECT * FROM items WHERE id = = 2`)
	assert.Contains(t, msg, "statement 2 of 2")
	assert.Contains(t, msg, `"="`)
	msg = f.fail(t, http.StatusBadRequest, CodeUnknownColumn, aliceToken, `SELECT nope FROM items`)
	assert.Contains(t, msg, "nope")
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, aliceToken, `SELECT nofunc(id) FROM items`)
	assert.Contains(t, msg, "nofunc")
	msg = f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `CREATE TABLE app.t (id INT PRIMARY KEY,)`)
	assert.Contains(t, msg, "position 39")
}

func TestRequestChecks(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		body, code string
		status     int
	}{
		{`{}`, CodeInvalidSQL, http.StatusBadRequest},
		{`{"sql": 1}`, "BAD_REQUEST", http.StatusBadRequest},
		{`{"sql": "SELECT 1", "params": {"a": 1}}`, CodeInvalidArgument, http.StatusBadRequest},
		{`{"sql": "SELECT 1", "params": [[1]]}`, CodeInvalidArgument, http.StatusBadRequest},
		{`{"sql": "SELECT 1", "extra": 1}`, "BAD_REQUEST", http.StatusBadRequest},
		{`not json`, "INVALID_JSON", http.StatusBadRequest},
	} {
		r := f.post(t, aliceToken, c.body)
		assert.Equal(t, c.status, r.status, "%s: %s", c.body, r.body)
		if assert.NotNil(t, r.Error, c.body) {
			assert.Equal(t, c.code, r.Error.Code, "%s: %s", c.body, r.body)
		}
	}
	r := f.post(t, "wrong-token", `{"sql":"SELECT 1"}`)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	r = f.post(t, aliceToken, `{"sql":"SELECT 1 AS one, 'x' AS s"}`)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, []Result{{Schema: []Field{{"one", "Int", 0}, {"s", "Text", 1}}, Rows: [][]any{{1.0, "x"}}, RowCount: 1}}, r.Results)
	assert.GreaterOrEqual(t, r.Took, 0.0)
}

// FuzzSQL sends arbitrary statements: every answer is well-formed and no
// statement is a server fault.
func FuzzSQL(f *testing.F) {
	for _, s := range badSQL {
		f.Add(s)
	}
	for _, s := range []string{
		`SELECT * FROM items WHERE id = 1`, `SELECT count(*), avg(qty) FROM items GROUP BY name HAVING count(*) > 0`,
		`INSERT INTO items (id, name) VALUES (1, 'a')`, `UPDATE items SET qty = 2 WHERE id BETWEEN 1 AND 3`,
		`DELETE FROM items WHERE name LIKE 'a%'`, `CREATE TABLE app.t (id TEXT PRIMARY KEY) WITH (FLUSH_POLICY = 'rows:5')`,
		`DROP TABLE IF EXISTS app.t`, `SHOW TABLES; DESCRIBE items; USE app`, `STORAGE FLUSH ALL`, `SELECT 1/0`,
		"SELECT '\xff'", `SELECT repeat('x', -1)`, `SELECT * FROM items, items2`,
	} {
		f.Add(s)
	}
	b := memory.New()
	f.Cleanup(func() { _ = b.Close() })
	fx := newFixtureOn(f, b, true, func(o *Options) { o.QueryTimeout = time.Second })
	fx.setup(f)
	f.Fuzz(func(t *testing.T, sql string) {
		body, err := json.Marshal(map[string]any{"sql": sql, "params": []any{1, "a"}, "namespace_id": "app"})
		if err != nil {
			return
		}
		r := fx.post(t, adminToken, string(body))
		if r.status >= 500 {
			t.Fatalf("%q: %d %s", sql, r.status, r.body)
		}
		if r.status == http.StatusOK {
			if r.Status != "success" {
				t.Fatalf("%q: 200 with %s", sql, r.body)
			}
			return
		}
		if r.Status != "error" || r.Error == nil || strings.TrimSpace(r.Error.Message) == "" {
			t.Fatalf("%q: %d without an error: %s", sql, r.status, r.body)
		}
	})
}

func TestLongQueriesAreStopped(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.QueryTimeout = 200 * time.Millisecond })
	msg := f.fail(t, http.StatusRequestTimeout, "REQUEST_TIMEOUT", aliceToken, `SELECT count(*) FROM range(1000000000000)`)
	assert.Contains(t, msg, "200ms")
	assert.Equal(t, [][]any{{1.0}}, f.ok(t, aliceToken, `SELECT 1`).Rows)
}
