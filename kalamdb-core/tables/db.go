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
// winning and tombstones hiding older versions.
package tables

import (
	"context"
	"fmt"
	"sync"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/seq"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
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
}

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
// per table. Open exactly one DB per backend (the key locks and _seq
// allocators live in it). It is safe for concurrent use.
type DB struct {
	b     store.StorageBackend
	cat   *catalog.Catalog
	clock clock.Clock
	block int64
	cold  ColdTier

	// bg runs the eviction timers of the stream stores; StopEviction and
	// Close stop it.
	bg *background

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
	return &DB{b: b, cat: cat, clock: opts.Clock, block: opts.SeqBlock, cold: opts.ColdTier, bg: newBackground(),
		rows: map[string]*rowTable{}, streams: map[string]*StreamTableStore{}}, nil
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
// re-created since. It looks the table up once: the store it returns is
// that of the table the catalog held at that moment.
func (db *DB) rowTable(ctx context.Context, ns, name string, want catalog.TableType) (*rowTable, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	// Read under db.mu, which AddColumn holds while it changes the
	// definition and the store together: a definition read before would
	// look newer than the store's once AddColumn ran.
	t, err := db.table(ns, name, want)
	if err != nil {
		return nil, err
	}
	if db.closed {
		return nil, fmt.Errorf("tables: %w", store.ErrClosed)
	}
	if rt := db.rows[t.FullName()]; rt != nil && rt.t == t {
		return rt, nil
	}
	alloc, err := db.allocator(ctx, t)
	if err != nil {
		return nil, err
	}
	var cold Source
	if db.cold != nil {
		if cold, err = db.cold.ColdSource(t); err != nil {
			return nil, fmt.Errorf("%s: opening the cold tier: %w", t.FullName(), err)
		}
	}
	rt := newRowTable(t, db.b, alloc, db.clock, cold)
	// The versions a restart finds buffered count as written, up to the
	// flush row limit (or one, to know that something waits for a timed
	// flush): the count reads no more than that.
	limit := 1
	if t.Flush.RowLimit > 0 {
		limit = int(min(t.Flush.RowLimit, 1<<30))
	}
	n, err := store.Count(ctx, db.b, t.Partition(), store.ScanOptions{Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("%s: counting the buffer: %w", t.FullName(), rt.wrap(err))
	}
	rt.written.Store(n)
	db.rows[t.FullName()] = rt
	return rt, nil
}

// AddColumn appends the nullable column col to user or shared table
// ns.name (see catalog.Catalog.AddColumn) and switches the table's store to
// the new definition: operations in progress finish with the old one,
// later ones use the new one, and rows written before read the column as
// null, from the buffer and from the cold tier alike. With a cold tier, the
// table's flushes and compactions wait meanwhile. It returns the new
// definition.
func (db *DB) AddColumn(ctx context.Context, ns, name string, col catalog.Column) (*catalog.Table, error) {
	t, err := db.cat.Table(ns, name)
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
	s, err := openStream(ctx, t, db.b, alloc, db.clock, db.bg)
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
// makes later store lookups fail with store.ErrClosed. Stores obtained
// earlier keep working until the backend is closed. It does not close the
// backend.
func (db *DB) Close() error {
	db.mu.Lock()
	db.closed = true
	db.mu.Unlock()
	// Outside db.mu: the eviction runs being cancelled take no DB lock,
	// and lookups meanwhile fail at once instead of waiting.
	db.StopEviction()
	return nil
}
