package sql

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
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

func TestNamespaceStatements(t *testing.T) {
	f := newFixture(t)
	assert.Equal(t, "Namespace app created", f.ok(t, adminToken, `CREATE NAMESPACE app`).Message)
	f.fail(t, http.StatusConflict, api.CodeNamespaceExists, adminToken, `CREATE NAMESPACE app`)
	assert.Equal(t, "Namespace app already exists", f.ok(t, adminToken, `CREATE NAMESPACE IF NOT EXISTS app`).Message)
	f.ok(t, adminToken, `CREATE NAMESPACE other`)
	r := f.ok(t, aliceToken, `SHOW NAMESPACES`)
	require.Len(t, r.Rows, 2)
	assert.Equal(t, "app", r.Rows[0][0])
	assert.Equal(t, "other", r.Rows[1][0])
	f.fail(t, http.StatusForbidden, api.CodeForbidden, aliceToken, `CREATE NAMESPACE mine`)
	f.fail(t, http.StatusForbidden, api.CodeForbidden, aliceToken, `DROP NAMESPACE other`)

	f.ok(t, adminToken, `CREATE TABLE other.t (id INT PRIMARY KEY)`)
	f.fail(t, http.StatusConflict, api.CodeNamespaceNotEmpty, adminToken, `DROP NAMESPACE other`)
	assert.Equal(t, "Namespace other dropped", f.ok(t, adminToken, `DROP NAMESPACE other CASCADE`).Message)
	f.fail(t, http.StatusNotFound, api.CodeNamespaceNotFound, adminToken, `DROP NAMESPACE other`)
	assert.Equal(t, "Namespace other does not exist", f.ok(t, adminToken, `DROP NAMESPACE IF EXISTS other`).Message)

	// USE sets the namespace of the statements after it in the request.
	b := f.post(t, adminToken, `{"sql":"CREATE NAMESPACE n2; USE n2; CREATE TABLE t (id INT PRIMARY KEY); SHOW TABLES IN n2"}`)
	require.Equal(t, http.StatusOK, b.status, string(b.body))
	require.Len(t, b.Results, 4)
	assert.Equal(t, [][]any{{"n2", "t", "USER", b.Results[3].Rows[0][3]}}, b.Results[3].Rows)
	b = f.post(t, adminToken, `{"sql":"CREATE TABLE t2 (id INT PRIMARY KEY)"}`)
	assert.Equal(t, http.StatusBadRequest, b.status, string(b.body))
	assert.Equal(t, CodeNoNamespace, b.Error.Code)
	f.fail(t, http.StatusNotFound, api.CodeNamespaceNotFound, adminToken, `USE nowhere`)
}

func TestTableStatements(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.ok(t, adminToken, `CREATE SHARED TABLE app.config (key TEXT, value TEXT, PRIMARY KEY (key)) WITH (FLUSH_POLICY = 'rows:10,interval:60')`)
	f.ok(t, adminToken, `CREATE STREAM TABLE app.events (kind VARCHAR(20), at TIMESTAMP) WITH (TTL_SECONDS = 30)`)
	f.ok(t, adminToken, `CREATE TABLE app.plain (id BIGINT NOT NULL, PRIMARY KEY (id)) WITH (TYPE = 'SHARED')`)
	assert.Equal(t, "Table app.items already exists", f.ok(t, adminToken, `CREATE TABLE IF NOT EXISTS app.items (id INT PRIMARY KEY)`).Message)
	f.fail(t, http.StatusConflict, api.CodeTableExists, adminToken, `CREATE TABLE app.items (id INT PRIMARY KEY)`)

	r := f.ok(t, aliceToken, `SHOW TABLES`)
	var names []string
	for _, row := range r.Rows {
		names = append(names, row[1].(string)+":"+row[2].(string))
	}
	assert.Equal(t, []string{"config:SHARED", "events:STREAM", "items:USER", "plain:SHARED"}, names)

	code, body := f.rest(t, "GET", "/v1/namespaces/app/tables/config", adminToken, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"flush":{"rows":10,"interval_seconds":60}`)
	code, body = f.rest(t, "GET", "/v1/namespaces/app/tables/events", adminToken, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"ttl_seconds":30`)

	r = f.ok(t, aliceToken, `DESCRIBE TABLE app.items`)
	assert.Equal(t, []any{"id", "BigInt", false, true, 1.0}, r.Rows[0])
	assert.Equal(t, []any{"name", "Text", false, false, 2.0}, r.Rows[1])
	assert.Equal(t, []any{"qty", "Int", true, false, 3.0}, r.Rows[2])
	assert.Equal(t, "_seq", r.Rows[len(r.Rows)-2][0])

	assert.Equal(t, "Column note added to app.items", f.ok(t, adminToken, `ALTER TABLE app.items ADD COLUMN note TEXT`).Message)
	r = f.ok(t, aliceToken, `DESCRIBE items`)
	assert.Equal(t, []any{"note", "Text", true, false, 8.0}, r.Rows[7])
	f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `ALTER TABLE app.items ADD COLUMN n2 TEXT NOT NULL`)

	for _, bad := range []struct{ sql, code, want string }{
		{`CREATE TABLE app.x (id UUID PRIMARY KEY)`, CodeInvalidSQL, `expected the type of column "id"`},
		{`CREATE TABLE app.x (id INT)`, api.CodeBadRequest, `primary_key`},
		{`CREATE TABLE app.x (id INT PRIMARY KEY, PRIMARY KEY (other))`, CodeInvalidSQL, `already has primary key`},
		{`CREATE TABLE app.x (id INT PRIMARY KEY) WITH (COLOR = 'red')`, CodeInvalidSQL, `unknown table option COLOR`},
		{`CREATE TABLE app.x (id INT PRIMARY KEY) WITH (FLUSH_POLICY = 'often')`, CodeInvalidSQL, `FLUSH_POLICY`},
		{`CREATE USER TABLE app.x (id INT PRIMARY KEY) WITH (TYPE = 'STREAM')`, CodeInvalidSQL, `option TYPE`},
		{`CREATE STREAM TABLE app.x (id INT) WITH (FLUSH_POLICY = 'rows:1')`, api.CodeBadRequest, `stream`},
		{`CREATE TABLE app.x (id INT PRIMARY KEY`, CodeInvalidSQL, `the end of the statement`},
		{`CREATE TABLE app.x (id INT PRIMARY KEY) extra`, CodeInvalidSQL, `"extra"`},
	} {
		msg := f.fail(t, http.StatusBadRequest, bad.code, adminToken, bad.sql)
		assert.Contains(t, msg, bad.want, bad.sql)
	}
	f.fail(t, http.StatusForbidden, api.CodeForbidden, aliceToken, `CREATE TABLE app.x (id INT PRIMARY KEY)`)
	f.fail(t, http.StatusForbidden, api.CodeForbidden, aliceToken, `DROP TABLE app.items`)
	f.fail(t, http.StatusForbidden, api.CodeForbidden, aliceToken, `ALTER TABLE app.items ADD COLUMN z INT`)

	assert.Equal(t, "Table app.plain dropped", f.ok(t, adminToken, `DROP SHARED TABLE app.plain`).Message)
	f.fail(t, http.StatusNotFound, api.CodeTableNotFound, adminToken, `DROP TABLE app.plain`)
	assert.Equal(t, "Table app.plain does not exist", f.ok(t, adminToken, `DROP TABLE IF EXISTS app.plain`).Message)
	f.fail(t, http.StatusNotFound, api.CodeTableNotFound, aliceToken, `SELECT * FROM plain`)
	f.fail(t, http.StatusNotFound, api.CodeTableNotFound, aliceToken, `DESCRIBE TABLE plain`)
}

func TestInsertIsAllOrNothing(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items (id, name) VALUES (1, 'a')`)
	msg := f.fail(t, http.StatusConflict, api.CodeDuplicateKey, aliceToken, `INSERT INTO items (id, name) VALUES (2, 'b'), (1, 'again')`)
	assert.Contains(t, msg, "1")
	msg = f.fail(t, http.StatusBadRequest, api.CodeInvalidRow, aliceToken, `INSERT INTO items (id, name) VALUES (3, 'c'), (4, NULL)`)
	assert.Contains(t, msg, "name")
	assert.Equal(t, [][]any{{1.0}}, f.ok(t, aliceToken, `SELECT id FROM items`).Rows)

	msg = f.fail(t, http.StatusBadRequest, CodeUnknownColumn, aliceToken, `INSERT INTO items (id, nope) VALUES (5, 1)`)
	assert.Contains(t, msg, `no column "nope"`)
	f.fail(t, http.StatusBadRequest, CodeUnknownColumn, aliceToken, `INSERT INTO items (id, _seq) VALUES (5, 1)`)
	msg = f.fail(t, http.StatusBadRequest, CodeTypeError, aliceToken, `INSERT INTO items (id, name) VALUES ('five', 'x')`)
	assert.Contains(t, msg, "five")
	f.fail(t, http.StatusBadRequest, CodeInvalidArgument, aliceToken, `INSERT INTO items (id, name) VALUES (6, 'x', 1)`)
	f.fail(t, http.StatusNotFound, api.CodeTableNotFound, aliceToken, `INSERT INTO nothing (id) VALUES (1)`)

	// Every type, from literals and from params.
	f.ok(t, aliceToken, `INSERT INTO items VALUES (10, 'all', 7, 0.25, true, '\x01\x02'::BLOB, TIMESTAMP '2026-01-02 03:04:05')`)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty, price, ok, data, seen) VALUES ($1, $2, $3, $4, $5, from_base64($6), $7)`,
		11, "params", 8, 0.5, false, "aGk=", "2026-01-02T03:04:05Z")
	r := f.ok(t, aliceToken, `SELECT * EXCLUDE (_seq, _updated) FROM items WHERE id >= 10 ORDER BY id`)
	assert.Equal(t, [][]any{
		{10.0, "all", 7.0, 0.25, true, "AQI=", "2026-01-02T03:04:05Z"},
		{11.0, "params", 8.0, 0.5, false, "aGk=", "2026-01-02T03:04:05Z"},
	}, r.Rows)
	assert.Equal(t, "Bytes", r.Schema[5].DataType)
	assert.Equal(t, "Timestamp", r.Schema[6].DataType)
	// INSERT … SELECT.
	assert.Equal(t, "Inserted 2 row(s)", f.ok(t, aliceToken, `INSERT INTO items (id, name) SELECT id + 100, name || '!' FROM items WHERE id >= 10`).Message)
}

func TestUpdateAndDeleteWithAnyPredicate(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3), (4, 'd', NULL)`)
	assert.Equal(t, "Updated 2 row(s)", f.ok(t, aliceToken, `UPDATE items SET qty = qty * 10, name = upper(name) WHERE qty >= 2`).Message)
	assert.Equal(t, [][]any{{1.0, "a", 1.0}, {2.0, "B", 20.0}, {3.0, "C", 30.0}, {4.0, "d", nil}},
		f.ok(t, aliceToken, `SELECT id, name, qty FROM items ORDER BY id`).Rows)
	assert.Equal(t, "Updated 1 row(s)", f.ok(t, aliceToken, `UPDATE items SET qty = $1 WHERE qty IS NULL`, 7).Message)
	assert.Equal(t, "Deleted 2 row(s)", f.ok(t, aliceToken, `DELETE FROM items WHERE name IN ('a', 'd') OR qty > 100`).Message)
	assert.Equal(t, [][]any{{2.0}, {3.0}}, f.ok(t, aliceToken, `SELECT id FROM items ORDER BY id`).Rows)

	// A bad value anywhere changes nothing.
	msg := f.fail(t, http.StatusBadRequest, api.CodeInvalidRow, aliceToken, `UPDATE items SET name = CASE WHEN id = 3 THEN NULL ELSE 'x' END`)
	assert.Contains(t, msg, "name")
	assert.Equal(t, [][]any{{"B"}, {"C"}}, f.ok(t, aliceToken, `SELECT name FROM items ORDER BY id`).Rows)
	f.fail(t, http.StatusBadRequest, CodeTypeError, aliceToken, `UPDATE items SET qty = 'many'`)
	f.fail(t, http.StatusBadRequest, CodeInvalidArgument, aliceToken, `UPDATE items SET id = 9`)
	f.fail(t, http.StatusBadRequest, CodeUnknownColumn, aliceToken, `UPDATE items SET nope = 9`)
	f.fail(t, http.StatusBadRequest, CodeUnknownColumn, aliceToken, `DELETE FROM items WHERE nope = 1`)
	f.fail(t, http.StatusBadRequest, CodeInvalidSQL, aliceToken, `DELETE FROM items WHERE`)
	f.fail(t, http.StatusBadRequest, CodeInvalidSQL, aliceToken, `UPDATE items SET qty = WHERE id = 1`)

	assert.Equal(t, "Deleted 2 row(s)", f.ok(t, aliceToken, `DELETE FROM items`).Message)
	assert.Empty(t, f.ok(t, aliceToken, `SELECT * FROM items`).Rows)

	f.ok(t, adminToken, `CREATE STREAM TABLE app.ev (kind TEXT)`)
	f.fail(t, http.StatusBadRequest, api.CodeWrongTableType, aliceToken, `DELETE FROM ev`)
	f.fail(t, http.StatusBadRequest, api.CodeWrongTableType, aliceToken, `UPDATE ev SET kind = 'x'`)
}

func TestQueries(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty, price) VALUES
		(1, 'apple', 5, 1.0), (2, 'banana', 5, 2.0), (3, 'cherry', 1, 3.0), (4, 'date', NULL, 4.0), (5, 'elder', 2, 5.0)`)
	for _, c := range []struct {
		sql  string
		rows [][]any
	}{
		{`SELECT name FROM items WHERE qty = 5 AND NOT price > 1.5`, [][]any{{"apple"}}},
		{`SELECT name FROM items WHERE qty IN (1, 2) ORDER BY name DESC`, [][]any{{"elder"}, {"cherry"}}},
		{`SELECT name FROM items WHERE price BETWEEN 2 AND 3 ORDER BY id`, [][]any{{"banana"}, {"cherry"}}},
		{`SELECT name FROM items WHERE name LIKE '%an%'`, [][]any{{"banana"}}},
		{`SELECT name FROM items WHERE qty IS NULL`, [][]any{{"date"}}},
		{`SELECT name FROM items WHERE qty IS NOT NULL ORDER BY id LIMIT 2 OFFSET 1`, [][]any{{"banana"}, {"cherry"}}},
		{`SELECT qty, count(*) AS n, sum(price) AS total FROM items GROUP BY qty HAVING count(*) > 1`, [][]any{{5.0, 2.0, 3.0}}},
		{`SELECT min(price), max(price), avg(price) FROM items`, [][]any{{1.0, 5.0, 3.0}}},
		{`SELECT id * 2 + 1 AS x FROM items WHERE id < 3 ORDER BY x DESC`, [][]any{{5.0}, {3.0}}},
		{`SELECT CURRENT_USER()`, [][]any{{"alice"}}},
		{`SELECT name, CURRENT_USER() FROM items WHERE id = 1`, [][]any{{"apple", "alice"}}},
		{`WITH cheap AS (SELECT * FROM items WHERE price < 3) SELECT count(*) FROM cheap`, [][]any{{2.0}}},
		{`SELECT count(*) FROM items a JOIN items b ON a.qty = b.qty`, [][]any{{6.0}}},
	} {
		assert.Equal(t, c.rows, f.ok(t, aliceToken, c.sql).Rows, c.sql)
	}
	r := f.ok(t, aliceToken, `SELECT _seq, _updated, NOW() FROM items WHERE id = 1`)
	require.Len(t, r.Rows, 1)
	assert.Equal(t, []string{"BigInt", "Timestamp", "Timestamp"}, []string{r.Schema[0].DataType, r.Schema[1].DataType, r.Schema[2].DataType})
	assert.Greater(t, r.Rows[0][0].(float64), 0.0)
	seq := r.Rows[0][0]
	f.ok(t, aliceToken, `UPDATE items SET qty = 6 WHERE id = 1`)
	assert.Greater(t, f.ok(t, aliceToken, `SELECT _seq FROM items WHERE id = 1`).Rows[0][0].(float64), seq.(float64))
}

func TestPrimaryKeyPushdownKeepsResults(t *testing.T) {
	f := newFixture(t)
	f.ok(t, adminToken, `CREATE NAMESPACE app; CREATE SHARED TABLE app.n (id INT PRIMARY KEY, s TEXT); CREATE SHARED TABLE app.s (k TEXT PRIMARY KEY)`)
	f.ok(t, adminToken, `INSERT INTO n SELECT i, 'v' || i FROM range(-20, 21) t(i)`)
	f.ok(t, adminToken, `INSERT INTO s VALUES ('a'), ('ab'), ('b'), ('ba'), ('c')`)
	count := func(sql string, params ...any) float64 {
		return f.ok(t, aliceToken, sql, params...).Rows[0][0].(float64)
	}
	for _, c := range []struct {
		where string
		want  float64
	}{
		{`id = 3`, 1}, {`id = 99`, 0}, {`3 = id`, 1}, {`id > 18`, 2}, {`id >= 18`, 3}, {`id < -18`, 2}, {`id <= -18`, 3},
		{`id > 0 AND id < 5`, 4}, {`id BETWEEN -2 AND 2`, 5}, {`id > 5 AND id < 3`, 0}, {`id >= 3 AND id <= 3`, 1},
		{`id = 3 OR id = 4`, 2}, {`id = 3 AND s = 'v4'`, 0}, {`id = 5000000000`, 0}, {`id = '7'`, 1}, {`id > 10 AND id > 15`, 5},
		{`id = 3 AND id IN (SELECT id FROM n WHERE id > 2)`, 1},
	} {
		assert.Equal(t, c.want, count(`SELECT count(*) FROM n WHERE `+c.where), c.where)
	}
	assert.Equal(t, 1.0, count(`SELECT count(*) FROM n WHERE id = $1`, 3))
	assert.Equal(t, 3.0, count(`SELECT count(*) FROM n WHERE id > $1`, 17))
	f.fail(t, http.StatusBadRequest, CodeTypeError, aliceToken, `SELECT count(*) FROM n WHERE id = $1`, "x")
	assert.Equal(t, 1.0, count(`SELECT count(*) FROM s WHERE k > 'a' AND k < 'b'`))
	assert.Equal(t, 3.0, count(`SELECT count(*) FROM s WHERE k >= 'b'`))
	assert.Equal(t, 1.0, count(`SELECT count(*) FROM s WHERE k = $1`, "ba"))
}

func TestUsersSeeTheirOwnRows(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items (id, name) VALUES (1, 'alice one'), (2, 'alice two')`)
	f.ok(t, bobToken, `INSERT INTO items (id, name) VALUES (1, 'bob one')`)
	assert.Equal(t, [][]any{{"alice one"}, {"alice two"}}, f.ok(t, aliceToken, `SELECT name FROM items ORDER BY id`).Rows)
	assert.Equal(t, [][]any{{"bob one"}}, f.ok(t, bobToken, `SELECT name FROM items`).Rows)
	assert.Equal(t, [][]any{{"bob one"}}, f.ok(t, bobToken, `SELECT name FROM items WHERE id = 1`).Rows)
	assert.Empty(t, f.ok(t, bobToken, `SELECT name FROM items WHERE id = 2`).Rows)
	assert.Empty(t, f.ok(t, adminToken, `SELECT name FROM items`).Rows)

	assert.Equal(t, "Updated 1 row(s)", f.ok(t, bobToken, `UPDATE items SET name = 'bob!'`).Message)
	assert.Equal(t, "Deleted 1 row(s)", f.ok(t, bobToken, `DELETE FROM items WHERE id > 0`).Message)
	assert.Equal(t, [][]any{{"alice one"}, {"alice two"}}, f.ok(t, aliceToken, `SELECT name FROM items ORDER BY id`).Rows)

	f.ok(t, adminToken, `CREATE SHARED TABLE app.config (k TEXT PRIMARY KEY, v TEXT)`)
	f.ok(t, aliceToken, `INSERT INTO config VALUES ('color', 'red')`)
	assert.Equal(t, [][]any{{"red"}}, f.ok(t, bobToken, `SELECT v FROM config`).Rows)
	f.fail(t, http.StatusForbidden, api.CodeForbidden, bobToken, `STORAGE FLUSH TABLE app.config`)
}

func TestQueriesReadKalamDBTablesOnly(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	for _, c := range []struct{ sql, code string }{
		{`SELECT * FROM read_csv('/etc/passwd')`, CodeUnsupported},
		{`SELECT * FROM query('SELECT 1')`, CodeUnsupported},
		{`SELECT * FROM items, read_text('/etc/hostname')`, CodeUnsupported},
		{`SELECT * FROM memory.main.x`, CodeInvalidSQL},
		{`SELECT * FROM information_schema.tables`, api.CodeNamespaceNotFound},
		{`SELECT * FROM duckdb_tables`, api.CodeTableNotFound},
		{`SELECT * FROM (SELECT * FROM duckdb_settings)`, api.CodeTableNotFound},
		{`INSERT INTO items (id, name) SELECT 1, name FROM duckdb_databases`, api.CodeTableNotFound},
		{`SET enable_external_access = true`, CodeInvalidSQL},
		{`ATTACH '/tmp/x.db'`, CodeInvalidSQL},
		{`COPY items TO '/tmp/x.csv'`, CodeInvalidSQL},
	} {
		r := f.sql(t, aliceToken, c.sql)
		assert.Equal(t, "error", r.Status, c.sql)
		if assert.NotNil(t, r.Error, c.sql) {
			assert.Equal(t, c.code, r.Error.Code, "%s: %s", c.sql, r.body)
		}
		assert.Less(t, r.status, 500, c.sql)
	}
}

func TestParamsAndBatches(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	r := f.sql(t, aliceToken, `INSERT INTO items (id, name) VALUES ($1, $2); SELECT name FROM items WHERE id = $1`, 9007199254740993, "big")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Len(t, r.Results, 2)
	assert.Equal(t, "Inserted 1 row(s)", r.Results[0].Message)
	assert.Equal(t, [][]any{{"big"}}, r.Results[1].Rows)
	assert.Contains(t, string(f.post(t, aliceToken, `{"sql":"SELECT id FROM items","namespace_id":"app"}`).body), "9007199254740993")

	msg := f.fail(t, http.StatusBadRequest, CodeInvalidArgument, aliceToken, `SELECT $2`, 1)
	assert.Contains(t, msg, "$2")
	f.fail(t, http.StatusBadRequest, CodeInvalidArgument, aliceToken, `SELECT $1`, map[string]any{"a": 1})

	// The first failure stops the batch; what ran before it stays.
	r = f.sql(t, aliceToken, `INSERT INTO items (id, name) VALUES (1, 'one'); INSERT INTO items (id, name) VALUES (1, 'dup'); INSERT INTO items (id, name) VALUES (3, 'three')`)
	assert.Equal(t, http.StatusConflict, r.status)
	assert.Empty(t, r.Results)
	assert.Contains(t, r.Error.Message, "statement 2 of 3")
	assert.Equal(t, map[string]any{"statement": 2.0}, r.Error.Details)
	assert.Equal(t, [][]any{{1.0}, {9007199254740993.0}}, f.ok(t, aliceToken, `SELECT id FROM items ORDER BY id`).Rows)

	// Semicolons inside strings, names and comments do not split.
	r = f.sql(t, aliceToken, "SELECT 'a;b' AS \"x;y\" -- c;d\n; /* e;f */ SELECT 2")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Len(t, r.Results, 2)
	assert.Equal(t, "x;y", r.Results[0].Schema[0].Name)
	assert.Equal(t, [][]any{{"a;b"}}, r.Results[0].Rows)
}

func TestSQLAndRESTSeeTheSameRows(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	code, body := f.rest(t, "POST", "/v1/namespaces/app/tables/items/rows", aliceToken,
		`{"rows":[{"id":1,"name":"rest","data":"AQI=","seen":"2026-05-06T07:08:09.123456Z"}]}`)
	require.Equal(t, http.StatusCreated, code, string(body))
	r := f.ok(t, aliceToken, `SELECT name, data, seen, _seq FROM items WHERE id = 1`)
	assert.Equal(t, []any{"rest", "AQI=", "2026-05-06T07:08:09.123456Z"}, r.Rows[0][:3])

	f.ok(t, aliceToken, `INSERT INTO items (id, name, price) VALUES (2, 'sql', 2.5)`)
	code, body = f.rest(t, "GET", "/v1/namespaces/app/tables/items/rows/2", aliceToken, "")
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Contains(t, string(body), `"name":"sql"`)
	code, _ = f.rest(t, "GET", "/v1/namespaces/app/tables/items/rows/2", bobToken, "")
	assert.Equal(t, http.StatusNotFound, code)

	f.ok(t, aliceToken, `UPDATE items SET name = 'changed' WHERE price > 2`)
	_, body = f.rest(t, "GET", "/v1/namespaces/app/tables/items/rows/2", aliceToken, "")
	assert.Contains(t, string(body), `"name":"changed"`)
	code, _ = f.rest(t, "DELETE", "/v1/namespaces/app/tables/items/rows/1", aliceToken, "")
	require.Equal(t, http.StatusNoContent, code)
	assert.Equal(t, [][]any{{2.0}}, f.ok(t, aliceToken, `SELECT id FROM items`).Rows)

	// Stream events.
	f.ok(t, adminToken, `CREATE STREAM TABLE app.ev (kind TEXT)`)
	f.ok(t, aliceToken, `INSERT INTO ev VALUES ('a'), ('b')`)
	_, body = f.rest(t, "GET", "/v1/namespaces/app/tables/ev/rows", aliceToken, "")
	assert.Contains(t, string(body), `"kind":"b"`)
	assert.Equal(t, [][]any{{"a"}, {"b"}}, f.ok(t, aliceToken, `SELECT kind FROM ev ORDER BY _seq`).Rows)
}

func TestStorageCommandsWithoutColdTier(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.fail(t, http.StatusNotImplemented, api.CodeNotImplemented, adminToken, `STORAGE FLUSH TABLE app.items`)
	f.fail(t, http.StatusNotImplemented, api.CodeNotImplemented, adminToken, `STORAGE COMPACT TABLE app.items`)
	f.fail(t, http.StatusNotImplemented, api.CodeNotImplemented, adminToken, `STORAGE FLUSH ALL IN app`)
	f.fail(t, http.StatusBadRequest, CodeInvalidSQL, adminToken, `STORAGE VACUUM`)
	f.fail(t, http.StatusNotFound, api.CodeTableNotFound, adminToken, `STORAGE FLUSH TABLE app.nothing`)
}

// The point lookup and the constant insert answer exactly as the engine
// does.
func TestFastPathsMatchTheEngine(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items VALUES (1, 'a', 2, 0.5, true, '\x01'::BLOB, TIMESTAMP '2026-01-02 03:04:05.123456')`)
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty, price, ok) VALUES ($1, $2, $3, $4, $5), (-3, 'neg', -7, -1.25e2, FALSE)`, 2, "b", nil, 1, false)
	for _, q := range []string{
		`SELECT * FROM items WHERE id = %s`, `SELECT id, name AS n, _seq, _updated, seen, data FROM items WHERE id = %s`,
		`SELECT items.price, ok FROM app.items WHERE items.id = %s`,
	} {
		for _, id := range []string{"1", "2", "-3", "99"} {
			fast := f.ok(t, aliceToken, fmt.Sprintf(q, id))
			engine := f.ok(t, aliceToken, fmt.Sprintf(q, id)+" AND true")
			assert.Equal(t, engine, fast, q, id)
		}
	}
	r := f.ok(t, aliceToken, `SELECT qty, price FROM items WHERE id = -3`)
	assert.Equal(t, [][]any{{-7.0, -125.0}}, r.Rows)
	// Values that need a cast take the engine's path.
	f.ok(t, aliceToken, `INSERT INTO items (id, name, qty, price) VALUES ('10', 5, 2.6, 3)`)
	assert.Equal(t, [][]any{{"5", 3.0, 3.0}}, f.ok(t, aliceToken, `SELECT name, qty, price FROM items WHERE id = 10`).Rows)
	f.fail(t, http.StatusBadRequest, api.CodeInvalidRow, aliceToken, `INSERT INTO items (id, name, qty) VALUES (11, 'x', 3000000000)`)
}

// A query sent again reuses its parse tree, never its params or its
// caller.
func TestParsedQueriesAreReusedSafely(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	f.ok(t, aliceToken, `INSERT INTO items (id, name) VALUES (1, 'a1'), (2, 'a2')`)
	f.ok(t, bobToken, `INSERT INTO items (id, name) VALUES (1, 'b1')`)
	for _, q := range []string{
		`SELECT name FROM items WHERE id = $1`,
		`SELECT name FROM items WHERE id = $1 AND name <> 'x'`,
		`SELECT name FROM items WHERE id = $1 AND ` + strings.Repeat("true AND ", 600) + `true`,
	} {
		assert.Equal(t, [][]any{{"a1"}}, f.ok(t, aliceToken, q, 1).Rows, q)
		assert.Equal(t, [][]any{{"a2"}}, f.ok(t, aliceToken, q, 2).Rows, q)
		assert.Equal(t, [][]any{{"b1"}}, f.ok(t, bobToken, q, 1).Rows, q)
		assert.Empty(t, f.ok(t, bobToken, q, 2).Rows, q)
	}
	assert.LessOrEqual(t, len(f.e.parses.m), 2)
}
