package flush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// Defaults of Options.
const (
	DefaultMaxSegmentRows     = 1 << 20
	DefaultFooterCacheFiles   = 4096
	DefaultRowGroupCacheBytes = 64 << 20
	DefaultKeyCacheBytes      = 64 << 20
	DefaultCheckInterval      = time.Second
)

// Options configure a Manager.
type Options struct {
	// Dir is the Parquet directory, the root of the cold tier. Required
	// unless FS is set.
	Dir string
	// FS, when set, is used instead of the operating system's files under
	// Dir (tests inject faults through it).
	FS segment.FS
	// Tables configures the table layer the Manager opens. Its ColdTier is
	// set by the Manager.
	Tables tables.Options
	// RowGroupRows is the row-group size of segments; 0 means
	// segment.DefaultRowGroupRows.
	RowGroupRows int
	// MaxSegmentRows caps the versions of one segment file: a larger flush
	// of one user (or shared table) writes several files, each committed on
	// its own. 0 means DefaultMaxSegmentRows.
	MaxSegmentRows int
	// CompactSegments is how many segments smaller than MaxSegmentRows a
	// user (or a shared table) may have at the end of its list before the
	// scheduler merges them (see Compact); 0 means DefaultCompactSegments,
	// a negative value leaves compaction to explicit Compact calls. At
	// least 2.
	CompactSegments int
	// FooterCacheFiles is how many parsed footers are cached; 0 means
	// DefaultFooterCacheFiles.
	FooterCacheFiles int
	// RowGroupCacheBytes bounds the decoded row groups kept in memory; 0
	// means DefaultRowGroupCacheBytes, a negative value disables the cache.
	RowGroupCacheBytes int64
	// KeyCacheBytes bounds the key indexes (primary keys, _seq and
	// _deleted of a row group) kept for lookups, such as the uniqueness
	// check of every insert; 0 means DefaultKeyCacheBytes, a negative value
	// disables the cache.
	KeyCacheBytes int64
	// CheckInterval is how often the scheduler checks flush policies; 0
	// means DefaultCheckInterval.
	CheckInterval time.Duration
	// OnEvent, when set, is told of every flush and compaction of a table,
	// whoever ran it (the scheduler, Flush, Close, …), failures included:
	// what a server logs and counts. It runs on the goroutine that did the
	// work; a panic in it is contained.
	OnEvent func(Event)
}

// Manager is the cold tier of a DB: it opens the table layer with Parquet
// segments as a second source of every user and shared table, flushes
// buffered rows to segments (on demand, on a schedule, at shutdown), and
// recovers from a crash at any step when it opens. It is safe for
// concurrent use.
type Manager struct {
	b     store.StorageBackend
	db    *tables.DB
	fs    segment.FS
	cache *segment.Cache
	clock clock.Clock
	opts  Options
	// snapshots: the backend's scans are snapshots (see tier.commitMu).
	snapshots bool

	mu    sync.Mutex
	tiers map[uint64]*tier

	sched   sync.Mutex
	cancel  context.CancelFunc // stops the scheduler's rounds
	stopped chan struct{}      // closed when the scheduler ends

	// health spaces out the retries of failing tables (Health).
	health       *Backoff[uint64]
	healthMu     sync.Mutex
	failingNames map[uint64]string
	lastFailure  time.Time

	// leftovers are the files recovery could not remove (Leftovers).
	leftovers []error
}

// Result reports a flush.
type Result struct {
	// Tables is how many tables were flushed.
	Tables int
	// Rows is how many row versions were written to segments, Tombstones
	// how many of them were deletions.
	Rows       int64
	Tombstones int64
	// Removed is how many buffered versions the flush deleted from the
	// buffer; Kept is how many it left because they changed while it ran.
	Removed int64
	Kept    int64
	// Files are the segments written, relative to the Parquet directory.
	Files []string
	// Compacted is what the scheduler's compactions did in the same round
	// (CheckPolicies only).
	Compacted CompactResult
}

func (r *Result) add(o Result) {
	r.Compacted.add(o.Compacted)
	r.Tables += o.Tables
	r.Rows += o.Rows
	r.Tombstones += o.Tombstones
	r.Removed += o.Removed
	r.Kept += o.Kept
	r.Files = append(r.Files, o.Files...)
}

// Open opens the table layer on b with the cold tier under opts.Dir, and
// recovers what a crash may have left: temporary files and segment files
// that no manifest records are removed, and so are the records and files of
// tables that no longer exist. A file it cannot remove (a read-only
// directory) does not stop it: Leftovers reports it. A record whose file
// is missing is reported as core.ErrCorrupt: it would be lost data, which
// the flush order never produces.
func Open(ctx context.Context, b store.StorageBackend, opts Options) (*Manager, error) {
	if opts.FS == nil {
		if opts.Dir == "" {
			return nil, fmt.Errorf("%w: flush: no Parquet directory", core.ErrInvalidArgument)
		}
		opts.FS = segment.DirFS(opts.Dir)
	}
	if opts.MaxSegmentRows < 0 || opts.RowGroupRows < 0 || opts.FooterCacheFiles < 0 || opts.CheckInterval < 0 {
		return nil, fmt.Errorf("%w: flush: negative option (segment rows %d, row-group rows %d, footer cache %d, check interval %v)",
			core.ErrInvalidArgument, opts.MaxSegmentRows, opts.RowGroupRows, opts.FooterCacheFiles, opts.CheckInterval)
	}
	if opts.MaxSegmentRows == 0 {
		opts.MaxSegmentRows = DefaultMaxSegmentRows
	}
	switch {
	case opts.CompactSegments == 0:
		opts.CompactSegments = DefaultCompactSegments
	case opts.CompactSegments == 1:
		return nil, fmt.Errorf("%w: flush: CompactSegments is 1; a compaction merges at least 2 segments (negative: no scheduled compaction)", core.ErrInvalidArgument)
	}
	if opts.FooterCacheFiles == 0 {
		opts.FooterCacheFiles = DefaultFooterCacheFiles
	}
	opts.RowGroupCacheBytes = budget(opts.RowGroupCacheBytes, DefaultRowGroupCacheBytes)
	opts.KeyCacheBytes = budget(opts.KeyCacheBytes, DefaultKeyCacheBytes)
	if opts.CheckInterval == 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.Tables.Clock == nil {
		opts.Tables.Clock = clock.Real()
	}
	m := &Manager{b: b, fs: opts.FS, cache: segment.NewCache(opts.FooterCacheFiles, opts.RowGroupCacheBytes, opts.KeyCacheBytes),
		clock: opts.Tables.Clock, opts: opts, tiers: map[uint64]*tier{}, snapshots: b.Capabilities().SnapshotScans,
		health: NewBackoff[uint64](RetryFirst, RetryMax), failingNames: map[uint64]string{}}
	topts := opts.Tables
	topts.ColdTier = m
	db, err := tables.Open(ctx, b, topts)
	if err != nil {
		return nil, err
	}
	m.db = db
	if err := m.recover(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// budget maps a cache option to bytes: 0 is the default, negative is off.
func budget(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// DB returns the table layer, whose user and shared tables read through
// the cold tier.
func (m *Manager) DB() *tables.DB { return m.db }

// Catalog returns the DB's catalog.
func (m *Manager) Catalog() *catalog.Catalog { return m.db.Catalog() }

// CacheStats returns the counters of the footer and row-group cache.
func (m *Manager) CacheStats() segment.CacheStats { return m.cache.Stats() }

// ColdSource implements tables.ColdTier: the cold tier of table t.
func (m *Manager) ColdSource(t *catalog.Table) (tables.Source, error) {
	return m.tier(t), nil
}

// tier returns the tier of t, creating an empty one for a new table. A
// table id is never reused, so the id names the table.
// ChangeSchema implements tables.ColdTier: change runs while the table
// neither flushes nor compacts, and its segments are then read and written
// with the new definition. Segments written before keep their columns; a
// column they lack reads as null.
func (m *Manager) ChangeSchema(t *catalog.Table, change func() (*catalog.Table, error)) (*catalog.Table, error) {
	tr := m.tier(t)
	tr.flushMu.Lock()
	defer tr.flushMu.Unlock()
	nt, err := change()
	if err != nil {
		return nil, err
	}
	if nt.ID == t.ID {
		tr.t.Store(nt)
	}
	return nt, nil
}

func (m *Manager) tier(t *catalog.Table) *tier {
	m.mu.Lock()
	defer m.mu.Unlock()
	tr := m.tiers[t.ID]
	if tr == nil {
		tr = newTier(m, t)
		m.tiers[t.ID] = tr
	}
	return tr
}

// buffer returns the table's definition and its buffer.
func (m *Manager) buffer(ctx context.Context, ns, name string) (*catalog.Table, *tables.Buffer, error) {
	t, err := m.db.Catalog().Table(ns, name)
	if err != nil {
		return nil, nil, err
	}
	switch t.Type {
	case catalog.UserTable:
		s, err := m.db.User(ctx, ns, name)
		if err != nil {
			return nil, nil, err
		}
		return s.Table(), s.Buffer(), nil
	case catalog.SharedTable:
		s, err := m.db.Shared(ctx, ns, name)
		if err != nil {
			return nil, nil, err
		}
		return s.Table(), s.Buffer(), nil
	}
	return nil, nil, fmt.Errorf("%w: %s is a stream table; stream tables are never flushed", core.ErrWrongTableType, t.FullName())
}

// Flush flushes table ns.name now: every buffered version of every user
// (of the table, for a shared table) is written to segments and then
// removed from the buffer, unless it changed while the flush ran. It waits
// for a flush of the same table in progress. A stream table is
// core.ErrWrongTableType.
func (m *Manager) Flush(ctx context.Context, ns, name string) (Result, error) {
	t, err := m.db.Catalog().Table(ns, name)
	if err != nil {
		return Result{}, err
	}
	return m.flushTable(ctx, t, TriggerManual)
}

// flushTable flushes t for trigger and records the outcome.
func (m *Manager) flushTable(ctx context.Context, t *catalog.Table, trigger string) (Result, error) {
	start := m.clock.Now()
	t, buf, err := m.buffer(ctx, t.Namespace, t.Name)
	if err != nil {
		return Result{}, err
	}
	tr := m.tier(t)
	var res Result
	err = guard.Run("flush: flush of "+t.FullName(), func() error {
		tr.flushMu.Lock()
		defer tr.flushMu.Unlock()
		written := buf.Written()
		var err error
		if res, err = m.flushLocked(ctx, tr, buf); err == nil {
			buf.Flushed(written) // writes during the flush still count
		}
		return err
	})
	m.record(Event{Table: t, Op: OpFlush, Trigger: trigger, Flush: res, Err: err}, start)
	return res, err
}

func (m *Manager) flushLocked(ctx context.Context, tr *tier, buf *tables.Buffer) (Result, error) {
	tr.mu.RLock()
	dropped := tr.dropped
	tr.mu.RUnlock()
	if dropped {
		return Result{}, fmt.Errorf("%w: %s", core.ErrTableNotFound, tr.table().FullName())
	}
	if err := m.settle(ctx, tr); err != nil {
		return Result{}, err
	}
	res := Result{Tables: 1}
	users := []string{""}
	if tr.perUser {
		var err error
		if users, err = buf.Users(ctx); err != nil {
			return res, fmt.Errorf("flush: %s: listing users: %w", tr.table().FullName(), err)
		}
	}
	for _, u := range users {
		if err := m.flushUser(ctx, tr, buf, u, &res); err != nil {
			return res, err
		}
	}
	tr.mu.Lock()
	tr.lastFlush = m.clock.Now()
	tr.mu.Unlock()
	return res, nil
}

// flushUser flushes the buffered versions of one user (of the whole table
// for a shared table), in segments of at most MaxSegmentRows versions.
func (m *Manager) flushUser(ctx context.Context, tr *tier, buf *tables.Buffer, user string, res *Result) error {
	t := tr.table()
	prefix := tr.prefix(user)
	dir, err := tr.userDir(user)
	if err != nil {
		return err
	}
	// The table's last _seq, read with no write in flight: if it is the
	// same at commit time, no version changed and the commit need not
	// check the buffer again.
	unlock := buf.LockAll()
	quiet := buf.LastSeq()
	unlock()
	it, err := buf.Entries(ctx, user)
	if err != nil {
		return fmt.Errorf("flush: %s: reading the buffer: %w", t.FullName(), err)
	}
	defer it.Close()
	types := buf.Types()
	more := it.Next()
	for more {
		spec := m.nextSpec(tr, user, dir)
		var (
			refs  versionRefs
			arena []byte
			r     row.Row
		)
		st, err := segment.Create(m.fs, spec, func(w *segment.Writer) error {
			for more && refs.len() < m.opts.MaxSegmentRows {
				k, v := it.Key(), it.Value()
				seq, _, deleted, err := row.PeekMeta(v)
				if err != nil {
					return fmt.Errorf("buffer key %x: %w", k, err)
				}
				if len(arena)+len(k) > cap(arena) {
					arena = make([]byte, 0, max(64<<10, len(k)))
				}
				start := len(arena)
				arena = append(arena, k...)
				ref := tables.VersionRef{Key: arena[start:len(arena):len(arena)], Seq: seq}
				write := true
				if deleted {
					// A deletion only needs to reach the cold tier when
					// the cold tier has a version for it to hide.
					has, err := tr.has(ctx, ref.Key)
					if err != nil {
						return err
					}
					write = has
				}
				if write {
					// Decoded in place: r refers to the iterator's
					// value, which stays valid until Next, and Append
					// copies it into the segment's columns.
					if err := row.DecodeOwned(v, types, &r); err != nil {
						return fmt.Errorf("buffer key %x: %w", k, err)
					}
					if err := w.Append(ref.Key, &r); err != nil {
						return err
					}
				}
				refs.add(ref)
				more = it.Next()
			}
			if !more {
				return it.Err()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("flush: %s: writing %s: %w", t.FullName(), spec.Path(), err)
		}
		seg := m.written(tr, spec, st)
		removed, err := m.commit(ctx, tr, buf, prefix, seg, &refs, quiet)
		if err != nil {
			return err
		}
		if seg != nil {
			res.Rows += st.Rows
			res.Tombstones += st.Tombstones
			res.Files = append(res.Files, seg.Path)
		}
		res.Removed += int64(removed)
		res.Kept += int64(refs.len() - removed)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("flush: %s: reading the buffer: %w", t.FullName(), err)
	}
	return nil
}

// nextSpec returns the Spec of user's next segment, in dir, with a new
// segment id.
func (m *Manager) nextSpec(tr *tier, user, dir string) segment.Spec {
	t, id := tr.table(), tr.allocID()
	tr.mu.RLock()
	ready := tr.dirsReady[dir]
	tr.mu.RUnlock()
	return segment.Spec{
		Dir: dir, Name: segment.FileName(t.ID, id), Table: t, Prefix: tr.prefix(user),
		Meta:     segment.Meta{TableID: t.ID, Namespace: t.Namespace, Table: t.Name, User: user, Segment: id},
		Options:  segment.WriteOptions{RowGroupRows: m.opts.RowGroupRows},
		DirReady: ready,
	}
}

// written notes that spec's directory exists durably and returns the
// segment segment.Create wrote for spec, not yet committed; nil when it
// wrote no file (no version to write).
func (m *Manager) written(tr *tier, spec segment.Spec, st segment.Stats) *segFile {
	tr.mu.Lock()
	tr.dirsReady[spec.Dir] = true
	tr.mu.Unlock()
	if st.Rows == 0 {
		return nil
	}
	t := tr.table()
	return &segFile{Segment: Segment{TableID: t.ID, Namespace: t.Namespace, Table: t.Name, ID: spec.Meta.Segment, User: spec.Meta.User,
		Path: spec.Path(), Rows: st.Rows, Tombstones: st.Tombstones, MinKey: st.MinKey, MaxKey: st.MaxKey,
		MinSeq: st.MinSeq, MaxSeq: st.MaxSeq, RowGroups: st.RowGroups, Created: m.clock.Now().UTC()}}
}

// versionRefs lists the versions a segment covers, in key order, in
// fixed-size chunks: growing it never copies the refs already added (a
// segment has up to a million).
type versionRefs struct {
	chunks [][]tables.VersionRef
	n      int
}

const refChunk = 4096

func (r *versionRefs) add(v tables.VersionRef) {
	if r.n%refChunk == 0 {
		r.chunks = append(r.chunks, make([]tables.VersionRef, 0, refChunk))
	}
	c := &r.chunks[len(r.chunks)-1]
	*c = append(*c, v)
	r.n++
}

func (r *versionRefs) len() int { return r.n }

func (r *versionRefs) at(i int) *tables.VersionRef { return &r.chunks[i/refChunk][i%refChunk] }

// lockAllAbove is the number of keys above which a commit takes every key
// lock of the table rather than the locks of its keys.
var lockAllAbove = 4096

// commit records seg (nil when every version was a deletion with nothing
// to hide) in the manifest and deletes from the buffer, in the same atomic
// batch, each version of refs that is still the buffered version of its
// key. It holds the keys' locks, so no writer replaces a version between
// the check and the delete. quiet is the table's last _seq before the
// versions were read (see flushUser): when it has not moved, every version
// is unchanged and the buffer is not read again.
func (m *Manager) commit(ctx context.Context, tr *tier, buf *tables.Buffer, prefix []byte, seg *segFile, refs *versionRefs, quiet int64) (int, error) {
	n := refs.len()
	if n == 0 {
		return 0, nil
	}
	var unlock func()
	if n > lockAllAbove {
		unlock = buf.LockAll()
	} else {
		ks := make([][]byte, n)
		for i := range n {
			ks[i] = refs.at(i).Key
		}
		unlock = buf.LockKeys(ks)
	}
	defer unlock()

	part := buf.Partition()
	first, last := refs.at(0).Key, refs.at(n-1).Key
	ops := make([]store.Operation, 0, 2)
	var rec []byte
	if seg != nil {
		var err error
		if rec, err = encodeSegment(&seg.Segment); err != nil {
			return 0, err
		}
		ops = append(ops, store.PutOp(layout.Manifests, manifestKey(&seg.Segment), rec))
	}
	if n > lockAllAbove && buf.LastSeq() == quiet {
		// No write since the versions were read: the buffer's keys from
		// the first ref to the last are exactly refs (one scan read them
		// in order), so one range delete removes them.
		if end := keyAfter(last); store.ValidateKey(end) == nil {
			ops = append(ops, store.DeleteRangeOp(part, first, end))
			return m.applyRange(ctx, tr, seg, ops, n)
		}
		ops = slices.Grow(ops, n)
		for i := range n {
			ops = append(ops, store.DeleteOp(part, refs.at(i).Key))
		}
		return m.apply(ctx, tr, seg, ops)
	}
	// One scan over the refs' key range finds the versions still buffered.
	ops = slices.Grow(ops, n)
	it, err := m.b.Scan(ctx, part, store.ScanOptions{Prefix: prefix, Start: first, Bulk: true})
	if err != nil {
		return 0, fmt.Errorf("flush: %s: checking the buffer: %w", tr.table().FullName(), err)
	}
	j := 0
	for j < n && it.Next() {
		k := it.Key()
		if bytes.Compare(k, last) > 0 {
			break
		}
		for j < n && bytes.Compare(refs.at(j).Key, k) < 0 {
			j++
		}
		if j < n && bytes.Equal(refs.at(j).Key, k) {
			s, err := row.PeekSeq(it.Value())
			if err != nil {
				it.Close()
				return 0, fmt.Errorf("flush: %s: buffer key %x: %w", tr.table().FullName(), k, err)
			}
			if s == refs.at(j).Seq {
				ops = append(ops, store.DeleteOp(part, refs.at(j).Key))
			}
			j++
		}
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("flush: %s: checking the buffer: %w", tr.table().FullName(), err)
	}
	return m.apply(ctx, tr, seg, ops)
}

// keyAfter returns the smallest key greater than k: k followed by a 0x00
// byte.
func keyAfter(k []byte) []byte {
	return append(append(make([]byte, 0, len(k)+1), k...), 0)
}

// apply makes seg visible and applies the commit batch ops (the manifest
// record first when seg is not nil, then one point delete per removed
// version). It returns the number of deletes applied.
func (m *Manager) apply(ctx context.Context, tr *tier, seg *segFile, ops []store.Operation) (int, error) {
	removed := len(ops)
	if seg != nil {
		removed--
	}
	return m.applyRange(ctx, tr, seg, ops, removed)
}

// applyRange is apply of a batch that removes the given number of buffered
// versions, whatever its operations (a range delete removes many).
func (m *Manager) applyRange(ctx context.Context, tr *tier, seg *segFile, ops []store.Operation, removed int) (int, error) {
	if seg != nil {
		// Readers must see the segment before its versions leave the
		// buffer; until the batch applies they see both, which merge to
		// the same rows.
		tr.add(seg)
	}
	if len(ops) == 0 {
		return 0, nil
	}
	if !m.snapshots {
		tr.commitMu.Lock()
		defer tr.commitMu.Unlock()
	}
	// A backend that applies fewer operations at once than the commit
	// holds gets it in several batches: the first records the segment
	// with as many deletes as fit, the others delete the rest. Between
	// them a version is in the buffer and in the segment, which merge to
	// the same row; a failure there leaves it so, and a later flush moves
	// it again (a copy with the same _seq, which reads and compactions
	// count once).
	batches := m.b.Capabilities().Split(ops)
	if len(batches) > 1 && seg != nil {
		// The first batch records the segment marked PendingPurge: until
		// the last batch clears the mark, a failure or a crash in between
		// leaves versions both buffered and in the segment, and settle
		// removes them from the buffer before the table flushes or
		// compacts again, so that no version is ever flushed twice.
		tr.mu.Lock() // Segments copies the records under it
		seg.PendingPurge = true
		marked := seg.Segment
		tr.mu.Unlock()
		rec, err := encodeSegment(&marked)
		if err != nil {
			return 0, err
		}
		ops[0] = store.PutOp(layout.Manifests, manifestKey(&marked), rec)
		batches = m.b.Capabilities().Split(ops)
	}
	if err := m.b.Batch(ctx, batches[0]); err != nil {
		if seg == nil {
			return 0, fmt.Errorf("flush: %s: removing flushed versions: %w", tr.table().FullName(), err)
		}
		return 0, m.resolveFailedCommit(tr, seg, err)
	}
	if len(batches) == 1 {
		return removed, nil
	}
	for _, batch := range batches[1:] {
		if err := m.b.Batch(ctx, batch); err != nil {
			return 0, fmt.Errorf("flush: %s: removing flushed versions: %w", tr.table().FullName(), err)
		}
	}
	if seg != nil {
		if err := m.clearPending(ctx, tr, seg); err != nil {
			return 0, fmt.Errorf("flush: %s: %w", tr.table().FullName(), err)
		}
	}
	return removed, nil
}

// clearPending records that seg's flushed versions have all left the
// buffer.
func (m *Manager) clearPending(ctx context.Context, tr *tier, seg *segFile) error {
	tr.mu.RLock()
	s := seg.Segment
	tr.mu.RUnlock()
	s.PendingPurge = false
	rec, err := encodeSegment(&s)
	if err != nil {
		return err
	}
	if err := m.b.Put(ctx, layout.Manifests, manifestKey(&s), rec); err != nil {
		return fmt.Errorf("clearing the pending purge of %s: %w", s.Path, err)
	}
	tr.mu.Lock()
	seg.PendingPurge = false
	tr.mu.Unlock()
	return nil
}

// settle completes what earlier commits of tr left undone, before tr
// flushes or compacts again: it resolves the doubts (commits whose
// outcome was unknown), then the purges that commits cut into several
// batches left pending (a failure or a crash between their batches): it
// removes from the buffer every version that a marked segment of tr holds
// and that is still buffered unchanged, then clears the mark. The caller
// holds tr.flushMu.
func (m *Manager) settle(ctx context.Context, tr *tier) error {
	if err := m.resolveDoubts(tr); err != nil {
		return err
	}
	tr.mu.RLock()
	var pending []*segFile
	for _, segs := range tr.users {
		for _, f := range segs {
			if f.PendingPurge {
				pending = append(pending, f)
			}
		}
	}
	tr.mu.RUnlock()
	if len(pending) == 0 {
		return nil
	}
	t := tr.table()
	_, buf, err := m.buffer(ctx, t.Namespace, t.Name)
	if err != nil {
		return err
	}
	for _, f := range pending {
		if !f.acquire() {
			continue // compacted away meanwhile (not while flushMu is held)
		}
		err := m.purge(ctx, tr, buf, f)
		tr.release(f)
		if err != nil {
			return fmt.Errorf("flush: %s: completing the purge of %s: %w", t.FullName(), f.Path, err)
		}
		if err := m.clearPending(ctx, tr, f); err != nil {
			return fmt.Errorf("flush: %s: %w", t.FullName(), err)
		}
	}
	return nil
}

// purge removes from the buffer the versions of f that are still buffered
// unchanged.
func (m *Manager) purge(ctx context.Context, tr *tier, buf *tables.Buffer, f *segFile) error {
	if err := f.load(tr); err != nil {
		return err
	}
	for gi := range f.groups {
		g, err := tr.rowGroup(ctx, f, gi)
		if err != nil {
			return err
		}
		refs := make([]tables.VersionRef, g.Len())
		for i := range refs {
			refs[i] = tables.VersionRef{Key: g.Key(i), Seq: g.Seq(i)}
		}
		if _, err := buf.DeleteIfUnchanged(ctx, refs); err != nil {
			return err
		}
	}
	return nil
}

// resolveFailedCommit decides what a failed flush commit did, from its
// manifest record: committed, the flush succeeded; not committed, the
// segment is unlisted and its file removed; unknown, the segment stays
// visible (harmless: either the batch applied, or the buffer still holds
// the same versions) and the table neither flushes nor compacts until
// settle learns the outcome.
func (m *Manager) resolveFailedCommit(tr *tier, seg *segFile, cause error) error {
	return m.failedCommit(tr, &doubt{
		what:               "the commit of " + seg.Path,
		key:                manifestKey(&seg.Segment),
		presentIfCommitted: true,
		committed:          func() {},
		notCommitted: func() {
			// Unlisted, the file goes when the last reader that saw
			// the segment lets it go.
			tr.remove(seg)
			tr.release(seg)
		},
	}, cause)
}

// A doubt is a commit batch that returned an error, whose effect is not
// known yet: an error may not say whether the batch applied (a lost
// reply), and reading back one manifest record the batch writes or
// deletes tells, unless that read fails too (the backend is unreachable).
// Until a doubt is resolved the table neither flushes nor compacts, so
// that no version is written to two segments and no file is forgotten;
// reads go on, as the listed segments are right whichever the outcome.
type doubt struct {
	what string // "the commit of <path>", for errors
	// key is the manifest record read back: present after the batch
	// applied when presentIfCommitted, absent otherwise.
	key                     []byte
	presentIfCommitted      bool
	committed, notCommitted func() // what to do in each case
	// files are segments the batch records, listed only once it is known
	// to have applied: a drop of the table removes them.
	files []*segFile
}

// outcome is what a commit batch that returned an error did.
type outcome int

const (
	committed outcome = iota
	notCommitted
	outcomeUnknown
)

// commitOutcome reads back d's record, and the read's error when it fails
// (the outcome is then unknown).
func (m *Manager) commitOutcome(d *doubt) (outcome, error) {
	// The caller's context may be what failed the batch.
	_, err := m.b.Get(context.Background(), layout.Manifests, d.key)
	present := err == nil
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return outcomeUnknown, err
	case present == d.presentIfCommitted:
		return committed, nil
	}
	return notCommitted, nil
}

// failedCommit acts on d, a commit batch of tr that failed with cause: it
// returns nil once d is known to have applied, cause when it did not, and
// otherwise keeps d for settle and returns an error that says the outcome
// is unknown. The caller holds tr.flushMu.
func (m *Manager) failedCommit(tr *tier, d *doubt, cause error) error {
	name := tr.table().FullName()
	switch o, rerr := m.commitOutcome(d); o {
	case committed:
		d.committed()
		return nil
	case notCommitted:
		d.notCommitted()
		return fmt.Errorf("flush: %s: %s: %w", name, d.what, cause)
	default:
		tr.doubts = append(tr.doubts, d)
		return fmt.Errorf("flush: %s: %s: outcome unknown (reading it back: %v); the table flushes and compacts again once it is known: %w",
			name, d.what, rerr, cause)
	}
}

// resolveDoubts learns the outcome of tr's doubts, oldest first, and acts
// on each; it fails while one is still unknown. The caller holds
// tr.flushMu.
func (m *Manager) resolveDoubts(tr *tier) error {
	for len(tr.doubts) > 0 {
		d := tr.doubts[0]
		o, err := m.commitOutcome(d)
		switch o {
		case committed:
			d.committed()
		case notCommitted:
			d.notCommitted()
		default:
			return fmt.Errorf("flush: %s: the outcome of %s is still unknown: %w", tr.table().FullName(), d.what, err)
		}
		tr.doubts = tr.doubts[1:]
	}
	tr.doubts = nil
	return nil
}

// FlushAll flushes every user and shared table, one after the other. It
// goes on after a failure and returns the first error.
func (m *Manager) FlushAll(ctx context.Context) (Result, error) {
	return m.flushAll(ctx, TriggerManual)
}

func (m *Manager) flushAll(ctx context.Context, trigger string) (Result, error) {
	ts, err := m.db.Catalog().Tables("")
	if err != nil {
		return Result{}, err
	}
	var total Result
	var first error
	for _, t := range ts {
		if t.Type == catalog.StreamTable {
			continue
		}
		res, err := m.flushTable(ctx, t, trigger)
		total.add(res)
		if err != nil && !errors.Is(err, core.ErrTableNotFound) && first == nil {
			first = err
		}
	}
	return total, first
}

// Segments returns the committed segments of table ns.name, ordered by
// user then segment id.
func (m *Manager) Segments(ns, name string) ([]Segment, error) {
	t, err := m.db.Catalog().Table(ns, name)
	if err != nil {
		return nil, err
	}
	tr := m.tier(t)
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	var out []Segment
	for _, segs := range tr.users {
		for _, s := range segs {
			out = append(out, s.Segment)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DropTable drops table ns.name with its buffer (through the catalog), its
// manifest and its segment files. A drop interrupted after the catalog
// forgot the table is completed by the next Open.
func (m *Manager) DropTable(ctx context.Context, ns, name string) error {
	t, err := m.db.Catalog().Table(ns, name)
	if err != nil {
		return err
	}
	var tr *tier
	if t.Type != catalog.StreamTable {
		tr = m.tier(t)
		tr.flushMu.Lock()
		defer tr.flushMu.Unlock()
	}
	if err := m.db.Catalog().DropTable(ctx, ns, name); err != nil {
		return err
	}
	if tr == nil {
		return nil
	}
	m.forgetHealth(t.ID)
	tr.mu.Lock()
	tr.dropped = true
	var segs []*segFile
	for _, s := range tr.users {
		segs = append(segs, s...)
	}
	tr.users = map[string][]*segFile{}
	tr.mu.Unlock()
	// The segments of commits in doubt are recorded or not: their records
	// go with the others, and nothing reads their files.
	var unlisted []*Segment
	for _, d := range tr.doubts {
		for _, f := range d.files {
			unlisted = append(unlisted, &f.Segment)
		}
	}
	tr.doubts = nil
	m.mu.Lock()
	delete(m.tiers, t.ID)
	m.mu.Unlock()
	recs := make([]*Segment, len(segs))
	for i, s := range segs {
		recs[i] = &s.Segment
	}
	// A read that took the segment list before the drop may still be
	// reading a file: like a compaction, the drop gives up the tier's
	// reference, and the last reader removes the file, so that the read
	// ends as it began instead of failing on a missing file.
	var free []*Segment
	for _, f := range segs {
		if f.refs.Add(-1) == 0 {
			free = append(free, &f.Segment)
		}
	}
	recs = append(recs, unlisted...)
	free = append(free, unlisted...)
	left, err := m.removeSegments(ctx, recs, free)
	if err != nil {
		return err
	}
	return errors.Join(left...)
}

// removeSegments deletes the records of segs, then the files of free
// (those no reader holds: a reader removes its file when done), of a
// dropped table. A file it cannot remove is no longer recorded, so it is
// harmless, and the next Open removes it: each such failure is returned in
// left, and err is the failure to delete the records.
func (m *Manager) removeSegments(ctx context.Context, segs, free []*Segment) (left []error, err error) {
	ops := make([]store.Operation, len(segs))
	for i, s := range segs {
		ops[i] = store.DeleteOp(layout.Manifests, manifestKey(s))
	}
	// The records of a dropped table need not go at once: one left behind
	// by a failure is an orphan, which the next Open removes.
	for _, batch := range m.b.Capabilities().Split(ops) {
		if err := m.b.Batch(ctx, batch); err != nil {
			return nil, fmt.Errorf("flush: removing manifest records: %w", err)
		}
	}
	dirs := map[string]bool{}
	for _, s := range free {
		m.cache.Forget(s.Path)
		if err := m.fs.Remove(s.Path); err != nil && !segment.IsNotExist(err) {
			left = append(left, fmt.Errorf("flush: removing %s: %w", s.Path, err))
			continue
		}
		for d := parent(s.Path); d != "."; d = parent(d) {
			dirs[d] = true
		}
	}
	removeEmptyDirs(m.fs, dirs)
	return left, nil
}

// Leftovers returns the errors of the files that Open found unrecorded
// (temporary files, segments no manifest records, segments of dropped
// tables) and could not remove, a read-only Parquet directory for
// example. No read sees such a file, and a later Open removes it; a
// server reports them.
func (m *Manager) Leftovers() []error { return slices.Clone(m.leftovers) }
