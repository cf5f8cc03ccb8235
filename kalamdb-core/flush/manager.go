package flush

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// Manager is the cold tier of a DB: it opens the table layer with Parquet
// segments as a second source of every user and shared table, flushes
// buffered rows to segments (on demand, on a schedule, at shutdown), and
// recovers from a crash at any step when it opens. It is safe for
// concurrent use.
type Manager struct {
	b     store.StorageBackend
	db    *tables.DB
	store segment.Store
	cache *segment.Cache
	clock clock.Clock
	opts  Options
	// snapshots: the backend's scans are snapshots (see tier.commitMu).
	snapshots bool
	// shared: other processes write the buffer too (the backend is
	// MultiProcess), so commits remove flushed versions with checks
	// (commitShared).
	shared bool

	mu    sync.Mutex
	tiers map[uint64]*tier

	sched   sync.Mutex
	cancel  context.CancelFunc // stops the scheduler's rounds
	stopped chan struct{}      // closed when the scheduler ends

	// health spaces out the retries of failing tables (Health).
	health      *Backoff[uint64]
	healthMu    sync.Mutex
	failing     map[uint64]failingTable
	lastFailure time.Time

	// leftovers are the files recovery could not remove (Leftovers).
	leftovers []error
	// young counts the unrecorded objects recovery kept, being younger
	// than the grace period (Young).
	young int

	// gc is the state of CollectGarbage.
	gc garbage
}

// Open opens the table layer on b with the cold tier under opts.Dir, and
// recovers what a crash may have left: temporary files and segment files
// that no manifest records are removed, and so are the records and files of
// tables that no longer exist. A file it cannot remove (a read-only
// directory) does not stop it: Leftovers reports it. A record whose file
// is missing is reported as core.ErrCorrupt: it would be lost data, which
// the flush order never produces.
func Open(ctx context.Context, b store.StorageBackend, opts Options) (*Manager, error) {
	if opts.Store == nil {
		desc := opts.Dir
		if opts.FS == nil {
			if opts.Dir == "" {
				return nil, fmt.Errorf("%w: flush: no segment store and no Parquet directory", core.ErrInvalidArgument)
			}
			opts.FS = segment.DirFS(opts.Dir)
		} else if desc == "" {
			desc = "the segment file system"
		}
		opts.Store = segment.FSStore(opts.FS, desc)
	}
	if opts.GCGrace == 0 {
		opts.GCGrace = DefaultGCGrace
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
	if opts.Leases == nil && b.Capabilities().MultiProcess {
		ls, err := lease.New(b, lease.Options{Owner: "flush-" + rand.Text(), TTL: opts.Tables.LeaseTTL, Clock: opts.Tables.Clock})
		if err != nil {
			return nil, err
		}
		opts.Leases = ls
	}
	m := &Manager{b: b, store: opts.Store, cache: segment.NewCache(opts.FooterCacheFiles, opts.RowGroupCacheBytes, opts.KeyCacheBytes),
		clock: opts.Tables.Clock, opts: opts, tiers: map[uint64]*tier{}, snapshots: b.Capabilities().SnapshotScans, shared: b.Capabilities().MultiProcess,
		health: NewBackoff[uint64](RetryFirst, RetryMax), failing: map[uint64]failingTable{}}
	topts := opts.Tables
	topts.ColdTier = coldTier{m}
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

// DB returns the table layer, whose user and shared tables read through
// the cold tier.
func (m *Manager) DB() *tables.DB { return m.db }

// CacheStats returns the counters of the footer and row-group cache.
func (m *Manager) CacheStats() segment.CacheStats { return m.cache.Stats() }

// ColdTier returns the cold tier as the table layer sees it (what
// tables.Options.ColdTier takes): the DB returned by DB reads through it
// already. Its ColdSource reads a table's segments alone, as benchmarks do.
func (m *Manager) ColdTier() tables.ColdTier { return coldTier{m} }

// coldTier is the Manager's side of tables.ColdTier.
type coldTier struct{ m *Manager }

// ColdSource implements tables.ColdTier: the segments of table t.
func (c coldTier) ColdSource(t *catalog.Table) (tables.Source, error) {
	return c.m.tier(t), nil
}

// ChangeSchema implements tables.ColdTier: change runs while the table
// neither flushes nor compacts, and its segments are then read and written
// with the new definition. Segments written before keep their columns; a
// column they lack reads as null.
func (c coldTier) ChangeSchema(t *catalog.Table, change func() (*catalog.Table, error)) (*catalog.Table, error) {
	tr := c.m.tier(t)
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

// tier returns the tier of t, creating an empty one for a new table. A
// table id is never reused, so the id names the table.
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
	t, err := m.db.Catalog().FindTable(ctx, ns, name)
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

// Segments returns the committed segments of table ns.name, ordered by
// user then segment id. On a backend several servers share it reads the
// table's segment list again first when another server changed it.
func (m *Manager) Segments(ctx context.Context, ns, name string) ([]Segment, error) {
	t, err := m.db.Catalog().FindTable(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	tr := m.tier(t)
	if err := tr.sync(ctx); err != nil {
		return nil, err
	}
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

// Leftovers returns the errors of the files that Open found unrecorded
// (temporary files, segments no manifest records, segments of dropped
// tables) and could not remove, a read-only Parquet directory for
// example. No read sees such a file, and a later Open removes it; a
// server reports them.
func (m *Manager) Leftovers() []error { return slices.Clone(m.leftovers) }

// Young returns how many unrecorded segment objects Open kept because they
// were younger than Options.GCGrace: uploads that may be about to commit,
// or garbage that a later Open removes.
func (m *Manager) Young() int { return m.young }

// Store returns the store of the segments.
func (m *Manager) Store() segment.Store { return m.store }
