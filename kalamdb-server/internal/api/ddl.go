package api

import (
	"context"
	"errors"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"net/http"
	"strings"
	"time"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

// Error codes of the table layer.
const (
	CodeNamespaceNotFound = "NAMESPACE_NOT_FOUND"
	CodeNamespaceExists   = "NAMESPACE_EXISTS"
	CodeNamespaceNotEmpty = "NAMESPACE_NOT_EMPTY"
	CodeTableNotFound     = "TABLE_NOT_FOUND"
	CodeTableExists       = "TABLE_EXISTS"
	CodeRowNotFound       = "ROW_NOT_FOUND"
	CodeDuplicateKey      = "DUPLICATE_KEY"
	CodeInvalidSchema     = "INVALID_SCHEMA"
	CodeInvalidRow        = "INVALID_ROW"
	CodeInvalidArgument   = "INVALID_ARGUMENT"
	CodeWrongTableType    = "WRONG_TABLE_TYPE"
	CodeWriteConflict     = "WRITE_CONFLICT"
	CodeTableBusy         = "TABLE_BUSY"
)

func init() {
	classifyDomain = classifyCore
}

// classifyCore maps kalamdb-core's errors to responses. Their messages name
// the namespace, table, row or column at fault and carry no server detail;
// core.ErrCorrupt and anything unknown stay 500s.
func classifyCore(err error) *Error {
	for _, m := range []struct {
		target error
		status int
		code   string
	}{
		{core.ErrNamespaceNotFound, http.StatusNotFound, CodeNamespaceNotFound},
		{core.ErrTableNotFound, http.StatusNotFound, CodeTableNotFound},
		{core.ErrRowNotFound, http.StatusNotFound, CodeRowNotFound},
		{core.ErrNamespaceExists, http.StatusConflict, CodeNamespaceExists},
		{core.ErrTableExists, http.StatusConflict, CodeTableExists},
		{core.ErrNamespaceNotEmpty, http.StatusConflict, CodeNamespaceNotEmpty},
		{core.ErrDuplicateKey, http.StatusConflict, CodeDuplicateKey},
		{core.ErrInvalidSchema, http.StatusBadRequest, CodeInvalidSchema},
		{core.ErrInvalidRow, http.StatusBadRequest, CodeInvalidRow},
		{core.ErrInvalidArgument, http.StatusBadRequest, CodeInvalidArgument},
		{core.ErrWrongTableType, http.StatusBadRequest, CodeWrongTableType},
		// Another server flushes or compacts the table (it holds the
		// table's lease), or took the lease over from this one.
		{lease.ErrHeld, http.StatusConflict, CodeTableBusy},
		{lease.ErrLost, http.StatusConflict, CodeTableBusy},
		{lease.ErrExpiring, http.StatusConflict, CodeTableBusy},
		// Other servers kept changing the row while a write retried.
		{store.ErrConditionFailed, http.StatusConflict, CodeWriteConflict},
	} {
		if errors.Is(err, m.target) {
			return &Error{Status: m.status, Code: m.code, Message: err.Error()}
		}
	}
	return nil
}

// Defaults are the policies a new table gets when its definition leaves
// them out (the [flush] and [stream] sections of the configuration).
type Defaults struct {
	FlushRows      int64
	FlushInterval  time.Duration
	StreamTTL      time.Duration
	StreamMaxRows  int64
	StreamMaxBytes int64
}

// namespaceJSON is a namespace in responses.
type namespaceJSON struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func namespaceOut(ns *catalog.Namespace) namespaceJSON {
	return namespaceJSON{Name: ns.Name, CreatedAt: ns.CreatedAt}
}

type createNamespaceRequest struct {
	Name *string `json:"name"`
}

func (a *API) createNamespace(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var req createNamespaceRequest
	if err := a.readJSON(w, r, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return badRequest(`field "name" is required`)
	}
	ns, err := a.CreateNamespace(r.Context(), *req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, namespaceOut(ns))
	return nil
}

// CreateNamespace creates namespace name.
func (a *API) CreateNamespace(ctx context.Context, name string) (*catalog.Namespace, error) {
	ns, err := a.opts.Catalog.CreateNamespace(ctx, name)
	if err != nil {
		return nil, err
	}
	a.log.Info("namespace created", "namespace", ns.Name)
	return ns, nil
}

// DropNamespace drops namespace name, which must hold no table.
func (a *API) DropNamespace(ctx context.Context, name string) error {
	if err := a.opts.Catalog.DropNamespace(ctx, name); err != nil {
		return err
	}
	a.log.Info("namespace dropped", "namespace", name)
	return nil
}

func (a *API) listNamespaces(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	nss, err := a.opts.Catalog.FreshNamespaces(r.Context())
	if err != nil {
		return err
	}
	out := make([]namespaceJSON, len(nss))
	for i, ns := range nss {
		out[i] = namespaceOut(ns)
	}
	writeJSON(w, http.StatusOK, map[string]any{"namespaces": out})
	return nil
}

func (a *API) getNamespace(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	ns, err := a.opts.Catalog.FindNamespace(r.Context(), r.PathValue("ns"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, namespaceOut(ns))
	return nil
}

func (a *API) dropNamespace(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if err := a.DropNamespace(r.Context(), r.PathValue("ns")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// columnJSON is a column in requests and responses.
type columnJSON struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable,omitempty"`
}

// flushJSON is a flush policy in requests and responses.
type flushJSON struct {
	Rows            *int64 `json:"rows,omitempty"`
	IntervalSeconds *int64 `json:"interval_seconds,omitempty"`
}

// TableRequest is the body of POST /v1/namespaces/{ns}/tables: a table
// definition as a client gives it, before the configured defaults apply.
type TableRequest struct {
	Name           *string      `json:"name"`
	Type           *string      `json:"type"`
	Columns        []columnJSON `json:"columns"`
	PrimaryKey     string       `json:"primary_key"`
	Flush          *flushJSON   `json:"flush"`
	TTLSeconds     *int64       `json:"ttl_seconds"`
	MaxBufferRows  *int64       `json:"max_buffer_rows"`
	MaxBufferBytes *int64       `json:"max_buffer_bytes"`
}

// tableJSON is a table in responses.
type tableJSON struct {
	Namespace      string       `json:"namespace"`
	Name           string       `json:"name"`
	Type           string       `json:"type"`
	Columns        []columnJSON `json:"columns"`
	PrimaryKey     string       `json:"primary_key,omitempty"`
	Flush          *flushJSON   `json:"flush,omitempty"`
	TTLSeconds     *int64       `json:"ttl_seconds,omitempty"`
	MaxBufferRows  *int64       `json:"max_buffer_rows,omitempty"`
	MaxBufferBytes *int64       `json:"max_buffer_bytes,omitempty"`
	CreatedAt      time.Time    `json:"created_at"`
	BufferedRows   *int64       `json:"buffered_rows,omitempty"`
	Segments       *int64       `json:"segments,omitempty"`
}

func tableOut(t *catalog.Table) tableJSON {
	out := tableJSON{Namespace: t.Namespace, Name: t.Name, Type: string(t.Type), PrimaryKey: t.PrimaryKey, CreatedAt: t.CreatedAt}
	out.Columns = make([]columnJSON, len(t.Columns))
	for i, c := range t.Columns {
		out.Columns[i] = columnJSON{Name: c.Name, Type: c.Type.String(), Nullable: c.Nullable}
	}
	if t.Type == catalog.StreamTable {
		ttl := int64(t.Stream.TTL / time.Second)
		maxRows, maxBytes := t.Stream.MaxBuffer, t.Stream.MaxBytes
		out.TTLSeconds, out.MaxBufferRows = &ttl, &maxRows
		if maxBytes > 0 {
			out.MaxBufferBytes = &maxBytes
		}
	} else {
		rows := t.Flush.RowLimit
		secs := int64(t.Flush.Interval / time.Second)
		out.Flush = &flushJSON{Rows: &rows, IntervalSeconds: &secs}
	}
	return out
}

// tableDef turns a create-table request into a catalog definition, with
// the configured defaults, naming the request field of any problem.
func (a *API) tableDef(ns string, req *TableRequest) (catalog.Table, error) {
	if req.Name == nil {
		return catalog.Table{}, badRequest(`field "name" is required`)
	}
	if req.Type == nil {
		return catalog.Table{}, badRequest(`field "type" is required: "user", "shared" or "stream"`)
	}
	def := catalog.Table{Namespace: ns, Name: *req.Name, Type: catalog.TableType(*req.Type), PrimaryKey: req.PrimaryKey}
	switch def.Type {
	case catalog.UserTable, catalog.SharedTable, catalog.StreamTable:
	default:
		return def, badRequest(`field "type" is %q; it must be "user", "shared" or "stream"`, *req.Type)
	}
	if len(req.Columns) == 0 {
		return def, badRequest(`field "columns" must list at least one column`)
	}
	for i, c := range req.Columns {
		if c.Name == "" {
			return def, badRequest(`field "columns[%d].name" is required`, i)
		}
		t, err := row.ParseType(c.Type)
		if err != nil {
			return def, badRequest(`field "columns[%d].type" of column %q is %q; the types are %s`, i, c.Name, c.Type, typeList())
		}
		def.Columns = append(def.Columns, catalog.Column{Name: c.Name, Type: t, Nullable: c.Nullable})
	}
	d := a.opts.Defaults
	if def.Type == catalog.StreamTable {
		if req.Flush != nil {
			return def, badRequest(`field "flush" does not apply to stream tables: streams are never flushed`)
		}
		if req.PrimaryKey != "" {
			return def, badRequest(`field "primary_key" does not apply to stream tables: events are identified by _seq`)
		}
		def.Stream = catalog.StreamOptions{TTL: d.StreamTTL, MaxBuffer: d.StreamMaxRows, MaxBytes: d.StreamMaxBytes}
		if req.TTLSeconds != nil {
			if *req.TTLSeconds < 1 || *req.TTLSeconds > config.MaxSeconds {
				return def, badRequest(`field "ttl_seconds" must be from 1 to %d (about 292 years), got %d`, config.MaxSeconds, *req.TTLSeconds)
			}
			def.Stream.TTL = time.Duration(*req.TTLSeconds) * time.Second
		}
		if req.MaxBufferRows != nil {
			if *req.MaxBufferRows < 1 {
				return def, badRequest(`field "max_buffer_rows" must be at least 1, got %d`, *req.MaxBufferRows)
			}
			def.Stream.MaxBuffer = *req.MaxBufferRows
		}
		if req.MaxBufferBytes != nil {
			if *req.MaxBufferBytes < 1 {
				return def, badRequest(`field "max_buffer_bytes" must be at least 1, got %d`, *req.MaxBufferBytes)
			}
			def.Stream.MaxBytes = *req.MaxBufferBytes
		}
		return def, nil
	}
	if req.TTLSeconds != nil || req.MaxBufferRows != nil || req.MaxBufferBytes != nil {
		return def, badRequest(`fields "ttl_seconds", "max_buffer_rows" and "max_buffer_bytes" only apply to stream tables`)
	}
	if req.PrimaryKey == "" {
		return def, badRequest(`field "primary_key" is required for %s tables`, def.Type)
	}
	def.Flush = catalog.FlushPolicy{RowLimit: d.FlushRows, Interval: d.FlushInterval}
	if req.Flush != nil {
		if req.Flush.Rows != nil {
			if *req.Flush.Rows < 1 {
				return def, badRequest(`field "flush.rows" must be at least 1, got %d`, *req.Flush.Rows)
			}
			def.Flush.RowLimit = *req.Flush.Rows
		}
		if req.Flush.IntervalSeconds != nil {
			if *req.Flush.IntervalSeconds < 0 || *req.Flush.IntervalSeconds > config.MaxSeconds {
				return def, badRequest(`field "flush.interval_seconds" must be 0 (no timed flush) to %d (about 292 years), got %d`, config.MaxSeconds, *req.Flush.IntervalSeconds)
			}
			def.Flush.Interval = time.Duration(*req.Flush.IntervalSeconds) * time.Second
		}
	}
	return def, nil
}

func typeList() string {
	names := make([]string, len(row.Types))
	for i, t := range row.Types {
		names[i] = t.String()
	}
	return strings.Join(names, ", ")
}

func (a *API) createTable(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	var req TableRequest
	if err := a.readJSON(w, r, &req); err != nil {
		return err
	}
	def, err := a.TableDefinition(r.PathValue("ns"), &req)
	if err != nil {
		return err
	}
	t, err := a.CreateTable(r.Context(), def)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tableOut(t))
	return nil
}

// TableDefinition turns a table request for namespace ns into a catalog
// definition with the configured defaults, naming the request field of
// any problem (an *Error).
func (a *API) TableDefinition(ns string, req *TableRequest) (catalog.Table, error) {
	return a.tableDef(ns, req)
}

// CreateTable creates the table def describes (from TableDefinition) and,
// for a stream table, starts its eviction.
func (a *API) CreateTable(ctx context.Context, def catalog.Table) (*catalog.Table, error) {
	t, err := a.opts.Catalog.CreateTable(ctx, def)
	if err != nil {
		return nil, err
	}
	a.log.Info("table created", "table", t.FullName(), "type", t.Type)
	if t.Type == catalog.StreamTable && a.opts.DB != nil {
		if _, err := a.streamOf(ctx, t.Namespace, t.Name); err != nil {
			a.log.Warn("opening the new stream table", "table", t.FullName(), "err", err)
		}
	}
	return t, nil
}

func (a *API) listTables(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	ts, err := a.opts.Catalog.FreshTables(r.Context(), r.PathValue("ns"))
	if err != nil {
		return err
	}
	out := make([]tableJSON, len(ts))
	for i, t := range ts {
		out[i] = tableOut(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tables": out})
	return nil
}

func (a *API) getTable(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	t, err := a.opts.Catalog.FindTable(r.Context(), r.PathValue("ns"), r.PathValue("t"))
	if err != nil {
		return err
	}
	return a.writeTable(w, r, t, p)
}

// writeTable answers with table t as GET …/tables/{t} shows it: the
// definition and, when the server counts them, the buffered rows and
// segments that p may see.
func (a *API) writeTable(w http.ResponseWriter, r *http.Request, t *catalog.Table, p auth.Principal) error {
	out := tableOut(t)
	if a.opts.Stats != nil {
		st, err := a.opts.Stats(r.Context(), t, p)
		if err != nil {
			return err
		}
		out.BufferedRows, out.Segments = &st.BufferedRows, &st.Segments
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// addColumn answers POST /v1/namespaces/{ns}/tables/{t}/columns: it adds a
// nullable column to a user or shared table and returns the table.
func (a *API) addColumn(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req ColumnRequest
	if err := a.readJSON(w, r, &req); err != nil {
		return err
	}
	t, err := a.AddColumn(r.Context(), r.PathValue("ns"), r.PathValue("t"), req)
	if err != nil {
		return err
	}
	return a.writeTable(w, r, t, p)
}

// ColumnRequest is a column as a client gives it: its name, its type's
// name (row.ParseType) and whether it takes nulls.
type ColumnRequest = columnJSON

// FlushRequest is a flush policy as a client gives it: rows and seconds.
type FlushRequest = flushJSON

// AddColumn adds column c, which must be nullable, to user or shared table
// ns.name and returns the new definition.
func (a *API) AddColumn(ctx context.Context, ns, name string, c ColumnRequest) (*catalog.Table, error) {
	if c.Name == "" {
		return nil, badRequest(`field "name" is required`)
	}
	typ, err := row.ParseType(c.Type)
	if err != nil {
		return nil, badRequest(`field "type" of column %q is %q; the types are %s`, c.Name, c.Type, typeList())
	}
	if !c.Nullable {
		return nil, badRequest(`field "nullable" must be true: the rows already in the table have no value for column %q and read it as null`, c.Name)
	}
	t, err := a.opts.DB.AddColumn(ctx, ns, name, catalog.Column{Name: c.Name, Type: typ, Nullable: true})
	if err != nil {
		return nil, err
	}
	a.log.Info("column added", "table", t.FullName(), "column", c.Name, "type", typ.String())
	return t, nil
}

func (a *API) dropTable(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	if err := a.DropTable(r.Context(), r.PathValue("ns"), r.PathValue("t")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// DropTable drops table ns.name and, with a cold tier, its segments.
func (a *API) DropTable(ctx context.Context, ns, name string) error {
	if a.opts.Cold != nil {
		if err := a.opts.Cold.DropTable(ctx, ns, name); err != nil {
			return err
		}
	} else if err := a.opts.Catalog.DropTable(ctx, ns, name); err != nil {
		return err
	}
	a.log.Info("table dropped", "table", ns+"."+name)
	return nil
}
