package sql

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// strictRequest decodes body as the endpoint does when quickRequest
// declines it.
func strictRequest(a *api.API, body []byte) (sql string, params []any, ns string, err error) {
	var req request
	if err = a.DecodeJSON(body, &req); err != nil {
		return "", nil, "", err
	}
	if req.SQL == nil {
		return "", nil, "", badRequest(CodeInvalidSQL, `field "sql" is required`)
	}
	if params, err = decodeParams(req.Params); err != nil {
		return "", nil, "", err
	}
	return *req.SQL, params, req.NamespaceID, nil
}

// checkQuickRequest fails when quickRequest accepts body but reads it
// otherwise than the strict decoder.
func checkQuickRequest(t *testing.T, a *api.API, body []byte) bool {
	sql, params, ns, ok := quickRequest(body)
	if !ok {
		return false
	}
	wantSQL, wantParams, wantNS, err := strictRequest(a, body)
	require.NoError(t, err, "quickRequest accepted %q", body)
	assert.Equal(t, wantSQL, sql, "%q", body)
	assert.Equal(t, wantParams, params, "%q", body)
	assert.Equal(t, wantNS, ns, "%q", body)
	return true
}

var quickAccepted = []string{
	`{"sql":"SELECT * FROM app.m WHERE id = $1","params":[42]}`,
	` { "sql" : "SELECT 1" , "namespace_id" : "app" , "params" : [ ] } `,
	"{\"params\":[1, -2, 0, -0, 1.5, 1e3, -2.5E-3, 9223372036854775807, 9223372036854775808, \"é\", true, false, null],\n\"sql\":\"x\"}",
	`{"sql":""}`,
	`{"namespace_id":"","sql":"SELECT <&>"}`,
}

var quickDeclined = []string{
	``, `{}`, `[]`, `null`, `{"sql":null}`, `{"sql":1}`, `{"sql":"a\"b"}`, `{"sql":"a\nb"}`, "{\"sql\":\"a\x01\"}",
	"{\"sql\":\"\xff\"}", `{"SQL":"x"}`, `{"s\u0071l":"x"}`, `{"sql":"x","sql":"y"}`, `{"sql":"x","extra":1}`,
	`{"sql":"x","params":null}`, `{"sql":"x","params":{}}`, `{"sql":"x","params":[[1]]}`, `{"sql":"x","params":[{}]}`,
	`{"sql":"x","params":[01]}`, `{"sql":"x","params":[1.]}`, `{"sql":"x","params":[.5]}`, `{"sql":"x","params":[1e]}`,
	`{"sql":"x","params":[+1]}`, `{"sql":"x","params":[1e400]}`, `{"sql":"x","params":[1,]}`, `{"sql":"x","params":[tru]}`,
	`{"sql":"x","params":["a\tb"]}`, `{"sql":"x"} {}`, `{"sql":"x"`, `{"sql":"x",}`, `{"sql" "x"}`, `{"sql":"x","params":[1]`,
	`{"sql":"x","namespace_id":5}`, `{"sql":"x","namespace_id":"a","namespace_id":"b"}`, `{"sql":"x","params":[],"params":[]}`,
}

// quickRequest reads the common bodies exactly as the strict decoder does,
// and declines everything else, leaving its errors to the strict path.
func TestQuickRequest(t *testing.T) {
	a := newFixture(t).api
	for _, body := range quickAccepted {
		assert.True(t, checkQuickRequest(t, a, []byte(body)), "declined %q", body)
	}
	for _, body := range quickDeclined {
		_, _, _, ok := quickRequest([]byte(body))
		assert.False(t, ok, "accepted %q", body)
	}
}

// FuzzQuickRequest: whatever quickRequest accepts, the strict decoder
// accepts and reads the same.
func FuzzQuickRequest(f *testing.F) {
	for _, body := range append(append([]string{}, quickAccepted...), quickDeclined...) {
		f.Add([]byte(body))
	}
	a := newFixture(f).api
	f.Fuzz(func(t *testing.T, body []byte) {
		checkQuickRequest(t, a, body)
	})
}

// A request sent again reuses its statements: the same answers, for
// another caller too, and the cache stays bounded.
func TestSplitStatementsAreReused(t *testing.T) {
	f := newFixture(t)
	f.setup(t)
	const req = `INSERT INTO items (id, name) VALUES ($1, 'x'); SELECT id, name FROM items WHERE id = $1`
	assert.Equal(t, [][]any{{1.0, "x"}}, f.ok(t, aliceToken, req, 1).Rows)
	assert.Equal(t, [][]any{{2.0, "x"}}, f.ok(t, aliceToken, req, 2).Rows)
	assert.Equal(t, [][]any{{1.0, "x"}}, f.ok(t, bobToken, req, 1).Rows)
	want, err := split(req)
	require.NoError(t, err)
	got, err := f.e.splitCached(req)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	long := `SELECT 1` + strings.Repeat(" ", maxCachedText)
	f.ok(t, aliceToken, long)
	_, cached := f.e.splits.m[long]
	assert.False(t, cached, "a request over maxCachedText is not kept")
	for i := range maxCachedParses + 1 {
		_, err := f.e.splitCached(fmt.Sprintf("SELECT %d", i))
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, len(f.e.splits.m), maxCachedParses)
}
