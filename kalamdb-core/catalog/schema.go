// Package catalog holds KalamDB's namespaces and table definitions: their
// types, their validation, and their persistence through a StorageBackend in
// the system partitions named by package layout.
//
// A Table is immutable once created; the *Table values the catalog hands out
// are shared and must not be modified.
package catalog

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// TableType is the kind of a table.
type TableType string

// The table types.
const (
	// UserTable: every row belongs to one user, who alone can reach it.
	UserTable TableType = "user"
	// SharedTable: rows shared by every user.
	SharedTable TableType = "shared"
	// StreamTable: append-only events kept for a TTL, never flushed.
	StreamTable TableType = "stream"
)

// Limits of a table definition and of row values.
const (
	// MaxColumnNameLen is the longest column name, in bytes.
	MaxColumnNameLen = 64
	// MaxColumns is the most columns a table may have.
	MaxColumns = 1024
	// MaxKeyLen is the longest string or bytes primary-key value, in bytes.
	// With MaxUserIDLen it keeps every key the table stores write within
	// store.MaxKeySize, however the key encoding escapes their bytes
	// (TestLongestKeysFitTheStore).
	MaxKeyLen = 1024
	// MaxUserIDLen is the longest user id, in bytes.
	MaxUserIDLen = 256
)

// System column names. User columns may not start with '_'.
const (
	ColumnSeq     = "_seq"
	ColumnUpdated = "_updated"
	ColumnDeleted = "_deleted"
)

// DefaultFlushPolicy is the flush policy of a user or shared table created
// without one.
var DefaultFlushPolicy = FlushPolicy{RowLimit: 10_000, Interval: 10 * time.Minute}

// Column is a column of a table.
type Column struct {
	// Name: lowercase ASCII letters, digits and '_', starting with a letter.
	Name string `json:"name"`
	// Type is the column's type.
	Type row.Type `json:"type"`
	// Nullable columns accept null; others reject it.
	Nullable bool `json:"nullable,omitempty"`
}

// FlushPolicy says when the buffered rows of a user or shared table are
// flushed to the cold tier: after RowLimit buffered rows, after Interval, or
// both (whichever comes first). Zero fields are off.
type FlushPolicy struct {
	RowLimit int64         `json:"row_limit,omitempty"`
	Interval time.Duration `json:"interval,omitempty"`
}

// IsZero reports whether no trigger is set.
func (f FlushPolicy) IsZero() bool { return f.RowLimit == 0 && f.Interval == 0 }

// StreamOptions bound the events a stream table keeps.
type StreamOptions struct {
	// TTL: events older than this are evicted (and hidden from reads).
	TTL time.Duration `json:"ttl,omitempty"`
	// MaxBuffer: when more events than this are kept, the oldest are evicted.
	MaxBuffer int64 `json:"max_buffer,omitempty"`
	// MaxBytes: when the events kept take more bytes than this (keys and
	// encoded values, as the storage backend holds them), the oldest are
	// evicted. Zero: no bound in bytes.
	MaxBytes int64 `json:"max_bytes,omitempty"`
}

// IsZero reports whether no option is set.
func (s StreamOptions) IsZero() bool { return s.TTL == 0 && s.MaxBuffer == 0 && s.MaxBytes == 0 }

// Namespace groups tables.
type Namespace struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Table is a table definition. Fill Namespace, Name, Type, Columns and,
// for user and shared tables, PrimaryKey (and optionally Flush); for stream
// tables fill Stream. The catalog assigns ID and CreatedAt.
type Table struct {
	ID         uint64        `json:"id"`
	Namespace  string        `json:"namespace"`
	Name       string        `json:"name"`
	Type       TableType     `json:"type"`
	Columns    []Column      `json:"columns"`
	PrimaryKey string        `json:"primary_key,omitempty"`
	Flush      FlushPolicy   `json:"flush,omitzero"`
	Stream     StreamOptions `json:"stream,omitzero"`
	CreatedAt  time.Time     `json:"created_at"`

	// Derived by prepare.
	types  []row.Type
	index  map[string]int
	pk     int
	prefix string // "ns.table" for messages
	part   store.Partition
}

// FullName returns "namespace.table".
func (t *Table) FullName() string { return t.Namespace + "." + t.Name }

// Types returns the column types in column order. The slice is shared: do
// not modify it.
func (t *Table) Types() []row.Type { return t.types }

// ColumnIndex returns the position of the column called name.
func (t *Table) ColumnIndex(name string) (int, bool) {
	i, ok := t.index[name]
	return i, ok
}

// PrimaryKeyIndex returns the position of the primary-key column, or -1 for
// a stream table.
func (t *Table) PrimaryKeyIndex() int { return t.pk }

// PrimaryKeyColumn returns the primary-key column (the zero Column for a
// stream table).
func (t *Table) PrimaryKeyColumn() Column {
	if t.pk < 0 {
		return Column{}
	}
	return t.Columns[t.pk]
}

// ValidateName checks a namespace or table name: 1 to layout.MaxNameLen
// bytes of lowercase ASCII letters, digits and '_', starting with a letter.
// what is "namespace" or "table", for the message.
func ValidateName(what, name string) error {
	if err := checkIdent(name, layout.MaxNameLen); err != "" {
		return fmt.Errorf("%w: %s name %s %s", core.ErrInvalidSchema, what, quoteName(name), err)
	}
	return nil
}

// cutName returns the first 64 bytes of a name that is far too long to be
// one (without splitting a character), for a message, and whether it cut.
func cutName(name string) (string, bool) {
	n := 64
	if len(name) <= n {
		return name, false
	}
	for n > 0 && !utf8.RuneStart(name[n]) {
		n--
	}
	return name[:n], true
}

// shortName is name, cut after 64 bytes with a trailing "…".
func shortName(name string) string {
	if s, cut := cutName(name); cut {
		return s + "…"
	}
	return name
}

// quoteName quotes name, cut after 64 bytes with "…" after the quote.
func quoteName(name string) string {
	s, cut := cutName(name)
	if cut {
		return strconv.Quote(s) + "…"
	}
	return strconv.Quote(s)
}

func checkIdent(name string, maxLen int) string {
	if name == "" {
		return "is empty"
	}
	if len(name) > maxLen {
		return fmt.Sprintf("is %d bytes, the limit is %d", len(name), maxLen)
	}
	if c := name[0]; c < 'a' || c > 'z' {
		r, _ := utf8.DecodeRuneInString(name)
		return fmt.Sprintf("must start with a lowercase letter (a-z), not %s", describeRune(name, r))
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Sprintf("has %s at byte offset %d; allowed are lowercase letters (a-z), digits and '_'", describeRune(name[i:], r), i)
		}
	}
	return ""
}

// describeRune names the character r that s starts with: quoted when it is
// printable, as its code point otherwise, or as the byte when s is not
// UTF-8 there.
func describeRune(s string, r rune) string {
	if r == utf8.RuneError {
		if _, size := utf8.DecodeRuneInString(s); size <= 1 {
			return fmt.Sprintf("the byte 0x%02x (not UTF-8)", s[0])
		}
	}
	if unicode.IsPrint(r) {
		return fmt.Sprintf("%q (%U)", r, r)
	}
	return fmt.Sprintf("%U", r)
}

func schemaErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", core.ErrInvalidSchema, fmt.Sprintf(format, args...))
}

// Validate checks the definition and fills in defaults (the flush policy of
// user and shared tables). The error wraps core.ErrInvalidSchema, and is a
// *core.ColumnError when a column is at fault.
func (t *Table) Validate() error {
	if err := ValidateName("namespace", t.Namespace); err != nil {
		return err
	}
	if err := ValidateName("table", t.Name); err != nil {
		return err
	}
	switch t.Type {
	case UserTable, SharedTable, StreamTable:
	case "":
		return schemaErr("table %s has no type; it must be user, shared or stream", t.FullName())
	default:
		return schemaErr("table %s has type %q; it must be user, shared or stream", t.FullName(), t.Type)
	}
	if len(t.Columns) == 0 {
		return schemaErr("table %s has no columns", t.FullName())
	}
	if len(t.Columns) > MaxColumns {
		return schemaErr("table %s has %d columns, the limit is %d", t.FullName(), len(t.Columns), MaxColumns)
	}
	seen := make(map[string]bool, len(t.Columns))
	for i, c := range t.Columns {
		if c.Name == "" {
			return schemaErr("column %d of %s has no name", i, t.FullName())
		}
		if strings.HasPrefix(c.Name, "_") {
			return core.InvalidSchema(c.Name, "names starting with '_' are reserved for system columns (%s, %s, %s)", ColumnSeq, ColumnUpdated, ColumnDeleted)
		}
		if err := checkIdent(c.Name, MaxColumnNameLen); err != "" {
			return core.InvalidSchema(shortName(c.Name), "name %s", err)
		}
		if seen[c.Name] {
			return core.InvalidSchema(c.Name, "is defined twice")
		}
		seen[c.Name] = true
		if !c.Type.Valid() {
			return core.InvalidSchema(c.Name, "has no valid type (got %s); the types are int32, int64, float64, bool, string, bytes and timestamp", c.Type)
		}
	}
	if t.Type == StreamTable {
		if t.PrimaryKey != "" {
			return core.InvalidSchema(t.PrimaryKey, "stream table %s cannot have a primary key: events are identified by _seq", t.FullName())
		}
		if !t.Flush.IsZero() {
			return schemaErr("stream table %s cannot have a flush policy: streams are never flushed", t.FullName())
		}
		if t.Stream.TTL <= 0 {
			return schemaErr("stream table %s needs a positive TTL, got %v", t.FullName(), t.Stream.TTL)
		}
		if t.Stream.MaxBuffer <= 0 {
			return schemaErr("stream table %s needs a positive maximum buffer, got %d", t.FullName(), t.Stream.MaxBuffer)
		}
		if t.Stream.MaxBytes < 0 {
			return schemaErr("stream table %s has a negative maximum of bytes, %d", t.FullName(), t.Stream.MaxBytes)
		}
		return nil
	}
	if !t.Stream.IsZero() {
		return schemaErr("%s table %s cannot have stream options (TTL, maximum buffer, maximum bytes)", t.Type, t.FullName())
	}
	if t.PrimaryKey == "" {
		return schemaErr("%s table %s has no primary key", t.Type, t.FullName())
	}
	i := slices.IndexFunc(t.Columns, func(c Column) bool { return c.Name == t.PrimaryKey })
	if i < 0 {
		return core.InvalidSchema(t.PrimaryKey, "is the primary key of %s but is not one of its columns", t.FullName())
	}
	pk := t.Columns[i]
	if pk.Nullable {
		return core.InvalidSchema(pk.Name, "is the primary key and cannot be nullable")
	}
	switch pk.Type {
	case row.TypeInt32, row.TypeInt64, row.TypeString, row.TypeBytes, row.TypeTimestamp:
	default:
		return core.InvalidSchema(pk.Name, "is the primary key and has type %s; primary keys are int32, int64, string, bytes or timestamp", pk.Type)
	}
	if t.Flush.RowLimit < 0 || t.Flush.Interval < 0 {
		return schemaErr("table %s has a negative flush policy (rows %d, interval %v)", t.FullName(), t.Flush.RowLimit, t.Flush.Interval)
	}
	if t.Flush.IsZero() {
		t.Flush = DefaultFlushPolicy
	}
	return nil
}

// Partition returns the partition that holds the table's rows.
func (t *Table) Partition() store.Partition { return t.part }

// prepare computes the derived fields of a valid table.
func (t *Table) prepare() error {
	p, err := layout.TablePartition(t.ID, t.Namespace, t.Name)
	if err != nil {
		return fmt.Errorf("%w: table %s: %v", core.ErrInvalidSchema, t.FullName(), err)
	}
	t.part = p
	t.types = make([]row.Type, len(t.Columns))
	t.index = make(map[string]int, len(t.Columns))
	t.pk = -1
	for i, c := range t.Columns {
		t.types[i] = c.Type
		t.index[c.Name] = i
		if t.Type != StreamTable && c.Name == t.PrimaryKey {
			t.pk = i
		}
	}
	t.prefix = t.FullName()
	return nil
}

// clone returns a deep copy of the exported definition.
func (t *Table) clone() *Table {
	c := &Table{ID: t.ID, Namespace: t.Namespace, Name: t.Name, Type: t.Type,
		Columns: slices.Clone(t.Columns), PrimaryKey: t.PrimaryKey, Flush: t.Flush,
		Stream: t.Stream, CreatedAt: t.CreatedAt}
	return c
}

// ValidateValues checks that vals is a row of t: one value per column, each
// null only in a nullable column and otherwise of the column's type, strings
// valid UTF-8, and a primary key of acceptable length. The error is a
// *core.ColumnError of kind ErrInvalidRow.
func (t *Table) ValidateValues(vals []row.Value) error {
	if len(vals) != len(t.Columns) {
		return fmt.Errorf("%w: %s has %d columns, the row has %d values", core.ErrInvalidRow, t.prefix, len(t.Columns), len(vals))
	}
	for i := range vals {
		if err := t.checkValue(i, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func (t *Table) checkValue(i int, v row.Value) error {
	c := &t.Columns[i]
	if v.IsNull() {
		if !c.Nullable {
			return core.InvalidRow(c.Name, "is not nullable and the value is null")
		}
		return nil
	}
	if v.Type() != c.Type {
		return core.InvalidRow(c.Name, "has type %s, the value is %s", c.Type, v.Type())
	}
	if !v.ValidUTF8() {
		return core.InvalidRow(c.Name, "is a string column and the value is not valid UTF-8")
	}
	if err := row.CheckTimestamp(v); err != nil {
		return core.InvalidRow(c.Name, "%v", err)
	}
	if i == t.pk {
		if v.Len() > MaxKeyLen {
			return core.InvalidRow(c.Name, "is the primary key; the value is %d bytes, the limit is %d", v.Len(), MaxKeyLen)
		}
		if v.Len() == 0 && (c.Type == row.TypeString || c.Type == row.TypeBytes) {
			return core.InvalidRow(c.Name, "is the primary key and the value is empty; a primary key needs at least one byte")
		}
	}
	return nil
}

// ValuesFromMap builds a row of t from column names to Go values (see
// row.FromAny for what each type accepts). A column missing from m is null,
// which only a nullable column accepts; a name that is not a column is an
// error. Errors are *core.ColumnError of kind ErrInvalidRow.
func (t *Table) ValuesFromMap(m map[string]any) ([]row.Value, error) {
	for name := range m {
		if _, ok := t.index[name]; !ok {
			return nil, t.unknownColumn(name)
		}
	}
	vals := make([]row.Value, len(t.Columns))
	for i, c := range t.Columns {
		x, ok := m[c.Name]
		if ok {
			v, err := row.FromAny(c.Type, x)
			if err != nil {
				return nil, core.InvalidRow(c.Name, "%v", err)
			}
			vals[i] = v
		}
		if err := t.checkValue(i, vals[i]); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

func (t *Table) unknownColumn(name string) error {
	if strings.HasPrefix(name, "_") {
		return core.InvalidRow(name, "is a system column (or reserved name) and cannot be written")
	}
	return core.InvalidRow(name, "is not a column of %s", t.prefix)
}

// PatchFromMap converts a partial update, column names to Go values, into
// values for Patch. See ValuesFromMap.
func (t *Table) PatchFromMap(m map[string]any) (map[string]row.Value, error) {
	out := make(map[string]row.Value, len(m))
	for name, x := range m {
		i, ok := t.index[name]
		if !ok {
			return nil, t.unknownColumn(name)
		}
		v, err := row.FromAny(t.Columns[i].Type, x)
		if err != nil {
			return nil, core.InvalidRow(name, "%v", err)
		}
		out[name] = v
	}
	return out, nil
}

// ValidatePatch checks a partial update: at least one column, every name a
// column other than the primary key, every value fit for its column. Errors
// are *core.ColumnError of kind ErrInvalidRow, naming the first bad column
// in name order.
func (t *Table) ValidatePatch(set map[string]row.Value) error {
	if len(set) == 0 {
		return fmt.Errorf("%w: the update of %s sets no column", core.ErrInvalidRow, t.prefix)
	}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		i, ok := t.index[name]
		if !ok {
			return t.unknownColumn(name)
		}
		if i == t.pk {
			return core.InvalidRow(name, "is the primary key and cannot be updated")
		}
		if err := t.checkValue(i, set[name]); err != nil {
			return err
		}
	}
	return nil
}

// Patch applies set, checked by ValidatePatch, to a copy of vals and
// returns the copy.
func (t *Table) Patch(vals []row.Value, set map[string]row.Value) ([]row.Value, error) {
	if err := t.ValidatePatch(set); err != nil {
		return nil, err
	}
	if len(vals) != len(t.Columns) {
		return nil, fmt.Errorf("%w: %s has %d columns, the row has %d values", core.ErrInvalidRow, t.prefix, len(t.Columns), len(vals))
	}
	out := slices.Clone(vals)
	for name, v := range set {
		out[t.index[name]] = v
	}
	return out, nil
}

// Map returns r as column names to Go values (see row.Value.Any), with the
// system columns _seq, _updated (a time.Time) and _deleted.
func (t *Table) Map(r row.Row) map[string]any {
	m := make(map[string]any, len(t.Columns)+3)
	for i, c := range t.Columns {
		if i < len(r.Values) {
			m[c.Name] = r.Values[i].Any()
		}
	}
	m[ColumnSeq] = r.Seq
	m[ColumnUpdated] = r.UpdatedTime()
	m[ColumnDeleted] = r.Deleted
	return m
}

// AppendKey appends the order-preserving encoding of primary-key value pk to
// dst (see package keys). The error, a *core.ColumnError of kind
// ErrInvalidRow, reports a value of the wrong type, null or too long.
func (t *Table) AppendKey(dst []byte, pk row.Value) ([]byte, error) {
	if t.pk < 0 {
		return dst, fmt.Errorf("%w: stream table %s has no primary key", core.ErrWrongTableType, t.prefix)
	}
	if err := t.checkValue(t.pk, pk); err != nil {
		return dst, err
	}
	switch pk.Type() {
	case row.TypeInt32:
		return keys.AppendInt32(dst, pk.Int32()), nil
	case row.TypeInt64:
		return keys.AppendInt64(dst, pk.Int64()), nil
	case row.TypeTimestamp:
		return keys.AppendInt64(dst, pk.Micros()), nil
	case row.TypeString:
		return keys.AppendString(dst, pk.Str()), nil
	default: // bytes
		return keys.AppendBytes(dst, pk.Bytes()), nil
	}
}

// DecodeKey decodes a primary-key value written by AppendKey and returns the
// rest of src.
func (t *Table) DecodeKey(src []byte) (row.Value, []byte, error) {
	if t.pk < 0 {
		return row.Value{}, nil, fmt.Errorf("%w: stream table %s has no primary key", core.ErrWrongTableType, t.prefix)
	}
	var (
		v    row.Value
		rest []byte
		err  error
	)
	switch t.types[t.pk] {
	case row.TypeInt32:
		var i int32
		i, rest, err = keys.DecodeInt32(src)
		v = row.Int32(i)
	case row.TypeInt64:
		var i int64
		i, rest, err = keys.DecodeInt64(src)
		v = row.Int64(i)
	case row.TypeTimestamp:
		var i int64
		i, rest, err = keys.DecodeInt64(src)
		v = row.TimestampMicros(i)
	case row.TypeString:
		var b []byte
		b, rest, err = keys.DecodeBytes(src)
		v = row.String(string(b))
	default:
		var b []byte
		b, rest, err = keys.DecodeBytes(src)
		v = row.Bytes(b)
	}
	if err != nil {
		return row.Value{}, nil, fmt.Errorf("%w: primary key of %s: %v", core.ErrCorrupt, t.prefix, err)
	}
	return v, rest, nil
}

// ValidateUserID checks a user id: 1 to MaxUserIDLen bytes, any bytes. The
// error wraps core.ErrInvalidArgument.
func ValidateUserID(user string) error {
	if user == "" {
		return fmt.Errorf("%w: user id is empty", core.ErrInvalidArgument)
	}
	if len(user) > MaxUserIDLen {
		return fmt.Errorf("%w: user id is %d bytes, the limit is %d", core.ErrInvalidArgument, len(user), MaxUserIDLen)
	}
	return nil
}

// sortTables orders tables by namespace then name.
func sortTables(ts []*Table) {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Namespace != ts[j].Namespace {
			return ts[i].Namespace < ts[j].Namespace
		}
		return ts[i].Name < ts[j].Name
	})
}
