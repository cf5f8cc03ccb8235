package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/auth"
)

// tableOf returns the table the request names.
func (a *API) tableOf(r *http.Request) (*catalog.Table, error) {
	return a.opts.DB.Catalog().FindTable(r.Context(), r.PathValue("ns"), r.PathValue("t"))
}

// newerDefinition reports whether err names a column that t, the
// definition a request was checked against, lacks, and the catalog read
// again changed: on a backend several servers share, another may have
// just added the column, and the request then looks its table up again.
func (a *API) newerDefinition(ctx context.Context, t *catalog.Table, err error) bool {
	var ce *core.ColumnError
	if !errors.As(err, &ce) {
		return false
	}
	changed, rerr := a.opts.Catalog.RefreshForColumn(ctx, t, ce.Column)
	if rerr != nil {
		a.log.Warn("reading the catalog again for an unknown column", "table", t.FullName(), "column", ce.Column, "err", rerr)
		return false
	}
	return changed
}

// rowStoreOf returns the store of the user or shared table the request
// names, bound to the caller (a shared table's ignores the caller), from
// one lookup of the table: the whole request then works on that table. A
// stream table is ErrWrongTableType with a hint.
func (a *API) rowStoreOf(r *http.Request, p auth.Principal) (*tables.RowStore, error) {
	ns, name := r.PathValue("ns"), r.PathValue("t")
	rs, err := a.opts.DB.RowStore(r.Context(), ns, name, p.ID)
	if errors.Is(err, core.ErrWrongTableType) {
		return nil, fmt.Errorf("%w: %s.%s is a stream table: its events have no primary key; read them with GET …/rows?after=<_seq>",
			core.ErrWrongTableType, ns, name)
	}
	return rs, err
}

// tableStore is the store of the table a request names: rows for a user or
// shared table (bound to the caller), stream for a stream table.
type tableStore struct {
	rows   *tables.RowStore
	stream *tables.StreamTableStore
}

// table returns the definition of the table the store serves.
func (s tableStore) table() *catalog.Table {
	if s.stream != nil {
		return s.stream.Table()
	}
	return s.rows.Table()
}

// storeOf returns the store of the table the request names, of any type.
// A user or shared table takes one lookup; a stream table, which the first
// lookup refuses, a second.
func (a *API) storeOf(r *http.Request, p auth.Principal) (tableStore, error) {
	return a.storeFor(r.Context(), r.PathValue("ns"), r.PathValue("t"), p)
}

// storeFor returns the store of table ns.name bound to p, from one lookup
// of the table.
func (a *API) storeFor(ctx context.Context, ns, name string, p auth.Principal) (tableStore, error) {
	rs, err := a.opts.DB.RowStore(ctx, ns, name, p.ID)
	if errors.Is(err, core.ErrWrongTableType) {
		s, err := a.streamOf(ctx, ns, name)
		return tableStore{stream: s}, err
	}
	return tableStore{rows: rs}, err
}

// streamOf returns the store of a stream table and makes sure its
// eviction runs.
func (a *API) streamOf(ctx context.Context, ns, name string) (*tables.StreamTableStore, error) {
	s, err := a.opts.DB.Stream(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	a.StartEviction(s)
	return s, nil
}

// evictions serialises the starts of stream evictions.
type evictions struct {
	mu sync.Mutex
}

// StartEviction starts the periodic eviction of stream store s, once per
// store. Eviction stops when the DB is closed.
func (a *API) StartEviction(s *tables.StreamTableStore) {
	a.evict.mu.Lock()
	defer a.evict.mu.Unlock()
	if s.Evicting() {
		return
	}
	name := s.Table().FullName()
	err := s.StartEviction(a.opts.EvictionInterval, func(st tables.EvictStats, err error) {
		if err != nil {
			a.log.Warn("stream eviction failed", withErr(err, "table", name)...)
			return
		}
		if st.Expired+st.Overflow > 0 {
			a.log.Debug("stream eviction", "table", name, "expired", st.Expired, "overflow", st.Overflow, "remaining", st.Remaining)
		}
	})
	if errors.Is(err, store.ErrClosed) {
		// The server is shutting down: eviction stopped for good.
		a.log.Debug("not starting stream eviction: the tables are closing", "table", name)
		return
	}
	if err != nil {
		a.log.Warn("starting stream eviction", "table", name, "err", err)
	}
}

// insertRequest is the body of POST …/rows.
type insertRequest struct {
	Rows []map[string]any `json:"rows"`
}

func (a *API) insertRows(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ts, err := a.storeOf(r, p)
	if err != nil {
		return err
	}
	var req insertRequest
	if err := a.readJSON(w, r, &req); err != nil {
		return err
	}
	if req.Rows == nil {
		return badRequest(`field "rows" is required: a list of row objects`)
	}
	n, err := a.insert(r.Context(), ts, p, req.Rows)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]int{"inserted": n})
	return nil
}

// InsertRows inserts rows, column names to values as row.FromAny takes
// them, into table ns.name as p, all or none, and returns how many.
func (a *API) InsertRows(ctx context.Context, ns, name string, p auth.Principal, rows []map[string]any) (int, error) {
	ts, err := a.storeFor(ctx, ns, name, p)
	if err != nil {
		return 0, err
	}
	return a.insert(ctx, ts, p, rows)
}

// insert inserts rows into ts, the store of a table bound to p, all or
// none.
func (a *API) insert(ctx context.Context, ts tableStore, p auth.Principal, rows []map[string]any) (int, error) {
	if len(rows) == 0 {
		return 0, badRequest(`field "rows" is empty: give at least one row`)
	}
	t := ts.table()
	vals := make([][]row.Value, len(rows))
	refreshed := false
	for i := 0; i < len(rows); i++ {
		m := rows[i]
		if m == nil {
			return 0, badRequest(`field "rows[%d]" must be an object, not null`, i)
		}
		v, err := t.ValuesFromMap(m)
		if err != nil && !refreshed && a.newerDefinition(ctx, t, err) {
			// Another server added a column: start again, once, with the
			// new definition.
			if ts, err = a.storeFor(ctx, t.Namespace, t.Name, p); err != nil {
				return 0, err
			}
			t, i, refreshed = ts.table(), -1, true
			continue
		}
		if err != nil {
			return 0, rowError(i, len(rows), err)
		}
		vals[i] = v
	}
	var err error
	if ts.stream != nil {
		_, err = ts.stream.Append(ctx, vals...)
	} else {
		_, err = ts.rows.Insert(ctx, vals...)
	}
	if err != nil {
		return 0, err
	}
	return len(vals), nil
}

// rowError prefixes a row's error with its place in the request.
func rowError(i, n int, err error) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("rows[%d]: %w", i, err)
}

// listQuery reads the limit and after parameters, refusing any other.
func (a *API) listQuery(q url.Values) (limit int, after string, hasAfter bool, err error) {
	for k, v := range q {
		if k != "limit" && k != "after" {
			return 0, "", false, badRequest(`query parameter %q is not known; use "limit" and "after"`, k)
		}
		if len(v) > 1 {
			return 0, "", false, badRequest(`query parameter %q is given %d times; give it once`, k, len(v))
		}
	}
	limit = min(tables.DefaultLimit, a.opts.MaxPageRows)
	if v, ok := q["limit"]; ok {
		n, perr := strconv.Atoi(v[0])
		if perr != nil || n < 1 || n > a.opts.MaxPageRows {
			return 0, "", false, badRequest(`query parameter "limit" must be an integer from 1 to %d, got %q`, a.opts.MaxPageRows, v[0])
		}
		limit = n
	}
	if v, ok := q["after"]; ok {
		after, hasAfter = v[0], true
	}
	return limit, after, hasAfter, nil
}

func (a *API) listRows(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	ts, err := a.storeOf(r, p)
	if err != nil {
		return err
	}
	// The definition before the read: rows read after a column was added
	// have more values than it names, never fewer.
	t := ts.table()
	limit, after, hasAfter, err := a.listQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if s := ts.stream; s != nil {
		var from int64
		if hasAfter {
			from, err = strconv.ParseInt(after, 10, 64)
			if err != nil || from < 0 {
				return badRequest(`query parameter "after" of a stream table must be a _seq (a non-negative integer), got %q`, after)
			}
		}
		page, err := s.Read(r.Context(), tables.StreamReadOptions{After: from, Limit: limit, MaxBytes: a.opts.MaxPageBytes})
		if err != nil {
			return err
		}
		var next *string
		if page.More {
			n := strconv.FormatInt(page.Next, 10)
			next = &n
		}
		writeRows(w, t, page.Events, next)
		return nil
	}
	opts := tables.ScanOptions{Limit: limit, MaxBytes: a.opts.MaxPageBytes}
	if hasAfter {
		if opts.After, err = parseKey(t, after, `query parameter "after"`); err != nil {
			return err
		}
	}
	page, err := ts.rows.Scan(r.Context(), opts)
	if err != nil {
		return err
	}
	var next *string
	if page.More {
		// Next may be "" (a string key): it is present whenever rows follow.
		n := formatKey(page.Next)
		next = &n
	}
	writeRows(w, t, page.Rows, next)
	return nil
}

// pkOf returns the row store and the primary key the request names.
func (a *API) pkOf(r *http.Request, p auth.Principal) (*tables.RowStore, row.Value, error) {
	rs, err := a.rowStoreOf(r, p)
	if err != nil {
		return nil, row.Value{}, err
	}
	pk, err := parseKey(rs.Table(), r.PathValue("pk"), "primary key")
	return rs, pk, err
}

func (a *API) getRow(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rs, pk, err := a.pkOf(r, p)
	if err != nil {
		return err
	}
	got, err := rs.Get(r.Context(), pk)
	if err != nil {
		return err
	}
	writeRow(w, http.StatusOK, rs.Table(), &got)
	return nil
}

func (a *API) patchRow(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rs, pk, err := a.pkOf(r, p)
	if err != nil {
		return err
	}
	var patch map[string]any
	if err := a.readJSON(w, r, &patch); err != nil {
		return err
	}
	if patch == nil {
		return badRequest("request body must be an object of the columns to change, not null")
	}
	set, err := rs.Table().PatchFromMap(patch)
	if err != nil && a.newerDefinition(r.Context(), rs.Table(), err) {
		// Another server added a column: decide with the new definition.
		if rs, err = a.rowStoreOf(r, p); err != nil {
			return err
		}
		set, err = rs.Table().PatchFromMap(patch)
	}
	if err != nil {
		return err
	}
	got, err := rs.Update(r.Context(), pk, set)
	if err != nil {
		return err
	}
	writeRow(w, http.StatusOK, rs.Table(), &got)
	return nil
}

func (a *API) deleteRow(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	rs, pk, err := a.pkOf(r, p)
	if err != nil {
		return err
	}
	if err := rs.Delete(r.Context(), pk); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// flushTable answers POST …/flush: {"rows_flushed":n,"files":[…]}.
func (a *API) flushTable(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	res, err := a.FlushTable(r.Context(), r.PathValue("ns"), r.PathValue("t"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"rows_flushed": res.Rows, "files": nonNil(res.Files)})
	return nil
}

// FlushTable flushes the buffered rows of user or shared table ns.name to
// Parquet segments.
func (a *API) FlushTable(ctx context.Context, ns, name string) (flush.Result, error) {
	t, err := a.coldTable(ctx, ns, name, "flushing to Parquet")
	if err != nil {
		return flush.Result{}, err
	}
	return a.opts.Cold.Flush(ctx, t.Namespace, t.Name)
}

// compactTable answers POST …/compact: a major compaction of the table's
// Parquet segments.
func (a *API) compactTable(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	res, err := a.CompactTable(r.Context(), r.PathValue("ns"), r.PathValue("t"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"segments_merged": res.Merged, "segments_written": res.Written,
		"rows": res.Rows, "versions_dropped": res.Dropped, "files": nonNil(res.Files)})
	return nil
}

// CompactTable merges the Parquet segments of user or shared table ns.name
// (a major compaction).
func (a *API) CompactTable(ctx context.Context, ns, name string) (flush.CompactResult, error) {
	t, err := a.coldTable(ctx, ns, name, "compacting Parquet segments")
	if err != nil {
		return flush.CompactResult{}, err
	}
	return a.opts.Cold.MajorCompact(ctx, t.Namespace, t.Name)
}

func nonNil(files []string) []string {
	if files == nil {
		return []string{}
	}
	return files
}

// coldTable returns user or shared table ns.name, for an operation on its
// cold tier (what names it for a server without one).
func (a *API) coldTable(ctx context.Context, ns, name, what string) (*catalog.Table, error) {
	t, err := a.opts.DB.Catalog().FindTable(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if t.Type == catalog.StreamTable {
		return nil, fmt.Errorf("%w: %s is a stream table; streams are never flushed and have no segments", core.ErrWrongTableType, t.FullName())
	}
	if a.opts.Cold == nil {
		return nil, &Error{Status: http.StatusNotImplemented, Code: CodeNotImplemented,
			Message: what + " needs the Parquet cold tier, which this server does not have: rows stay in the storage backend"}
	}
	return t, nil
}

// parseKey reads a primary-key value of t from its text form, as it appears
// in a URL (see formatKey); what names the text in errors.
func parseKey(t *catalog.Table, s, what string) (row.Value, error) {
	c := t.PrimaryKeyColumn()
	bad := func(want string) error {
		return badRequest("%s %q is not a valid %s for column %q (%s)", what, s, c.Type, c.Name, want)
	}
	switch c.Type {
	case row.TypeInt32:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return row.Value{}, bad("a decimal integer")
		}
		return row.Int32(int32(n)), nil
	case row.TypeInt64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return row.Value{}, bad("a decimal integer")
		}
		return row.Int64(n), nil
	case row.TypeString:
		return row.String(s), nil
	case row.TypeBytes:
		for _, enc := range keyEncodings {
			if b, err := enc.DecodeString(s); err == nil {
				return row.Bytes(b), nil
			}
		}
		return row.Value{}, bad("base64, standard or URL-safe, padded or not")
	case row.TypeTimestamp:
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return row.Value{}, bad(`an RFC 3339 timestamp such as "2026-01-02T03:04:05Z"`)
		}
		if ts.UTC().Year() > 9999 {
			return row.Value{}, bad("a timestamp in the years 0000 to 9999 (UTC)")
		}
		return row.Timestamp(ts), nil
	}
	return row.Value{}, fmt.Errorf("%w: %s has no primary key", core.ErrWrongTableType, t.FullName())
}

// keyEncodings are the base64 forms a bytes key may take in a URL: the
// standard and the URL-safe alphabets, each with or without padding
// (Python's urlsafe_b64encode pads, JavaScript's base64url does not). Each is
// strict: padding bits must be zero, so one key has one spelling per form.
var keyEncodings = []*base64.Encoding{
	base64.StdEncoding.Strict(), base64.RawStdEncoding.Strict(),
	base64.URLEncoding.Strict(), base64.RawURLEncoding.Strict(),
}

// formatKey is the text form of a primary-key value that parseKey reads.
func formatKey(v row.Value) string {
	switch v.Type() {
	case row.TypeInt32:
		return strconv.FormatInt(int64(v.Int32()), 10)
	case row.TypeInt64:
		return strconv.FormatInt(v.Int64(), 10)
	case row.TypeString:
		return v.Str()
	case row.TypeBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case row.TypeTimestamp:
		return v.Timestamp().Format(time.RFC3339Nano)
	}
	return ""
}
