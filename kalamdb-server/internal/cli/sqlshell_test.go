package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
	sqlapi "github.com/kalamdb/kalamdb-go/kalamdb-server/internal/sql"
)

const shellToken = "shell-test-admin-token"

// sqlServer serves the API with the SQL endpoint on loopback.
func sqlServer(t *testing.T) string {
	t.Helper()
	b := memory.New()
	t.Cleanup(func() { _ = b.Close() })
	db, err := tables.Open(context.Background(), b, tables.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	authn, err := auth.New([]config.User{{ID: "root", Role: config.RoleAdmin, Token: shellToken}})
	require.NoError(t, err)
	a := api.New(api.Options{Auth: authn, DB: db, EvictionInterval: time.Hour})
	e, err := sqlapi.New(sqlapi.Options{API: a, DB: db})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	e.Register(a)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv.URL
}

// runShell runs the sql command with stdin and returns its exit code and
// output.
func runShell(t *testing.T, environ []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin), Environ: environ,
		Exit: func(int) { t.Fatal("unexpected exit") }}
	code := Main(append([]string{"sql"}, args...), env)
	return code, out.String(), errb.String()
}

func TestSQLShell(t *testing.T) {
	url := sqlServer(t)
	code, out, errs := runShell(t, nil, "", "--url", url, "--token", shellToken,
		"-c", "CREATE NAMESPACE app", "-c", "CREATE TABLE app.t (id INT PRIMARY KEY, s TEXT); INSERT INTO app.t VALUES (1, 'hello'), (2, NULL)")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "Namespace app created\nTable app.t created\nInserted 2 row(s)\n", out)

	// Piped standard input, the token from the environment, CSV.
	env := []string{"KALAMDB_TOKEN=" + shellToken}
	code, out, errs = runShell(t, env, "SELECT id, s\nFROM t ORDER BY id;\n", "--url", url, "-n", "app", "--format", "csv")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "id,s\n1,hello\n2,NULL\n", out)

	code, out, _ = runShell(t, env, "", "--url", url, "-c", "SELECT id, s AS text FROM app.t WHERE id = 1")
	require.Equal(t, 0, code)
	assert.Equal(t, "id | text\n---+------\n1  | hello\n(1 row)\n", out)

	code, out, _ = runShell(t, env, "", "--url", url, "--format", "json", "-c", "SELECT 1 AS one")
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"rows":[[1]]`)

	// A failing statement: exit 1, the error on standard error.
	file := filepath.Join(t.TempDir(), "bad.sql")
	require.NoError(t, os.WriteFile(file, []byte("INSERT INTO app.t VALUES (3, 'x');\nINSERT INTO app.t VALUES (1, 'dup');"), 0o600))
	code, _, errs = runShell(t, env, "", "--url", url, "-f", file)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "ERROR DUPLICATE_KEY: statement 2 of 2")

	code, _, errs = runShell(t, nil, "", "--url", url, "-c", "SELECT 1")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "KALAMDB_TOKEN")
	code, _, _ = runShell(t, env, "", "--url", url, "--format", "xml", "-c", "SELECT 1")
	assert.Equal(t, 2, code)
	code, _, errs = runShell(t, []string{"KALAMDB_TOKEN=wrong"}, "", "--url", url, "-c", "SELECT 1")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "ERROR UNAUTHORIZED")
}

func TestSQLShellInteractive(t *testing.T) {
	url := sqlServer(t)
	var out, errb bytes.Buffer
	sh := &sqlShell{env: Env{Stdout: &out, Stderr: &errb,
		Stdin: strings.NewReader("CREATE NAMESPACE app;\nSELECT\n  42 AS answer\n;\nSELEC 1;\n\\q\nSELECT 'never';\n")},
		url: url, token: shellToken, format: "table", client: &http.Client{}}
	err := sh.interactive()
	assert.ErrorIs(t, err, errStatementFailed)
	assert.Contains(t, out.String(), "kalamdb> ")
	assert.Contains(t, out.String(), "      -> ")
	assert.Contains(t, out.String(), "answer\n------\n42\n(1 row)\n")
	assert.NotContains(t, out.String(), "never")
	assert.Contains(t, errb.String(), "ERROR INVALID_SQL")
}

// On a terminal the shell edits lines and keeps their history: the up
// arrow brings the last statement back, and Enter runs it again.
func TestSQLShellOnATerminal(t *testing.T) {
	url := sqlServer(t)
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	t.Cleanup(func() { _ = ptmx.Close(); _ = tty.Close() })
	sh := &sqlShell{env: Env{Stdout: tty, Stderr: tty, Stdin: tty},
		url: url, token: shellToken, format: "table", client: &http.Client{}}
	done := make(chan error, 1)
	go func() { done <- sh.interactive() }()

	// Everything the shell writes, as it comes.
	chunks := make(chan string, 64)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			if n > 0 {
				chunks <- string(b[:n])
			}
			if err != nil {
				close(chunks)
				return
			}
		}
	}()
	var seen strings.Builder
	waitFor := func(s string, count int) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for strings.Count(seen.String(), s) < count {
			select {
			case c, ok := <-chunks:
				require.True(t, ok, "the terminal closed; so far: %q", seen.String())
				seen.WriteString(c)
			case <-deadline:
				t.Fatalf("no %q (×%d) on the terminal; so far: %q", s, count, seen.String())
			}
		}
	}
	waitFor("kalamdb> ", 1)
	_, err = ptmx.Write([]byte("SELECT 41 +\r"))
	require.NoError(t, err)
	waitFor("      -> ", 1)
	_, err = ptmx.Write([]byte("1 AS answer;\r"))
	require.NoError(t, err)
	waitFor("(1 row)\r\n", 1)
	assert.Contains(t, seen.String(), "answer\r\n------\r\n42\r\n", "lines end as a terminal in raw mode needs")

	_, err = ptmx.Write([]byte("SELECT 'again' AS word;\r"))
	require.NoError(t, err)
	waitFor("(1 row)\r\n", 2)
	_, err = ptmx.Write([]byte("\x1b[A\r")) // up arrow, Enter: the last line again
	require.NoError(t, err)
	waitFor("(1 row)\r\n", 3)
	assert.Equal(t, 2, strings.Count(seen.String(), "again\r\n(1 row)"), "the recalled statement ran")
	_, err = ptmx.Write([]byte("\\q\r"))
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the shell did not quit")
	}
}
