package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// sqlShell is the state of the sql command.
type sqlShell struct {
	env       Env
	url       string
	token     string
	namespace string
	format    string
	client    *http.Client
}

// errStatementFailed makes the command exit 1 after the failure was printed.
var errStatementFailed = errors.New("a statement failed")

func newSQL(env Env) *cobra.Command {
	sh := &sqlShell{env: env, client: &http.Client{Timeout: 5 * time.Minute}}
	var commands []string
	var file string
	cmd := &cobra.Command{
		Use:   "sql",
		Short: "Run SQL against a server: -c statements, -f file, standard input, or interactively on a terminal",
		Long: `Sends SQL to a server's POST /v1/api/sql and prints the results.

Statements come from -c (each flag one request, in order), -f (the file as one
request), or standard input: piped, it is one request; on a terminal, each
statement ending with ';' is sent as it is completed (\q or end of input quits),
with line editing and a history of statements kept across sessions in
$KALAMDB_HISTFILE (default ~/.kalamdb_history; empty keeps no file).
The token is --token or the KALAMDB_TOKEN environment variable. The exit
status is 1 when a statement fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sh.token == "" {
				sh.token = lookupEnv(env.Environ, "KALAMDB_TOKEN")
			}
			if sh.token == "" {
				return usageError{errors.New("no token: give --token or set KALAMDB_TOKEN")}
			}
			switch sh.format {
			case "table", "json", "csv":
			default:
				return usageError{fmt.Errorf("--format is %q; it must be table, json or csv", sh.format)}
			}
			sh.url = strings.TrimRight(sh.url, "/")
			if len(commands) > 0 && file != "" {
				return usageError{errors.New("give -c or -f, not both")}
			}
			switch {
			case len(commands) > 0:
				for _, c := range commands {
					if !sh.run(c) {
						return errStatementFailed
					}
				}
				return nil
			case file != "":
				data, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if !sh.run(string(data)) {
					return errStatementFailed
				}
				return nil
			}
			if isTerminal(env.Stdin) {
				return sh.interactive()
			}
			if env.Stdin == nil {
				return nil
			}
			data, err := io.ReadAll(env.Stdin)
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(data)) == "" {
				return nil
			}
			if !sh.run(string(data)) {
				return errStatementFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&sh.url, "url", "http://127.0.0.1:8080", "the server's base URL")
	f.StringVar(&sh.token, "token", "", "the bearer token (default $KALAMDB_TOKEN)")
	f.StringVarP(&sh.namespace, "namespace", "n", "", "the default namespace of unqualified table names")
	f.StringVar(&sh.format, "format", "table", "output: table, json or csv")
	f.StringArrayVarP(&commands, "command", "c", nil, "statements to run (repeatable)")
	f.StringVarP(&file, "file", "f", "", "a file of statements to run")
	return cmd
}

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// isTerminal reports whether r is a character device (a terminal).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// lineReader reads the lines of an interactive session, showing prompt
// first.
type lineReader interface {
	readLine(prompt string) (string, error)
}

// plainLines reads lines from a reader that is not a terminal, printing
// the prompt to out.
type plainLines struct {
	sc  *bufio.Scanner
	out io.Writer
}

func (p *plainLines) readLine(prompt string) (string, error) {
	fmt.Fprint(p.out, prompt)
	if !p.sc.Scan() {
		if err := p.sc.Err(); err != nil {
			return "", err
		}
		return "", io.EOF
	}
	return p.sc.Text(), nil
}

// termLines reads lines from a terminal in raw mode, with line editing
// and the history of statements (the arrow keys recall them).
type termLines struct{ t *term.Terminal }

func (l termLines) readLine(prompt string) (string, error) {
	l.t.SetPrompt(prompt)
	return l.t.ReadLine()
}

// interactive reads statements line by line, sending each once a line ends
// with ';'. On a terminal it edits lines and keeps the history of
// statements, in the history file across sessions (see history).
func (sh *sqlShell) interactive() error {
	var hist *history
	var lines lineReader = &plainLines{sc: bufio.NewScanner(sh.env.Stdin), out: sh.env.Stdout}
	lines.(*plainLines).sc.Buffer(make([]byte, 64<<10), 16<<20)
	if f, ok := sh.env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		old, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return fmt.Errorf("setting up the terminal: %w", err)
		}
		defer func() { _ = term.Restore(int(f.Fd()), old) }()
		t := term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{f, sh.env.Stdout}, "")
		// In raw mode a line ends with "\r\n": everything is printed
		// through the terminal, which adds the "\r".
		env := sh.env
		sh.env.Stdout, sh.env.Stderr = t, t
		defer func() { sh.env = env }()
		lines = termLines{t}
		hist = openHistory(historyPath(env.Environ), maxHistory, t)
		defer hist.close()
		t.History = hist
	}
	send := func(stmt string) bool {
		if hist != nil {
			hist.record(stmt)
		}
		return sh.run(stmt)
	}
	out := sh.env.Stdout
	fmt.Fprintln(out, `kalamdb-server sql: statements end with ';', \q quits`)
	var buf strings.Builder
	failed := false
	for {
		prompt := "kalamdb> "
		if buf.Len() > 0 {
			prompt = "      -> "
		}
		line, err := lines.readLine(prompt)
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(out)
			break
		}
		if err != nil {
			return err
		}
		if buf.Len() == 0 && strings.TrimSpace(line) == `\q` {
			break
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if !send(buf.String()) {
				failed = true
			}
			buf.Reset()
		}
	}
	if strings.TrimSpace(buf.String()) != "" && !send(buf.String()) {
		failed = true
	}
	if failed {
		return errStatementFailed
	}
	return nil
}

// sqlResponse is the endpoint's answer.
type sqlResponse struct {
	Status  string `json:"status"`
	Results []struct {
		Schema []struct {
			Name string `json:"name"`
		} `json:"schema"`
		Rows     [][]any `json:"rows"`
		RowCount int     `json:"row_count"`
		Message  string  `json:"message"`
	} `json:"results"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// run sends one request and prints its answer; it reports success.
func (sh *sqlShell) run(sql string) bool {
	body, _ := json.Marshal(map[string]any{"sql": sql, "namespace_id": sh.namespace})
	req, err := http.NewRequest(http.MethodPost, sh.url+"/v1/api/sql", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(sh.env.Stderr, "ERROR: %v\n", err)
		return false
	}
	req.Header.Set("Authorization", "Bearer "+sh.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := sh.client.Do(req)
	if err != nil {
		fmt.Fprintf(sh.env.Stderr, "ERROR: %v\n", err)
		return false
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintf(sh.env.Stderr, "ERROR: reading the answer: %v\n", err)
		return false
	}
	var r sqlResponse
	if err := json.Unmarshal(data, &r); err != nil {
		fmt.Fprintf(sh.env.Stderr, "ERROR: the server answered %s: %s\n", resp.Status, strings.TrimSpace(string(data)))
		return false
	}
	if r.Error != nil || resp.StatusCode != http.StatusOK {
		if r.Error == nil {
			// The REST envelope (401 and the like): {"error":{…}} too.
			fmt.Fprintf(sh.env.Stderr, "ERROR: the server answered %s\n", resp.Status)
			return false
		}
		if sh.format == "json" {
			fmt.Fprintln(sh.env.Stdout, strings.TrimSpace(string(data)))
		}
		fmt.Fprintf(sh.env.Stderr, "ERROR %s: %s\n", r.Error.Code, r.Error.Message)
		return false
	}
	if sh.format == "json" {
		fmt.Fprintln(sh.env.Stdout, strings.TrimSpace(string(data)))
		return true
	}
	for _, res := range r.Results {
		names := make([]string, len(res.Schema))
		for i, f := range res.Schema {
			names[i] = f.Name
		}
		cells := make([][]string, len(res.Rows))
		for i, row := range res.Rows {
			cells[i] = make([]string, len(row))
			for j, v := range row {
				cells[i][j] = cell(v)
			}
		}
		if sh.format == "csv" {
			if len(names) > 0 {
				w := csv.NewWriter(sh.env.Stdout)
				_ = w.Write(names)
				_ = w.WriteAll(cells)
			} else if res.Message != "" {
				fmt.Fprintln(sh.env.Stderr, res.Message)
			}
			continue
		}
		if len(names) > 0 {
			printTable(sh.env.Stdout, names, cells)
			fmt.Fprintf(sh.env.Stdout, "(%d row%s)\n", res.RowCount, plural(res.RowCount))
		}
		if res.Message != "" {
			fmt.Fprintln(sh.env.Stdout, res.Message)
		}
	}
	return true
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// cell is a value as a table or CSV shows it: null as NULL, numbers as JSON
// writes them.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// printTable writes rows under a header, in columns padded to their widest
// cell.
func printTable(w io.Writer, names []string, rows [][]string) {
	width := make([]int, len(names))
	for i, n := range names {
		width[i] = len([]rune(n))
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], len([]rune(c)))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len([]rune(c))))
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(names)
	sep := make([]string, len(names))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	fmt.Fprintln(w, strings.ReplaceAll(strings.Join(sep, "-+-"), " ", "-"))
	for _, r := range rows {
		line(r)
	}
}
