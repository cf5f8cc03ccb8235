package sql

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// Segments is what the engine needs of the Parquet cold tier (a
// *flush.Manager) to read segment files itself.
type Segments interface {
	// Snapshot holds the committed segments of user's rows of t (every
	// segment of a shared table, user "") until its Release.
	Snapshot(ctx context.Context, t *catalog.Table, user string) (*flush.Snapshot, error)
	// LocalDir returns the local directory of the segment files, when
	// the segment store is one.
	LocalDir() (string, bool)
	// Store is the segment store, from which the engine copies the
	// segment files when they are not local (Options.SegmentFiles).
	Store() segment.Store
}

// bufferTable names the table of a query's private catalog (in its schema
// main) that holds the buffered versions of the query's i-th table. A
// query cannot name it: names with a '.' are refused.
func bufferTable(i int) string { return "kalamdb.buffer." + strconv.Itoa(i) }

// loadSegments prepares the view of what the caller may read of t, a user
// or shared table, within b: the buffered versions, copied into a table of
// the scope (when there are any), laid over the committed segments, which
// the engine reads from their files; per key the newest _seq wins and a
// winning tombstone hides the row. i numbers the table in the query. It
// returns the statement that creates the view ns.t in the scope, and the
// release of the segments (their snapshot, and their copies in the mirror
// of an object store's files), to be called when the query ends.
func (s *session) loadSegments(ctx context.Context, conn *sql.Conn, scope string, t *catalog.Table, b *keyBounds, i int) (string, func(), error) {
	rs, err := s.e.opts.DB.RowStore(ctx, t.Namespace, t.Name, s.p.ID)
	if err != nil {
		return "", nil, err
	}
	user := ""
	var prefix []byte
	if t.Type == catalog.UserTable {
		user = s.p.ID
		prefix = keys.AppendString(nil, user)
	}
	buf := ""
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "CREATE TABLE %s.main.%s (", scope, quote(bufferTable(i)))
	for _, c := range t.Columns {
		fmt.Fprintf(&ddl, "%s %s, ", quote(c.Name), engineTypes[c.Type])
	}
	fmt.Fprintf(&ddl, "%s BIGINT, %s TIMESTAMP, %s BOOLEAN)", quote(catalog.ColumnSeq), quote(catalog.ColumnUpdated), quote(catalog.ColumnDeleted))

	// The buffer first, then the list of segments (see flush.Snapshot).
	var bufKeys [][]byte // of the buffered versions, ascending
	var bufSeqs []int64  // and their _seq
	var arena []byte
	pk := t.PrimaryKeyIndex()
	n := len(t.Columns)
	read := 0
	err = conn.Raw(func(dc any) error {
		var app *duckdb.Appender
		vals := make([]driver.Value, n+3)
		var from row.Value
		exclusive := false
		if b != nil {
			from, exclusive = b.lo, b.loOpen
		}
		err := rs.Buffered(ctx, from, exclusive, func(r *row.Row) error {
			if b != nil && b.beyond(r.Values[pk]) {
				return errStop
			}
			read++
			if read > s.e.opts.MaxResultRows {
				return &api.Error{Status: http.StatusRequestEntityTooLarge, Code: CodeResultTooLarge,
					Message: fmt.Sprintf("the statement reads more than %d buffered rows of %s; narrow it with a condition on the primary key %q", s.e.opts.MaxResultRows, t.FullName(), t.PrimaryKey)}
			}
			if app == nil {
				// The table is made for the first version: an empty
				// buffer costs no statement.
				if _, err := dc.(driver.ExecerContext).ExecContext(ctx, ddl.String(), nil); err != nil {
					return err
				}
				a, err := duckdb.NewAppender(dc.(driver.Conn), scope, "main", bufferTable(i))
				if err != nil {
					return err
				}
				app, buf = a, scope+".main."+quote(bufferTable(i))
			}
			start := len(arena)
			var err error
			if arena, err = t.AppendKey(append(arena, prefix...), r.Values[pk]); err != nil {
				return err
			}
			bufKeys = append(bufKeys, arena[start:len(arena):len(arena)])
			bufSeqs = append(bufSeqs, r.Seq)
			for c := 0; c < n; c++ {
				vals[c] = engineValue(r.Values[c])
			}
			vals[n], vals[n+1], vals[n+2] = r.Seq, r.UpdatedTime(), r.Deleted
			return app.AppendRow(vals...)
		})
		if errors.Is(err, errStop) {
			err = nil
		}
		if app != nil {
			err = errors.Join(err, app.Close())
		}
		return err
	})
	if err != nil {
		return "", nil, err
	}

	if s.e.between != nil {
		s.e.between("buffered")
	}
	snap, err := s.e.segments.Snapshot(ctx, t, user)
	if err != nil {
		return "", nil, err
	}
	if s.e.between != nil {
		s.e.between("listed")
	}
	files := inBounds(snap.Files, t, prefix, b)
	dir, release := snap.Dir, snap.Release
	if dir == "" && s.e.mirror != nil {
		mrelease, err := s.e.mirror.acquire(ctx, files)
		if err != nil {
			snap.Release()
			return "", nil, err
		}
		dir, release = s.e.mirror.dir, func() { mrelease(); snap.Release() }
	}
	if dir == "" {
		snap.Release()
		return "", nil, fmt.Errorf("sql: %s: the segment store is not a local directory", t.FullName())
	}
	sp := splitSegments(files, bufKeys, bufSeqs)
	if s.e.dedupeAlways {
		sp = segmentSplit{overlapping: files}
	}
	view, err := segmentView(t, dir, sp, buf)
	if err != nil {
		release()
		return "", nil, err
	}
	s.e.views.Add(1)
	s.e.merged.Add(int64(len(sp.covered) + len(sp.overlapping)))
	return fmt.Sprintf("CREATE VIEW %s.%s.%s AS %s", scope, quote(t.Namespace), quote(t.Name), view), release, nil
}

// errStop ends a read of the buffer past the upper key bound.
var errStop = errors.New("sql: past the key bounds")

// inBounds returns the segments whose key range meets the bounds b of the
// primary key (every segment when b is nil).
func inBounds(files []flush.SnapshotFile, t *catalog.Table, prefix []byte, b *keyBounds) []flush.SnapshotFile {
	if b == nil {
		return files
	}
	var lo, hi []byte
	var err error
	if !b.lo.IsNull() {
		if lo, err = t.AppendKey(slices.Clone(prefix), b.lo); err != nil {
			return files
		}
	}
	if !b.hi.IsNull() {
		if hi, err = t.AppendKey(slices.Clone(prefix), b.hi); err != nil {
			return files
		}
	}
	var out []flush.SnapshotFile
	for _, f := range files {
		if lo != nil {
			if c := bytes.Compare(f.MaxKey, lo); c < 0 || c == 0 && b.loOpen {
				continue
			}
		}
		if hi != nil {
			if c := bytes.Compare(f.MinKey, hi); c > 0 || c == 0 && b.hiOpen {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// segmentSplit is a table's segments by what a view must do to lay the
// buffered versions over them (a segment holds at most one version per
// key).
type segmentSplit struct {
	// plain segments meet no other segment's key range and no buffered
	// key: each of their versions is the only one of its key.
	plain []flush.SnapshotFile
	// covered segments meet no other segment's key range, but buffered
	// keys fall in them: a key has at most one version there and one in
	// the buffer.
	covered []flush.SnapshotFile
	// bufferNewer is set when every buffered version of a key in a covered
	// segment is newer than the whole segment (its _seq above the
	// segment's MaxSeq), so no buffered version needs comparing.
	bufferNewer bool
	// overlapping segments meet another segment's key range: their
	// versions are merged with every other non-plain one.
	overlapping []flush.SnapshotFile
}

// splitSegments divides segments by their key ranges, given the keys of the
// buffered versions (bufKeys, ascending) and their _seq (bufSeqs).
func splitSegments(files []flush.SnapshotFile, bufKeys [][]byte, bufSeqs []int64) segmentSplit {
	segs := slices.Clone(files)
	slices.SortFunc(segs, func(a, b flush.SnapshotFile) int { return bytes.Compare(a.MinKey, b.MinKey) })
	// maxBefore is the highest MaxKey of the segments before the current
	// one in MinKey order.
	var maxBefore []byte
	overlaps := make([]bool, len(segs))
	for i, f := range segs {
		if i > 0 && bytes.Compare(maxBefore, f.MinKey) >= 0 {
			overlaps[i] = true
			// Every earlier segment that reaches f overlaps it too.
			for j := i - 1; j >= 0; j-- {
				if bytes.Compare(segs[j].MaxKey, f.MinKey) >= 0 {
					overlaps[j] = true
				}
			}
		}
		if maxBefore == nil || bytes.Compare(f.MaxKey, maxBefore) > 0 {
			maxBefore = f.MaxKey
		}
	}
	sp := segmentSplit{bufferNewer: true}
	for i, f := range segs {
		if overlaps[i] {
			sp.overlapping = append(sp.overlapping, f)
			continue
		}
		// The buffered keys in the segment's range: bufKeys[j:k].
		j, _ := slices.BinarySearchFunc(bufKeys, f.MinKey, bytes.Compare)
		k := j
		for k < len(bufKeys) && bytes.Compare(bufKeys[k], f.MaxKey) <= 0 {
			if bufSeqs[k] <= f.MaxSeq {
				sp.bufferNewer = false
			}
			k++
		}
		if k > j {
			sp.covered = append(sp.covered, f)
		} else {
			sp.plain = append(sp.plain, f)
		}
	}
	return sp
}

// segmentView returns the query of the view of t over the segments of sp,
// in dir, and the buffered versions in table buf ("" when there are none):
// per key the newest _seq wins, and a winning tombstone hides the row.
func segmentView(t *catalog.Table, dir string, sp segmentSplit, buf string) (string, error) {
	cols := make([]string, 0, len(t.Columns)+2)
	for _, c := range t.Columns {
		cols = append(cols, quote(c.Name))
	}
	cols = append(cols, quote(catalog.ColumnSeq), quote(catalog.ColumnUpdated))
	list := strings.Join(cols, ", ")
	deleted, pk, seq := quote(catalog.ColumnDeleted), quote(t.PrimaryKey), quote(catalog.ColumnSeq)
	union := func(files []flush.SnapshotFile) (string, error) {
		scans, err := segmentScans(t, dir, files)
		return "(" + strings.Join(scans, " UNION ALL ") + ")", err
	}

	var parts []string
	if len(sp.plain) > 0 {
		u, err := union(sp.plain)
		if err != nil {
			return "", err
		}
		if slices.ContainsFunc(sp.plain, func(f flush.SnapshotFile) bool { return f.Tombstones > 0 }) {
			u = "(SELECT * FROM " + u + " WHERE NOT " + deleted + ")"
		}
		parts = append(parts, "SELECT * FROM "+u)
	}
	switch {
	case len(sp.overlapping) > 0:
		// Every version that may not be its key's only one, in one merge.
		u, err := union(append(slices.Clone(sp.overlapping), sp.covered...))
		if err != nil {
			return "", err
		}
		if buf != "" {
			u = "(SELECT * FROM " + u + " UNION ALL SELECT " + list + ", " + deleted + " FROM " + buf + ")"
		}
		parts = append(parts, "SELECT * FROM (SELECT * FROM "+u+" QUALIFY row_number() OVER (PARTITION BY "+pk+" ORDER BY "+seq+" DESC) = 1) WHERE NOT "+deleted)
	case len(sp.covered) > 0 && buf != "":
		// A key has at most two versions, one in a segment and one in the
		// buffer: each is dropped when the other is newer (the segment's
		// when they are the same version).
		u, err := union(sp.covered)
		if err != nil {
			return "", err
		}
		parts = append(parts, "SELECT s.* FROM "+u+" s ANTI JOIN "+buf+" b ON s."+pk+" = b."+pk+" AND b."+seq+" >= s."+seq+" WHERE NOT s."+deleted)
		if sp.bufferNewer {
			parts = append(parts, "SELECT "+list+", "+deleted+" FROM "+buf+" WHERE NOT "+deleted)
		} else {
			parts = append(parts, "SELECT b.* FROM "+buf+" b ANTI JOIN "+u+" s ON s."+pk+" = b."+pk+" AND s."+seq+" > b."+seq+" WHERE NOT b."+deleted)
		}
	default:
		if buf != "" {
			parts = append(parts, "SELECT "+list+", "+deleted+" FROM "+buf+" WHERE NOT "+deleted)
		}
		if len(sp.covered) > 0 { // never: covered segments have buffered keys
			return "", fmt.Errorf("sql: %s: segments over buffered keys but no buffered version", t.FullName())
		}
	}
	if len(parts) == 0 {
		// Nothing to read: no row, of the table's columns.
		var sel []string
		for _, c := range t.Columns {
			sel = append(sel, "NULL::"+engineTypes[c.Type]+" AS "+quote(c.Name))
		}
		sel = append(sel, "NULL::BIGINT AS "+quote(catalog.ColumnSeq), "NULL::TIMESTAMP AS "+quote(catalog.ColumnUpdated))
		return "SELECT " + strings.Join(sel, ", ") + " WHERE false", nil
	}
	return "SELECT " + list + " FROM (" + strings.Join(parts, " UNION ALL ") + ")", nil
}

// segmentScans returns a query per set of files written under the same
// columns, reading them in the table's columns (NULL for a column a file
// lacks), then _seq, _updated and _deleted.
func segmentScans(t *catalog.Table, dir string, files []flush.SnapshotFile) ([]string, error) {
	sys := []string{catalog.ColumnSeq, catalog.ColumnUpdated, catalog.ColumnDeleted}
	var groups [][]flush.SnapshotFile
	for _, f := range files {
		k := slices.IndexFunc(groups, func(g []flush.SnapshotFile) bool { return slices.Equal(g[0].Columns, f.Columns) })
		if k < 0 {
			groups = append(groups, []flush.SnapshotFile{f})
		} else {
			groups[k] = append(groups[k], f)
		}
	}
	var parts []string
	for _, g := range groups {
		have := map[string]bool{}
		for _, c := range g[0].Columns {
			have[c] = true
		}
		for _, c := range sys {
			if !have[c] {
				return nil, fmt.Errorf("sql: %s: segment %s has no column %s", t.FullName(), g[0].Path, c)
			}
		}
		var sel []string
		for _, c := range t.Columns {
			switch {
			case !have[c.Name]:
				sel = append(sel, "NULL::"+engineTypes[c.Type]+" AS "+quote(c.Name))
			case c.Type == row.TypeTimestamp:
				sel = append(sel, timestampOf(quote(c.Name))+" AS "+quote(c.Name))
			default:
				sel = append(sel, quote(c.Name))
			}
		}
		sel = append(sel, quote(catalog.ColumnSeq), timestampOf(quote(catalog.ColumnUpdated))+" AS "+quote(catalog.ColumnUpdated), quote(catalog.ColumnDeleted))
		paths := make([]string, len(g))
		for i, f := range g {
			paths[i] = quoteString(filepath.Join(dir, filepath.FromSlash(f.Path)))
		}
		parts = append(parts, "SELECT "+strings.Join(sel, ", ")+" FROM read_parquet(["+strings.Join(paths, ", ")+"])")
	}
	return parts, nil
}

// timestampOf converts a Parquet timestamp (microseconds, UTC), which the
// engine reads as TIMESTAMP WITH TIME ZONE, to the TIMESTAMP the table
// layer's rows have, independent of any time zone setting.
func timestampOf(col string) string { return "make_timestamp(epoch_us(" + col + "))" }

var mergeForm = 0
