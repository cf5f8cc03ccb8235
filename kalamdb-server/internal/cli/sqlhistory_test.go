package cli

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ttySession is an interactive shell on a pseudo-terminal.
type ttySession struct {
	t      *testing.T
	ptmx   *os.File
	chunks chan string
	seen   strings.Builder
	done   chan error
}

// startTTY runs the interactive shell against url on a new pseudo-terminal,
// with environ as its environment.
func startTTY(t *testing.T, url string, environ []string) *ttySession {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	t.Cleanup(func() { _ = ptmx.Close(); _ = tty.Close() })
	sh := &sqlShell{env: Env{Stdout: tty, Stderr: tty, Stdin: tty, Environ: environ},
		url: url, token: shellToken, format: "table", client: &http.Client{}}
	s := &ttySession{t: t, ptmx: ptmx, chunks: make(chan string, 64), done: make(chan error, 1)}
	go func() { s.done <- sh.interactive() }()
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			if n > 0 {
				s.chunks <- string(b[:n])
			}
			if err != nil {
				close(s.chunks)
				return
			}
		}
	}()
	s.waitFor("kalamdb> ", 1)
	return s
}

// waitFor reads what the shell writes until text has appeared count times.
func (s *ttySession) waitFor(text string, count int) {
	s.t.Helper()
	deadline := time.After(20 * time.Second)
	for strings.Count(s.seen.String(), text) < count {
		select {
		case c, ok := <-s.chunks:
			require.True(s.t, ok, "the terminal closed; so far: %q", s.seen.String())
			s.seen.WriteString(c)
		case <-deadline:
			s.t.Fatalf("no %q (×%d) on the terminal; so far: %q", text, count, s.seen.String())
		}
	}
}

// typeKeys sends keys as typed.
func (s *ttySession) typeKeys(keys string) {
	s.t.Helper()
	_, err := s.ptmx.Write([]byte(keys))
	require.NoError(s.t, err)
}

// quit types \q and waits for the shell to end.
func (s *ttySession) quit() {
	s.t.Helper()
	s.typeKeys("\\q\r")
	select {
	case err := <-s.done:
		require.NoError(s.t, err)
	case <-time.After(20 * time.Second):
		s.t.Fatal("the shell did not quit")
	}
}

const up = "\x1b[A"

// A statement typed in one session comes back with the up arrow in the
// next, whole when it was typed over several lines; the file holds one
// statement a line, mode 0600.
func TestSQLShellHistoryAcrossSessions(t *testing.T) {
	url := sqlServer(t)
	home := t.TempDir()
	environ := []string{"HOME=" + home}

	s := startTTY(t, url, environ)
	s.typeKeys("SELECT 41 +\r")
	s.waitFor("      -> ", 1)
	s.typeKeys("1 AS answer; \r")
	s.waitFor("(1 row)\r\n", 1)
	s.typeKeys("SELECT 'one' AS word;\r")
	s.waitFor("(1 row)\r\n", 2)
	s.typeKeys("SELECT 'one' AS word;\r") // the same again: one entry
	s.waitFor("(1 row)\r\n", 3)
	s.quit()

	path := filepath.Join(home, ".kalamdb_history")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "SELECT 41 + 1 AS answer;\nSELECT 'one' AS word;\n", string(data))

	// The next session: two up arrows reach the statement of two lines,
	// which runs whole.
	s = startTTY(t, url, environ)
	s.typeKeys(up + up + "\r")
	s.waitFor("(1 row)\r\n", 1)
	assert.Contains(t, s.seen.String(), "SELECT 41 + 1 AS answer;")
	assert.Contains(t, s.seen.String(), "answer\r\n------\r\n42\r\n")
	// Recalled, it is the newest entry: one up arrow brings it again.
	s.typeKeys(up + "\r")
	s.waitFor("(1 row)\r\n", 2)
	assert.Equal(t, 2, strings.Count(s.seen.String(), "42\r\n(1 row)"))
	s.quit()
	data, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "SELECT 41 + 1 AS answer;\nSELECT 'one' AS word;\nSELECT 41 + 1 AS answer;\n", string(data))
}

// KALAMDB_HISTFILE names the file, and empty keeps none.
func TestSQLShellHistoryFileFromTheEnvironment(t *testing.T) {
	url := sqlServer(t)
	home := t.TempDir()
	path := filepath.Join(t.TempDir(), "hist")
	s := startTTY(t, url, []string{"HOME=" + home, "KALAMDB_HISTFILE=" + path})
	s.typeKeys("SELECT 1 AS n;\r")
	s.waitFor("(1 row)\r\n", 1)
	s.quit()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "SELECT 1 AS n;\n", string(data))

	s = startTTY(t, url, []string{"HOME=" + home, "KALAMDB_HISTFILE="})
	s.typeKeys("SELECT 2 AS n;\r")
	s.waitFor("(1 row)\r\n", 1)
	s.typeKeys(up + "\r") // the session's own history still works
	s.waitFor("(1 row)\r\n", 2)
	s.quit()
	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	assert.Empty(t, entries, "no history file with KALAMDB_HISTFILE empty")
}

// A history file that cannot be written: one warning on standard error,
// statements run, the session's history works, nothing is written.
func TestSQLShellHistoryFileNotWritable(t *testing.T) {
	url := sqlServer(t)
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, []byte("x"), 0o600))
	for name, path := range map[string]string{
		"under a file":   filepath.Join(notDir, "hist"), // cannot be created, even by root
		"a folder":       dir,                           // cannot be read
		"missing folder": filepath.Join(dir, "none", "hist"),
	} {
		t.Run(name, func(t *testing.T) {
			s := startTTY(t, url, []string{"KALAMDB_HISTFILE=" + path})
			s.typeKeys("SELECT 3 AS n;\r")
			s.waitFor("(1 row)\r\n", 1)
			s.typeKeys(up + "\r")
			s.waitFor("(1 row)\r\n", 2)
			s.quit()
			assert.Equal(t, 1, strings.Count(s.seen.String(), "WARNING: history file "+path), s.seen.String())
			assert.Contains(t, s.seen.String(), "not saved")
		})
	}
	data, err := os.ReadFile(notDir)
	require.NoError(t, err)
	assert.Equal(t, "x", string(data))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing created")
}

// The history keeps its last maxHistory entries: a longer file is cut when
// it opens, and a session's entries push the oldest out.
func TestSQLShellHistoryBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hist")
	var b strings.Builder
	for i := range 1500 {
		fmt.Fprintf(&b, "SELECT %d;\n", i)
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	var warn bytes.Buffer
	h := openHistory(path, maxHistory, &warn)
	require.Equal(t, maxHistory, h.Len())
	assert.Equal(t, "SELECT 1499;", h.At(0))
	assert.Equal(t, "SELECT 500;", h.At(maxHistory-1))
	h.record("SELECT 'new';")
	assert.Equal(t, maxHistory, h.Len())
	assert.Equal(t, "SELECT 'new';", h.At(0))
	assert.Equal(t, "SELECT 501;", h.At(maxHistory-1))
	h.close()
	assert.Empty(t, warn.String())

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.Len(t, lines, maxHistory+1, "cut to the bound, then one appended")
	assert.Equal(t, "SELECT 500;", lines[0])
	assert.Equal(t, "SELECT 'new';", lines[maxHistory])
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the cut file is the user's alone")

	// Through the shell: the oldest entry kept is the farthest the arrows go.
	url := sqlServer(t)
	s := startTTY(t, url, []string{"KALAMDB_HISTFILE=" + path})
	s.typeKeys(strings.Repeat(up, maxHistory+5) + "\r")
	s.waitFor("(1 row)\r\n", 1)
	assert.Contains(t, s.seen.String(), "501\r\n(1 row)")
	s.quit()
}

// Entries keep what makes a statement: a line break inside a string, a
// quoted name, a dollar-quoted string or ending a -- comment stays, others
// become spaces; the file keeps them on one line each.
func TestHistoryEntries(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1;":                          "SELECT 1;",
		"SELECT\n  1\n;":                     "SELECT   1 ;",
		"SELECT 'a\nb', \"x\ny\" FROM t\n;":  "SELECT 'a\nb', \"x\ny\" FROM t ;",
		"SELECT 'it''s\n' \n, 2;":            "SELECT 'it''s\n'  , 2;",
		"SELECT E'\\'\n' \n;":                "SELECT E'\\'\n'  ;",
		"SELECT 1 -- one\n, 2;":              "SELECT 1 -- one\n, 2;",
		"SELECT /* a\n/* b\n*/ c\n*/ 1\n;":   "SELECT /* a /* b */ c */ 1 ;",
		"SELECT $$a\nb$$, $t$x\n$$\ny$t$\n;": "SELECT $$a\nb$$, $t$x\n$$\ny$t$ ;",
		"SELECT $1\n, $2;":                   "SELECT $1 , $2;",
		"SELECT 'open\n":                     "SELECT 'open\n",
		"SELECT $$open\n":                    "SELECT $$open\n",
	} {
		got := oneLine(in)
		assert.Equal(t, want, got, "%q", in)
		line := escapeHistory(got)
		assert.NotContains(t, line, "\n")
		assert.Equal(t, got, unescapeHistory(line))
	}
	assert.Equal(t, `a\b\\n`, unescapeHistory(`a\b\\\\n`))
	assert.Equal(t, `x\`, unescapeHistory(`x\`))
}
