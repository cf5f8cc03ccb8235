// Package tables implements KalamDB's three table stores on the
// StorageBackend contract alone: UserTableStore (rows owned by users, each
// reaching only their own), SharedTableStore (rows shared by all) and
// StreamTableStore (append-only events with a TTL and a bounded buffer).
//
// Open a DB on a backend, define tables through its Catalog, and get a
// store per table from DB.User, DB.Shared or DB.Stream, or, for one caller
// of a user or shared table (a request), from DB.RowStore. Errors wrap the
// sentinels of package core (ErrTableNotFound, ErrDuplicateKey,
// ErrRowNotFound, ErrInvalidRow, …), checkable with errors.Is.
//
// # Design
//
// Each table has one partition (see package layout). A user or shared
// table keeps one buffered version per row: the key is the encoded user id
// (user tables) and primary key, the value the row with its _seq, _updated
// and _deleted. Check-then-act sequences (insert's uniqueness check, update,
// delete, a flush's delete-if-unchanged) hold a striped per-key lock, since
// the contract has no compare-and-swap; every change that writes several
// keys goes through one atomic Batch. _seq values come from a per-table
// allocator that persists block reservations, so they are unique and
// increasing across restarts.
//
// Reads go through Sources: the buffer is the first, and the cold tier of
// Options.ColdTier the second; rows are merged by key with the newest _seq
// winning and tombstones hiding older versions (package internal/merge,
// the merge the cold tier of package flush uses for its segments too).
package tables

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/seq"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
)

// Options configure a DB.
type Options struct {
	// Clock is the time source of _updated, stream TTLs and eviction timers;
	// nil means the real clock.
	Clock clock.Clock
	// SeqBlock is how many _seq values one reservation write covers; 0 means
	// the default (4096). A restart skips at most this many values.
	SeqBlock int64
	// ColdTier, when set, supplies the cold tier of every user and shared
	// table: the Source it returns is added to the table's reads when the
	// table's store is first opened. Package flush provides one.
	ColdTier ColdTier
	// CatalogRefreshed, when set, is called after each background refresh
	// of the catalog (see DB), with whether the catalog changed and the
	// error of the refresh. It runs on the refresh's goroutine.
	CatalogRefreshed func(changed bool, err error)
	// Leases are the leases that the eviction of stream tables takes on a
	// backend several processes share (store.Capabilities.MultiProcess):
	// one eviction of a table at a time among the servers, under the
	// table's lease (lease.TableName; see StreamTableStore.Evict). Nil
	// there means the DB makes its own, owned by a random name, timed by
	// Clock, lasting LeaseTTL. Embedded backends take no lease and ignore
	// it.
	Leases *lease.Leases
	// LeaseTTL is how long a lease of background work (a stream's
	// eviction here; a flush or compaction in package flush, which reads
	// it too) lasts unless renewed, when the leases are made here rather
	// than given; 0 means lease.DefaultTTL. Work renews its lease every
	// third of it and commits nothing in the last third, so a server that
	// dies holding one holds that work up for at most LeaseTTL, and the
	// servers' clocks must agree to within a third of it.
	LeaseTTL time.Duration
}

// CatalogRefreshInterval is how often a DB on a backend that several
// processes share (store.Capabilities.MultiProcess) brings its copy of
// the catalog up to date in the background.
const CatalogRefreshInterval = time.Second

// ColdTier supplies the cold tier of user and shared tables (see
// Options.ColdTier).
type ColdTier interface {
	// ColdSource returns the cold Source of table t.
	ColdSource(t *catalog.Table) (Source, error)
	// ChangeSchema runs change, which switches table t to a new definition
	// with columns added at the end, at a moment when the cold tier of t
	// neither writes nor merges segments, and then reads and writes t's
	// segments with the definition change returned (on success).
	ChangeSchema(t *catalog.Table, change func() (*catalog.Table, error)) (*catalog.Table, error)
}

// DB is the table layer over one StorageBackend: the catalog and one store
// per table. Open exactly one DB per backend in a process (the key locks
// and _seq allocators live in it). It is safe for concurrent use.
//
// On a backend that several processes share (MultiProcess), each process's
// DB holds a copy of the catalog that other processes change: the DB
// refreshes it every CatalogRefreshInterval of its clock, in the
// background until Close, and at once when a lookup names a namespace or
// table the copy does not know. A table whose definition another process
// changed (a column added) has its store switched to the new definition
// when next looked up. Embedded backends do neither.
type DB struct {
	b     store.StorageBackend
	cat   *catalog.Catalog
	clock clock.Clock
	block int64
	cold  ColdTier

	// bg runs the eviction timers of the stream stores; StopEviction and
	// Close stop it.
	bg *background
	// shared: other processes share the backend and change the catalog.
	shared bool
	// sync runs the background refresh of the catalog on a shared
	// backend; Close stops it.
	sync *background
	// leases are taken by stream evictions on a shared backend (nil on an
	// embedded one).
	leases *lease.Leases

	mu      sync.Mutex
	closed  bool
	rows    map[string]*rowTable
	streams map[string]*StreamTableStore
}

// Open opens the catalog stored in b and returns the DB over it. Closing the
// DB does not close b.
func Open(ctx context.Context, b store.StorageBackend, opts Options) (*DB, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	cat, err := catalog.Open(ctx, b, catalog.Options{Clock: opts.Clock})
	if err != nil {
		return nil, err
	}
	db := &DB{b: b, cat: cat, clock: opts.Clock, block: opts.SeqBlock, cold: opts.ColdTier, bg: newBackground(),
		shared: b.Capabilities().MultiProcess, sync: newBackground(), rows: map[string]*rowTable{}, streams: map[string]*StreamTableStore{}}
	if db.shared {
		db.leases = opts.Leases
		if db.leases == nil {
			if db.leases, err = lease.New(b, lease.Options{Owner: "tables-" + rand.Text(), TTL: opts.LeaseTTL, Clock: opts.Clock}); err != nil {
				return nil, err
			}
		}
		// The ticker exists before Open returns: a fake clock advanced
		// right after fires it.
		tk := db.clock.NewTicker(CatalogRefreshInterval)
		if _, _, err := db.sync.run(func(ctx context.Context) { db.refreshLoop(ctx, tk, opts.CatalogRefreshed) }); err != nil {
			tk.Stop()
			return nil, err
		}
	}
	return db, nil
}

// refreshLoop refreshes the catalog at every tick of tk until ctx ends,
// reporting each refresh to report (when set).
func (db *DB) refreshLoop(ctx context.Context, tk clock.Ticker, report func(bool, error)) {
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C():
		}
		changed, err := db.cat.Refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		if report != nil {
			report(changed, err)
		}
	}
}

// Catalog returns the catalog, to create and drop namespaces and tables.
func (db *DB) Catalog() *catalog.Catalog { return db.cat }

// Backend returns the StorageBackend the DB works on.
func (db *DB) Backend() store.StorageBackend { return db.b }

// anyRowTable is the want of a lookup that accepts a user or a shared
// table.
const anyRowTable catalog.TableType = ""

// table looks ns.name up in the catalog and checks that it is a want
// table (a user or shared table for anyRowTable).
func (db *DB) table(ns, name string, want catalog.TableType) (*catalog.Table, error) {
	t, err := db.cat.Table(ns, name)
	if err != nil {
		return nil, err
	}
	return checkType(t, want)
}

// checkType checks that t is a want table (a user or shared table for
// anyRowTable).
func checkType(t *catalog.Table, want catalog.TableType) (*catalog.Table, error) {
	switch {
	case want == anyRowTable && t.Type == catalog.StreamTable:
		return nil, fmt.Errorf("%w: %s is a stream table, not a user or shared table", core.ErrWrongTableType, t.FullName())
	case want != anyRowTable && t.Type != want:
		return nil, fmt.Errorf("%w: %s is a %s table, not a %s table", core.ErrWrongTableType, t.FullName(), t.Type, want)
	}
	return t, nil
}

func (db *DB) allocator(ctx context.Context, t *catalog.Table) (*seq.Allocator, error) {
	a, err := seq.Open(ctx, db.b, layout.Sequences, layout.SequenceKey(t.ID), db.block)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.FullName(), err)
	}
	return a, nil
}

// rowTable returns the cached store of user or shared table ns.name (of
// either type for anyRowTable), opening it when the table is new or was
// re-created since, and switching it to the catalog's definition when
// another process added columns to the table. It looks the table up once:
// the store it returns is that of the table the catalog held at that
// moment.
func (db *DB) rowTable(ctx context.Context, ns, name string, want catalog.TableType) (*rowTable, error) {
	refreshed := false
	for {
		rt, stale, err := db.openRowTable(ctx, ns, name, want)
		if err != nil && !refreshed {
			refreshed = true
			if again, err := db.cat.RefreshIfMissing(ctx, err); again || err != nil {
				if err != nil {
					return nil, err
				}
				continue
			}
		}
		if stale == nil {
			return rt, err
		}
		if err := db.adopt(stale); err != nil {
			return nil, err
		}
	}
}

// adopt switches rt to the catalog's definition of its table, which
// another process extended with columns, as AddColumn switches it: with a
// cold tier, while the table neither flushes nor compacts.
func (db *DB) adopt(rt *rowTable) error {
	db.mu.Lock()
	old := rt.t
	db.mu.Unlock()
	change := func() (*catalog.Table, error) {
		db.mu.Lock()
		defer db.mu.Unlock()
		t, err := db.cat.Table(old.Namespace, old.Name)
		if err != nil {
			return nil, err
		}
		if t.ID == rt.t.ID && len(t.Columns) > len(rt.t.Columns) {
			rt.schemaMu.Lock()
			rt.setSchema(t)
			rt.schemaMu.Unlock()
		}
		return t, nil
	}
	var err error
	if db.cold != nil {
		_, err = db.cold.ChangeSchema(old, change)
	} else {
		_, err = change()
	}
	return err
}

// openRowTable is rowTable without the refresh: it returns the store, or,
// when the cached store of the table has fewer columns than the catalog's
// definition (another process added columns), that store to adopt first.
func (db *DB) openRowTable(ctx context.Context, ns, name string, want catalog.TableType) (rt, stale *rowTable, err error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	// Read under db.mu, which AddColumn holds while it changes the
	// definition and the store together: a definition read before would
	// look newer than the store's once AddColumn ran.
	t, err := db.table(ns, name, want)
	if err != nil {
		return nil, nil, err
	}
	if db.closed {
		return nil, nil, fmt.Errorf("tables: %w", store.ErrClosed)
	}
	if rt := db.rows[t.FullName()]; rt != nil {
		switch {
		case rt.t == t:
			return rt, nil, nil
		case rt.t.ID == t.ID && len(t.Columns) > len(rt.t.Columns):
			return nil, rt, nil
		}
	}
	alloc, err := db.allocator(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	var cold Source
	if db.cold != nil {
		if cold, err = db.cold.ColdSource(t); err != nil {
			return nil, nil, fmt.Errorf("%s: opening the cold tier: %w", t.FullName(), err)
		}
	}
	rt = newRowTable(t, db.b, alloc, db.clock, cold)
	// The versions a restart finds buffered count as written, up to the
	// flush row limit (or one, to know that something waits for a timed
	// flush): the count reads no more than that.
	limit := 1
	if t.Flush.RowLimit > 0 {
		limit = int(min(t.Flush.RowLimit, 1<<30))
	}
	n, err := store.Count(ctx, db.b, t.Partition(), store.ScanOptions{Limit: limit})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: counting the buffer: %w", t.FullName(), rt.wrap(err))
	}
	rt.written.Store(n)
	db.rows[t.FullName()] = rt
	return rt, nil, nil
}

// AddColumn appends the nullable column col to user or shared table
// ns.name (see catalog.Catalog.AddColumn) and switches the table's store to
// the new definition: operations in progress finish with the old one,
// later ones use the new one, and rows written before read the column as
// null, from the buffer and from the cold tier alike. With a cold tier, the
// table's flushes and compactions wait meanwhile. It returns the new
// definition.
func (db *DB) AddColumn(ctx context.Context, ns, name string, col catalog.Column) (*catalog.Table, error) {
	t, err := db.cat.FindTable(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	change := func() (*catalog.Table, error) {
		db.mu.Lock()
		defer db.mu.Unlock()
		rt := db.rows[t.FullName()]
		if rt != nil {
			rt.schemaMu.Lock()
			defer rt.schemaMu.Unlock()
		}
		nt, err := db.cat.AddColumn(ctx, ns, name, col)
		if err != nil {
			return nil, err
		}
		if rt != nil && rt.t.ID == nt.ID {
			rt.setSchema(nt)
		}
		return nt, nil
	}
	if db.cold != nil && t.Type != catalog.StreamTable {
		return db.cold.ChangeSchema(t, change)
	}
	return change()
}

// RowStore returns the store of user or shared table ns.name as the
// caller user sees it: for a user table, every call reaches user's rows and
// no others; a shared table has no users, and user is ignored. It is what a
// request handler needs: it looks the table up once, so every call on the
// RowStore reaches that one table, even when the table is dropped and
// re-created under the same name meanwhile (the calls then fail with
// core.ErrTableNotFound; a new RowStore reaches the new table).
//
// It fails with core.ErrNamespaceNotFound, core.ErrTableNotFound, or
// core.ErrWrongTableType when ns.name is a stream table (see Stream).
func (db *DB) RowStore(ctx context.Context, ns, name, user string) (*RowStore, error) {
	rt, err := db.rowTable(ctx, ns, name, anyRowTable)
	if err != nil {
		return nil, err
	}
	if !rt.perUser {
		user = ""
	}
	return &RowStore{rt: rt, user: user}, nil
}

// User returns the store of user table ns.name, for calls that name their
// user. It fails with core.ErrNamespaceNotFound, core.ErrTableNotFound, or
// core.ErrWrongTableType when the table is not a user table.
func (db *DB) User(ctx context.Context, ns, name string) (*UserTableStore, error) {
	rt, err := db.rowTable(ctx, ns, name, catalog.UserTable)
	if err != nil {
		return nil, err
	}
	return &UserTableStore{rt: rt}, nil
}

// Shared returns the store of shared table ns.name; see User.
func (db *DB) Shared(ctx context.Context, ns, name string) (*SharedTableStore, error) {
	rt, err := db.rowTable(ctx, ns, name, catalog.SharedTable)
	if err != nil {
		return nil, err
	}
	return &SharedTableStore{rows: RowStore{rt: rt}}, nil
}

// Stream returns the store of stream table ns.name; see User. The first
// call for a table counts its stored events.
func (db *DB) Stream(ctx context.Context, ns, name string) (*StreamTableStore, error) {
	if _, err := db.table(ns, name, catalog.StreamTable); err != nil && db.shared {
		if again, rerr := db.cat.RefreshIfMissing(ctx, err); rerr != nil || !again {
			return nil, cmp.Or(rerr, err)
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	// Looked up under db.mu, as rowTable does, so that the store installed
	// is always that of the table the catalog holds.
	t, err := db.table(ns, name, catalog.StreamTable)
	if err != nil {
		return nil, err
	}
	if db.closed {
		return nil, fmt.Errorf("tables: %w", store.ErrClosed)
	}
	old := db.streams[t.FullName()]
	if old != nil && old.t == t {
		return old, nil
	}
	alloc, err := db.allocator(ctx, t)
	if err != nil {
		return nil, err
	}
	s, err := openStream(ctx, t, db.b, alloc, db.clock, db.bg, db.leases)
	if err != nil {
		return nil, err
	}
	if old != nil {
		old.StopEviction()
	}
	db.streams[t.FullName()] = s
	return s, nil
}

// StopEviction stops the eviction timers of every stream store of the DB
// (including stores replaced since by a re-created table's), cancels the
// runs in progress and waits for them to end. Eviction cannot be started
// again (StreamTableStore.StartEviction then fails with store.ErrClosed);
// the stores keep working otherwise, and an append that takes a stream
// beyond its bounds still evicts. A server calls it when it shuts down,
// before its final flush; Close calls it too. It is idempotent.
func (db *DB) StopEviction() { db.bg.stop() }

// Close stops the eviction timers of every stream store (StopEviction) and
// the background refresh of the catalog, and makes later store lookups
// fail with store.ErrClosed. Stores obtained
// earlier keep working until the backend is closed. It does not close the
// backend.
func (db *DB) Close() error {
	db.mu.Lock()
	db.closed = true
	db.mu.Unlock()
	// Outside db.mu: the eviction runs being cancelled take no DB lock,
	// and lookups meanwhile fail at once instead of waiting.
	db.StopEviction()
	db.sync.stop()
	return nil
}
