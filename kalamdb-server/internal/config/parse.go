package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// document is a parsed configuration file: its values as a generic tree and
// the line of every key, by dotted path ("server.port",
// "auth.users[1].role"). Array-of-tables paths are also indexed without the
// element number, at their first occurrence.
type document struct {
	values map[string]any
	lines  map[string]int
}

// parseDocument parses data as TOML. A syntax error names the line.
func parseDocument(name string, data []byte) (*document, error) {
	var values map[string]any
	if err := toml.Unmarshal(data, &values); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return nil, Errors{{Origin: Origin{Kind: OriginFile, File: name, Line: line}, Key: strings.Join(de.Key(), "."),
				Msg: "invalid TOML: " + strings.TrimPrefix(de.Error(), "toml: ")}}
		}
		return nil, fmt.Errorf("%s: invalid TOML: %w", name, err)
	}
	if values == nil {
		values = map[string]any{}
	}
	return &document{values: values, lines: indexLines(data)}, nil
}

// indexLines maps every key and table of a valid TOML document to the line
// where it is defined.
func indexLines(data []byte) map[string]int {
	lines := map[string]int{}
	arrays := map[string]int{} // array-of-tables path -> elements so far
	var p unstable.Parser
	p.Reset(data)
	line := func(n *unstable.Node) int { return p.Shape(n.Raw).Start.Line }
	record := func(path string, l int) {
		if _, ok := lines[path]; !ok {
			lines[path] = l
		}
	}
	// resolve turns key parts into a path, descending into the last
	// element of any array of tables met on the way.
	resolve := func(prefix string, it unstable.Iterator) (string, int) {
		path, l := prefix, 0
		for it.Next() {
			k := it.Node()
			if l == 0 {
				l = line(k)
			}
			if path != "" {
				path += "."
			}
			path += string(k.Data)
			if n, ok := arrays[path]; ok {
				path = fmt.Sprintf("%s[%d]", path, n-1)
			}
		}
		return path, l
	}
	var walkValue func(path string, v *unstable.Node)
	walkValue = func(path string, v *unstable.Node) {
		switch v.Kind {
		case unstable.InlineTable:
			it := v.Children()
			for it.Next() {
				kv := it.Node()
				sub, l := resolve(path, kv.Key())
				record(sub, l)
				walkValue(sub, kv.Value())
			}
		case unstable.Array:
			it := v.Children()
			for i := 0; it.Next(); i++ {
				walkValue(fmt.Sprintf("%s[%d]", path, i), it.Node())
			}
		}
	}
	current := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			path, l := resolve("", e.Key())
			record(path, l)
			current = path
		case unstable.ArrayTable:
			// The header's own last part names the array: do not descend
			// into its previous element.
			it := e.Key()
			var parts []string
			for it.Next() {
				parts = append(parts, string(it.Node().Data))
			}
			it = e.Key()
			it.Next()
			l := line(it.Node())
			base := ""
			for i, part := range parts {
				if base != "" {
					base += "."
				}
				base += part
				if n, ok := arrays[base]; ok && i < len(parts)-1 {
					base = fmt.Sprintf("%s[%d]", base, n-1)
				}
			}
			n := arrays[base]
			arrays[base] = n + 1
			record(base, l)
			current = fmt.Sprintf("%s[%d]", base, n)
			record(current, l)
		case unstable.KeyValue:
			path, l := resolve(current, e.Key())
			record(path, l)
			walkValue(path, e.Value())
		}
	}
	// Also index array-element paths without their element numbers.
	for path, l := range lines {
		if plain := stripIndexes(path); plain != path {
			if old, ok := lines[plain]; !ok || l < old {
				lines[plain] = l
			}
		}
	}
	return lines
}

func stripIndexes(path string) string {
	if !strings.Contains(path, "[") {
		return path
	}
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (d *document) origin(file, path string) Origin {
	return Origin{Kind: OriginFile, File: file, Line: d.lines[path]}
}

// sections lists the static sections of Config by their TOML name.
func (c *Config) sections() map[string]reflect.Value {
	out := map[string]reflect.Value{}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag := store.TOMLKey(t.Field(i)); tag != "" {
			out[tag] = v.Field(i)
		}
	}
	return out
}

// fieldsOf returns the fields of a section struct by TOML key.
func fieldsOf(v reflect.Value) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag := store.TOMLKey(t.Field(i)); tag != "" {
			out[tag] = v.Field(i)
		}
	}
	return out
}

// scalarKeys lists every dotted key that environment variables and flags
// can set: the scalar fields of the static sections.
func (c *Config) scalarKeys() map[string]reflect.Value {
	out := map[string]reflect.Value{}
	for sec, sv := range c.sections() {
		for key, fv := range fieldsOf(sv) {
			switch fv.Kind() {
			case reflect.String, reflect.Int, reflect.Int64, reflect.Bool:
				out[sec+"."+key] = fv
			case reflect.Struct: // [storage.segment_cache]
				for sub, sf := range fieldsOf(fv) {
					out[sec+"."+key+"."+sub] = sf
				}
			}
		}
	}
	return out
}

func (c *Config) applyFile(file string, d *document, known []string) Errors {
	var errs Errors
	sections := c.sections()
	for _, top := range sortedKeys(d.values) {
		raw := d.values[top]
		sv, ok := sections[top]
		if !ok {
			errs = append(errs, &Error{Key: top, Origin: d.origin(file, top),
				Msg: "unknown key" + suggest(top, keysOf(sections))})
			continue
		}
		table, ok := raw.(map[string]any)
		if !ok {
			errs = append(errs, &Error{Key: top, Origin: d.origin(file, top), Msg: fmt.Sprintf("must be a table ([%s]), got %s", top, store.DescribeTOMLValue(raw))})
			continue
		}
		c.origins[top] = d.origin(file, top)
		switch top {
		case "storage":
			errs = append(errs, c.applyStorage(file, d, table, known)...)
		case "auth":
			errs = append(errs, c.applyAuth(file, d, table)...)
		default:
			errs = append(errs, c.applyTable(file, d, top, sv, table)...)
		}
	}
	return errs
}

// applyTable sets the fields of one static section from a file table.
func (c *Config) applyTable(file string, d *document, prefix string, sv reflect.Value, table map[string]any) Errors {
	var errs Errors
	fields := fieldsOf(sv)
	for _, key := range sortedKeys(table) {
		path := prefix + "." + key
		o := d.origin(file, path)
		fv, ok := fields[key]
		if !ok || (fv.Kind() != reflect.String && fv.Kind() != reflect.Int && fv.Kind() != reflect.Int64 && fv.Kind() != reflect.Bool) {
			errs = append(errs, &Error{Key: path, Origin: o, Msg: "unknown key" + suggest(key, keysOf(fields))})
			continue
		}
		if msg := assign(fv, table[key]); msg != "" {
			errs = append(errs, &Error{Key: path, Origin: o, Msg: msg})
			continue
		}
		c.origins[path] = o
	}
	return errs
}

func (c *Config) applyStorage(file string, d *document, table map[string]any, known []string) Errors {
	var errs Errors
	scalars := map[string]any{}
	for _, key := range sortedKeys(table) {
		sub, isTable := table[key].(map[string]any)
		if !isTable {
			scalars[key] = table[key]
			continue
		}
		path := "storage." + key
		o := d.origin(file, path)
		if key == "segment_cache" {
			c.origins[path] = o
			errs = append(errs, c.applyTable(file, d, path, reflect.ValueOf(&c.Storage.SegmentCache).Elem(), sub)...)
			continue
		}
		if known != nil && !contains(known, key) {
			errs = append(errs, &Error{Key: path, Origin: o,
				Msg: fmt.Sprintf("unknown storage backend section [%s]%s; known backends: %s", path, suggest(key, known), strings.Join(known, ", "))})
			continue
		}
		s := &Section{name: key, origin: o, values: sub, origins: map[string]Origin{}}
		for sk := range sub {
			s.origins[sk] = d.origin(file, path+"."+sk)
		}
		s.lines = map[string]int{}
		for p, l := range d.lines {
			if rest, ok := strings.CutPrefix(p, path+"."); ok {
				s.lines[rest] = l
			}
		}
		s.file = file
		c.Storage.Sections[key] = s
	}
	errs = append(errs, c.applyTable(file, d, "storage", reflect.ValueOf(&c.Storage).Elem(), scalars)...)
	return errs
}

func (c *Config) applyAuth(file string, d *document, table map[string]any) Errors {
	var errs Errors
	for _, key := range sortedKeys(table) {
		path := "auth." + key
		o := d.origin(file, path)
		if key != "users" {
			errs = append(errs, &Error{Key: path, Origin: o, Msg: "unknown key" + suggest(key, []string{"users"})})
			continue
		}
		list, ok := table[key].([]any)
		if !ok {
			errs = append(errs, &Error{Key: path, Origin: o, Msg: fmt.Sprintf("must be an array of tables ([[auth.users]]), got %s", store.DescribeTOMLValue(table[key]))})
			continue
		}
		c.origins[path] = o
		for i, el := range list {
			ep := fmt.Sprintf("auth.users[%d]", i)
			m, ok := el.(map[string]any)
			if !ok {
				errs = append(errs, &Error{Key: ep, Origin: d.origin(file, ep), Msg: fmt.Sprintf("must be a table with id, role and token, got %s", store.DescribeTOMLValue(el))})
				continue
			}
			var u User
			c.origins[ep] = d.origin(file, ep)
			errs = append(errs, c.applyTable(file, d, ep, reflect.ValueOf(&u).Elem(), m)...)
			c.Auth.Users = append(c.Auth.Users, u)
		}
	}
	return errs
}

// assign stores raw, a decoded TOML value, into fv; it returns what is wrong
// or "".
func assign(fv reflect.Value, raw any) string {
	switch fv.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return "must be a string, got " + store.DescribeTOMLValue(raw)
		}
		fv.SetString(s)
	case reflect.Int, reflect.Int64:
		n, ok := raw.(int64)
		if !ok {
			return "must be an integer, got " + store.DescribeTOMLValue(raw)
		}
		if fv.OverflowInt(n) {
			return fmt.Sprintf("integer %d is out of range", n)
		}
		fv.SetInt(n)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return "must be true or false, got " + store.DescribeTOMLValue(raw)
		}
		fv.SetBool(b)
	default:
		return "cannot be set here"
	}
	return ""
}

// assignText stores s, text from an environment variable or flag, into fv.
func assignText(fv reflect.Value, s string) string {
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || fv.OverflowInt(n) {
			return fmt.Sprintf("must be an integer, got %q", s)
		}
		fv.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Sprintf("must be true or false, got %q", s)
		}
		fv.SetBool(b)
	default:
		return "cannot be set from text"
	}
	return ""
}

// textValue turns text from an environment variable or flag into the TOML
// value it spells (an integer, a float, a boolean) or else a string, for the
// backend sections whose types the server does not know.
func textValue(s string) any {
	if strings.ContainsAny(s, "\n\r") {
		return s
	}
	var m map[string]any
	if err := toml.Unmarshal([]byte("v = "+s), &m); err == nil && len(m) == 1 {
		switch v := m["v"].(type) {
		case int64, float64, bool:
			return v
		}
	}
	return s
}

// envName is the environment variable for a dotted key.
func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

func (c *Config) applyEnv(environ []string) Errors {
	var errs Errors
	byEnv := map[string]string{}
	scalars := c.scalarKeys()
	for path := range scalars {
		byEnv[envName(path)] = path
	}
	sectionPrefixes := map[string]string{} // KALAMDB_STORAGE_ROCKSDB_ -> rocksdb
	for _, name := range c.knownSectionNames() {
		sectionPrefixes[envName("storage."+name)+"_"] = name
	}
	var vars []string
	values := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) || k == EnvConfigPath {
			continue
		}
		if _, seen := values[k]; !seen {
			vars = append(vars, k)
		}
		values[k] = v
	}
	sort.Strings(vars)
	for _, k := range vars {
		v := values[k]
		o := Origin{Kind: OriginEnv, Name: k}
		if path, ok := byEnv[k]; ok {
			if msg := assignText(scalars[path], v); msg != "" {
				errs = append(errs, &Error{Key: path, Origin: o, Msg: msg})
				continue
			}
			c.origins[path] = o
			continue
		}
		if name, key, ok := matchSectionEnv(k, sectionPrefixes); ok {
			c.setSectionValue(name, key, textValue(v), o)
			continue
		}
		hint := suggest(k, keysOf(byEnv))
		if hint == "" && !c.sectionVariable(k) {
			// Not meant for the server: a client's KALAMDB_TOKEN or
			// KALAMDB_URL, say. It must not stop the start.
			c.warnings = append(c.warnings, fmt.Sprintf("environment variable %s is not a configuration key; the server ignores it (its variables are KALAMDB_<SECTION>_<KEY>, for example KALAMDB_SERVER_PORT)", k))
			continue
		}
		errs = append(errs, &Error{Origin: o, Msg: "unknown configuration variable" + hint +
			"; variables are KALAMDB_<SECTION>_<KEY>, for example KALAMDB_SERVER_PORT"})
	}
	return errs
}

// sectionVariable reports whether the environment variable k names a
// section of the configuration (KALAMDB_SERVER_…, KALAMDB_STORAGE_…): an
// unknown key there is a mistake, not a variable meant for someone else.
func (c *Config) sectionVariable(k string) bool {
	for sec := range c.sections() {
		if strings.HasPrefix(k, envName(sec)+"_") {
			return true
		}
	}
	return false
}

// matchSectionEnv splits KALAMDB_STORAGE_<NAME>_<KEY> into the section name
// and the lower-case key, preferring the longest section name.
func matchSectionEnv(k string, prefixes map[string]string) (name, key string, ok bool) {
	best := ""
	for p := range prefixes {
		if strings.HasPrefix(k, p) && len(p) > len(best) && len(k) > len(p) {
			best = p
		}
	}
	if best == "" {
		return "", "", false
	}
	return prefixes[best], strings.ToLower(strings.TrimPrefix(k, best)), true
}

// knownSectionNames is every [storage.<name>] that env and flags may target.
func (c *Config) knownSectionNames() []string {
	names := append([]string(nil), c.knownSections...)
	for n := range c.Storage.Sections {
		if !contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

func (c *Config) setSectionValue(name, key string, v any, o Origin) {
	s, ok := c.Storage.Sections[name]
	if !ok {
		s = &Section{name: name, origin: o, values: map[string]any{}, origins: map[string]Origin{}, lines: map[string]int{}}
		c.Storage.Sections[name] = s
	}
	s.values[key] = v
	s.origins[key] = o
}

func (c *Config) applyFlags(flags map[string]FlagValue) Errors {
	var errs Errors
	scalars := c.scalarKeys()
	for _, path := range sortedKeys(flags) {
		f := flags[path]
		o := Origin{Kind: OriginFlag, Name: f.Flag}
		if fv, ok := scalars[path]; ok {
			if msg := assignText(fv, f.Value); msg != "" {
				errs = append(errs, &Error{Key: path, Origin: o, Msg: msg})
				continue
			}
			c.origins[path] = o
			continue
		}
		if rest, ok := strings.CutPrefix(path, "storage."); ok {
			if name, key, ok := strings.Cut(rest, "."); ok && name != "" && key != "" {
				if c.knownSections == nil || contains(c.knownSectionNames(), name) {
					c.setSectionValue(name, key, textValue(f.Value), o)
					continue
				}
				errs = append(errs, &Error{Key: path, Origin: o, Msg: fmt.Sprintf("unknown storage backend %q; known backends: %s", name, strings.Join(c.knownSections, ", "))})
				continue
			}
		}
		errs = append(errs, &Error{Key: path, Origin: o, Msg: "unknown key" + suggest(path, keysOf(scalars))})
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func keysOf[V any](m map[string]V) []string { return sortedKeys(m) }

// suggest returns `; did you mean "x"?` for the closest candidate within a
// small edit distance, or "".
func suggest(got string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(got), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
