package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxHistory is how many statements the shell's history keeps, in memory
// and in its file.
const maxHistory = 1000

// historyEnv names the environment variable of the history file: a path,
// or empty for none.
const historyEnv = "KALAMDB_HISTFILE"

// historyPath returns the history file of the environment: $KALAMDB_HISTFILE
// when it is set (empty: no file), else .kalamdb_history in $HOME (no file
// without a home).
func historyPath(environ []string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == historyEnv {
			return v
		}
	}
	home := lookupEnv(environ, "HOME")
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".kalamdb_history")
}

// history is the interactive shell's statement history, which the arrow
// keys of the terminal walk (it is an x/term History). It holds one entry
// per statement sent, not per line typed, so a statement of several lines
// comes back whole. With a file, the entries of earlier sessions are
// loaded when it opens and each new one is appended as it is sent: one
// entry a line, a backslash written \\ and a line break kept in an entry
// \n. The file is created with mode 0600 and cut to the last max entries
// when it opens. When the file cannot be read or written, the shell warns
// once on its standard error and keeps the session's history in memory
// only, never writing to the file again.
type history struct {
	entries []string // oldest first, at most max
	max     int
	path    string   // "" when no file is kept
	f       *os.File // the file, open for appending; nil when none
	warn    io.Writer
}

// openHistory loads the history file at path ("" for none), keeping its
// last max entries, and opens it for appending.
func openHistory(path string, max int, warn io.Writer) *history {
	h := &history{max: max, path: path, warn: warn}
	if path == "" {
		return h
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.fail(err)
		return h
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines {
		if e := unescapeHistory(l); e != "" {
			h.entries = append(h.entries, e)
		}
	}
	if len(h.entries) > max {
		h.entries = h.entries[len(h.entries)-max:]
	}
	if len(lines) > max {
		if err := h.rewrite(); err != nil {
			h.fail(err)
			return h
		}
	}
	h.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		h.fail(err)
	}
	return h
}

// rewrite replaces the file with the entries held, through a file of the
// same folder renamed over it.
func (h *history) rewrite() error {
	tmp, err := os.CreateTemp(filepath.Dir(h.path), ".kalamdb_history-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // once renamed, there is nothing to remove
	var b strings.Builder
	for _, e := range h.entries {
		b.WriteString(escapeHistory(e))
		b.WriteByte('\n')
	}
	_, err = tmp.WriteString(b.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), h.path)
}

// fail warns about err and stops using the file.
func (h *history) fail(err error) {
	fmt.Fprintf(h.warn, "WARNING: history file %s: %v; the statements of this session are not saved\n", h.path, err)
	if h.f != nil {
		_ = h.f.Close()
		h.f = nil
	}
	h.path = ""
}

// record adds the statement stmt (its text as typed, line breaks included)
// as the newest entry, unless it is empty or the newest entry already, and
// appends it to the file.
func (h *history) record(stmt string) {
	e := oneLine(strings.TrimSpace(stmt))
	if e == "" || (len(h.entries) > 0 && h.entries[len(h.entries)-1] == e) {
		return
	}
	h.entries = append(h.entries, e)
	if len(h.entries) > h.max {
		h.entries = h.entries[len(h.entries)-h.max:]
	}
	if h.f == nil {
		return
	}
	if _, err := h.f.WriteString(escapeHistory(e) + "\n"); err != nil {
		h.fail(err)
	}
}

// close closes the file.
func (h *history) close() {
	if h.f == nil {
		return
	}
	err := h.f.Close()
	h.f = nil
	if err != nil {
		h.fail(err)
	}
}

// Add is called by the terminal with each line read; the shell records
// whole statements itself (record), so Add keeps nothing.
func (h *history) Add(string) {}

// Len returns the number of entries.
func (h *history) Len() int { return len(h.entries) }

// At returns entry i, 0 being the newest.
func (h *history) At(i int) string { return h.entries[len(h.entries)-1-i] }

// escapeHistory writes entry e on one line of the file.
func escapeHistory(e string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace(e)
}

// unescapeHistory reads an entry written by escapeHistory. A backslash
// before any other character stays as it is.
func unescapeHistory(l string) string {
	if !strings.Contains(l, `\`) {
		return l
	}
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		if l[i] != '\\' || i+1 == len(l) {
			b.WriteByte(l[i])
			continue
		}
		switch l[i+1] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte('\\')
			b.WriteByte(l[i+1])
		}
		i++
	}
	return b.String()
}

// oneLine returns statement s with each line break that only separates
// tokens turned into a space, so that a statement typed over several
// lines comes back as one line the terminal can edit. A line break inside
// a string, a quoted name, a dollar-quoted string or ending a -- comment
// is part of the statement's meaning and stays.
func oneLine(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	out := make([]byte, 0, len(s))
	var quote byte   // ' or " inside a string or quoted name
	escapes := false // inside an E'…' string, where \' does not end it
	lineComment := false
	depth := 0 // of /* */ comments, which nest
	for i := 0; i < len(s); i++ {
		c := s[i]
		next := byte(0)
		if i+1 < len(s) {
			next = s[i+1]
		}
		switch {
		case lineComment:
			lineComment = c != '\n'
		case quote != 0:
			if escapes && c == '\\' && next != 0 {
				out = append(out, c, next)
				i++
				continue
			}
			if c == quote {
				if next == quote {
					out = append(out, c, next)
					i++
					continue
				}
				quote = 0
			}
		case depth > 0:
			switch {
			case c == '*' && next == '/':
				depth--
				out = append(out, c, next)
				i++
				continue
			case c == '/' && next == '*':
				depth++
				out = append(out, c, next)
				i++
				continue
			case c == '\n':
				c = ' '
			}
		default:
			switch {
			case c == '\n':
				c = ' '
			case c == '\'' || c == '"':
				quote = c
				escapes = c == '\'' && i > 0 && (s[i-1] == 'E' || s[i-1] == 'e') && (i == 1 || !isNameByte(s[i-2]))
			case c == '-' && next == '-':
				lineComment = true
			case c == '/' && next == '*':
				depth = 1
				out = append(out, c, next)
				i++
				continue
			case c == '$' && (i == 0 || !isNameByte(s[i-1])):
				if tag := dollarTag(s[i:]); tag != "" {
					end := strings.Index(s[i+len(tag):], tag)
					if end < 0 {
						return string(append(out, s[i:]...))
					}
					stop := i + len(tag) + end + len(tag)
					out = append(out, s[i:stop]...)
					i = stop - 1
					continue
				}
			}
		}
		out = append(out, c)
	}
	return string(out)
}

// dollarTag returns the tag ($$ or $name$) that s starts with, or "".
func dollarTag(s string) string {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '$':
			return s[:i+1]
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (i > 1 && c >= '0' && c <= '9'):
		default:
			return ""
		}
	}
	return ""
}

// isNameByte reports whether c can be part of an unquoted name or number.
func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
