package catalog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
)

// recordFormat is the version of the JSON records the catalog stores.
const recordFormat = 1

type tableRecord struct {
	Format int `json:"format"`
	*Table
}

type namespaceRecord struct {
	Format int `json:"format"`
	*Namespace
	// Gen counts the tables created in the namespace: creating one
	// rewrites the record, so that a drop of the namespace, which checks
	// the record unchanged, cannot succeed beside it.
	Gen uint64 `json:"gen,omitempty"`
}

// ReservationGrace is how long the id of a table being created keeps its
// partition from the sweep of orphan partitions: a create (on this server
// or another sharing the backend) reserves the id, creates the partition,
// then records the table, and takes milliseconds.
const ReservationGrace = time.Hour

// maxConflicts bounds the retries of a change whose records other servers
// keep changing between its read and its batch.
const maxConflicts = 50

// Catalog is the set of namespaces and tables of one StorageBackend. Open
// loads it; every change is written through to the backend, in one batch
// that checks the records it read, before it is visible. It is safe for
// concurrent use, and several Catalogs (of several servers) may share a
// backend: each holds a copy that Refresh brings up to date, and a change
// is decided on what the backend holds, never on the copy.
type Catalog struct {
	b     store.StorageBackend
	clock clock.Clock

	ddl sync.Mutex // serialises this Catalog's changes and refreshes

	mu         sync.RWMutex
	namespaces map[string]*Namespace
	tables     map[string]*Table // by "ns.table"
	raw        map[string][]byte // the stored record of each table
	version    []byte            // the catalog version the copy was read at

	id string // the database id
}

// Options configure a Catalog.
type Options struct {
	// Clock stamps CreatedAt and id reservations; nil means the real
	// clock.
	Clock clock.Clock
}

// Open loads the catalog stored in b, creating the system partitions on
// first use. It also removes what an interrupted change may have left
// behind: table partitions and sequence counters of tables that do not
// exist (a partition whose id was reserved less than ReservationGrace ago
// stays: its create may be in progress on another server).
func Open(ctx context.Context, b store.StorageBackend, opts Options) (*Catalog, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	c := &Catalog{b: b, clock: opts.Clock}
	for _, p := range layout.SystemPartitions() {
		if err := b.CreatePartition(ctx, p); err != nil {
			return nil, fmt.Errorf("catalog: creating %s: %w", p, err)
		}
	}
	id, err := EnsureDatabaseID(ctx, b, "")
	if err != nil {
		return nil, err
	}
	c.id = id
	if _, err := c.refresh(ctx, true); err != nil {
		return nil, err
	}
	if err := c.sweep(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// EnsureDatabaseID returns the id of the database stored in b (in the
// catalog partition, which it creates when missing), creating the id when
// absent: candidate when it is not empty, otherwise 32 random hexadecimal
// digits. Of servers opening a new database at once, one creates the id
// (its batch checks it absent) and the others read that one. Open calls it;
// a server calls it before, with the id an older version kept elsewhere, to
// keep that one.
func EnsureDatabaseID(ctx context.Context, b store.StorageBackend, candidate string) (string, error) {
	if err := b.CreatePartition(ctx, layout.Catalog); err != nil {
		return "", fmt.Errorf("catalog: creating %s: %w", layout.Catalog, err)
	}
	key := layout.DatabaseIDKey()
	for attempt := 0; ; attempt++ {
		v, err := b.Get(ctx, layout.Catalog, key)
		if err == nil {
			if len(v) == 0 {
				return "", fmt.Errorf("%w: catalog: the database id is empty", core.ErrCorrupt)
			}
			return string(v), nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("catalog: reading the database id: %w", err)
		}
		id := candidate
		if id == "" {
			var r [16]byte
			_, _ = rand.Read(r[:])
			id = hex.EncodeToString(r[:])
		}
		err = b.Batch(ctx, []store.Operation{store.CheckAbsentOp(layout.Catalog, key), store.PutOp(layout.Catalog, key, []byte(id))})
		if err == nil {
			return id, nil
		}
		if retry, err := conflict(err, attempt, "creating the database id"); !retry {
			return "", err
		}
	}
}

// DatabaseID returns the id of the database: created by the first server
// that opened the backend, the same for every server that shares it, and
// kept across restarts.
func (c *Catalog) DatabaseID() string { return c.id }

// Refresh brings the catalog's copy up to date with the backend, where
// other servers may have changed it: it reads the catalog's version (one
// read) and, when it moved, the whole catalog. It reports whether anything
// changed. A *Table of a table whose record did not change stays the same
// pointer.
func (c *Catalog) Refresh(ctx context.Context) (bool, error) {
	c.ddl.Lock()
	defer c.ddl.Unlock()
	return c.refresh(ctx, false)
}

// refresh is Refresh, forced to load when force; the caller holds ddl (or
// has the Catalog to itself).
func (c *Catalog) refresh(ctx context.Context, force bool) (bool, error) {
	// The version first: a change after this read moves it again, so the
	// next refresh sees that change even if this load already does.
	v, err := c.b.Get(ctx, layout.Catalog, layout.CatalogVersionKey())
	switch {
	case errors.Is(err, store.ErrNotFound):
		v = nil
	case err != nil:
		return false, fmt.Errorf("catalog: reading its version: %w", err)
	}
	c.mu.RLock()
	same := c.namespaces != nil && bytes.Equal(v, c.version)
	c.mu.RUnlock()
	if same && !force {
		return false, nil
	}
	return true, c.load(ctx, v)
}

// load reads every namespace and table record and replaces the copy with
// them, read at catalog version v.
func (c *Catalog) load(ctx context.Context, v []byte) error {
	namespaces := map[string]*Namespace{}
	tables := map[string]*Table{}
	raw := map[string][]byte{}
	c.mu.RLock()
	oldTables, oldRaw := c.tables, c.raw
	c.mu.RUnlock()

	it, err := c.b.Scan(ctx, layout.Catalog, store.ScanOptions{Prefix: layout.NamespacesPrefix()})
	if err != nil {
		return fmt.Errorf("catalog: loading namespaces: %w", err)
	}
	for it.Next() {
		ns := &Namespace{}
		if err := json.Unmarshal(it.Value(), &namespaceRecord{Namespace: ns}); err != nil {
			it.Close()
			return fmt.Errorf("%w: catalog: namespace record %q: %v", core.ErrCorrupt, it.Key(), err)
		}
		namespaces[ns.Name] = ns
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("catalog: loading namespaces: %w", err)
	}

	it, err = c.b.Scan(ctx, layout.Catalog, store.ScanOptions{Prefix: layout.AllTablesPrefix()})
	if err != nil {
		return fmt.Errorf("catalog: loading tables: %w", err)
	}
	for it.Next() {
		t, err := decodeTable(it.Value())
		if err != nil {
			it.Close()
			return err
		}
		name := t.FullName()
		if old := oldTables[name]; old != nil && bytes.Equal(oldRaw[name], it.Value()) {
			t = old
		}
		tables[name] = t
		raw[name] = bytes.Clone(it.Value())
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("catalog: loading tables: %w", err)
	}

	next, _, err := c.nextID(ctx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t.ID >= next {
			return fmt.Errorf("%w: catalog: table %s has id %d, the counter is at %d", core.ErrCorrupt, t.FullName(), t.ID, next)
		}
	}
	c.mu.Lock()
	c.namespaces, c.tables, c.raw, c.version = namespaces, tables, raw, bytes.Clone(v)
	c.mu.Unlock()
	return nil
}

// decodeTable decodes and checks a stored table record.
func decodeTable(v []byte) (*Table, error) {
	t := &Table{}
	if err := json.Unmarshal(v, &tableRecord{Table: t}); err != nil {
		return nil, fmt.Errorf("%w: catalog: table record: %v", core.ErrCorrupt, err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%w: catalog: stored table %s is not valid: %v", core.ErrCorrupt, t.FullName(), err)
	}
	if err := t.prepare(); err != nil {
		return nil, fmt.Errorf("%w: catalog: stored table %s: %v", core.ErrCorrupt, t.FullName(), err)
	}
	return t, nil
}

// nextID reads the table id counter: the next id, and the stored value
// (nil when absent) for the check of a batch that changes it.
func (c *Catalog) nextID(ctx context.Context) (uint64, []byte, error) {
	v, err := c.b.Get(ctx, layout.Catalog, layout.NextTableIDKey())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 1, nil, nil
	case err != nil:
		return 0, nil, fmt.Errorf("catalog: reading the table id counter: %w", err)
	case len(v) != 8:
		return 0, nil, fmt.Errorf("%w: catalog: table id counter is %d bytes", core.ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), v, nil
}

// check returns the check that key of the catalog still holds raw, or is
// still absent when raw is nil.
func check(key, raw []byte) store.Operation {
	if raw == nil {
		return store.CheckAbsentOp(layout.Catalog, key)
	}
	return store.CheckValueOp(layout.Catalog, key, raw)
}

// get reads key of the catalog partition; nil without error when absent.
func (c *Catalog) get(ctx context.Context, key []byte) ([]byte, error) {
	v, err := c.b.Get(ctx, layout.Catalog, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// bump is the operation that moves the catalog's version, in every batch
// that changes the catalog.
func bump() store.Operation {
	return store.PutOp(layout.Catalog, layout.CatalogVersionKey(), []byte(rand.Text()))
}

// conflict tells whether a change whose batch returned err retries (its
// checks failed: another server changed what it read), at the given
// attempt; when it may not, it returns the error to report.
func conflict(err error, attempt int, what string) (bool, error) {
	if !errors.Is(err, store.ErrConditionFailed) {
		return false, fmt.Errorf("catalog: %s: %w", what, err)
	}
	if attempt+1 < maxConflicts {
		return true, nil
	}
	return false, fmt.Errorf("catalog: %s: other servers changed the catalog %d times meanwhile; try again: %w", what, maxConflicts, err)
}

// sweep drops the table partitions and sequence counters that belong to no
// table: leftovers of a create or drop interrupted between its steps. A
// partition whose id is reserved by a create less than ReservationGrace old
// is left alone, and so is one whose table another server recorded since
// the catalog was loaded: each candidate is checked against the backend.
func (c *Catalog) sweep(ctx context.Context) error {
	c.mu.RLock()
	live := make(map[uint64]*Table, len(c.tables))
	for _, t := range c.tables {
		live[t.ID] = t
	}
	c.mu.RUnlock()
	reserved, err := c.reservations(ctx)
	if err != nil {
		return err
	}
	now := c.clock.Now()
	parts, err := c.b.ListPartitions(ctx)
	if err != nil {
		return fmt.Errorf("catalog: listing partitions: %w", err)
	}
	for _, p := range parts {
		id, ns, name, ok := layout.ParseTablePartition(p)
		if !ok {
			continue
		}
		if t := live[id]; t != nil && t.Namespace == ns && t.Name == name {
			continue
		}
		if at, ok := reserved[id]; ok && now.Sub(at) < ReservationGrace {
			continue
		}
		// Recorded by another server after the load?
		if v, err := c.get(ctx, layout.TableKey(ns, name)); err != nil {
			return fmt.Errorf("catalog: checking orphan partition %s: %w", p, err)
		} else if v != nil {
			if t, err := decodeTable(v); err == nil && t.ID == id {
				live[id] = t
				continue
			}
		}
		if err := c.b.DropPartition(ctx, p); err != nil && !errors.Is(err, store.ErrPartitionNotFound) {
			return fmt.Errorf("catalog: dropping orphan partition %s: %w", p, err)
		}
	}
	var stale []store.Operation
	for id, at := range reserved {
		if now.Sub(at) >= ReservationGrace {
			stale = append(stale, store.DeleteOp(layout.Catalog, layout.CreatingKey(id)))
		}
	}
	it, err := c.b.Scan(ctx, layout.Sequences, store.ScanOptions{})
	if err != nil {
		return fmt.Errorf("catalog: scanning sequences: %w", err)
	}
	for it.Next() {
		id, err := layout.ParseSequenceKey(it.Key())
		if err != nil {
			stale = append(stale, store.DeleteOp(layout.Sequences, bytes.Clone(it.Key())))
			continue
		}
		if _, ok := reserved[id]; live[id] == nil && !ok {
			stale = append(stale, store.DeleteOp(layout.Sequences, bytes.Clone(it.Key())))
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("catalog: scanning sequences: %w", err)
	}
	for _, batch := range c.b.Capabilities().Split(stale) {
		if err := c.b.Batch(ctx, batch); err != nil {
			return fmt.Errorf("catalog: removing stale sequences and reservations: %w", err)
		}
	}
	return nil
}

// reservations returns the table ids reserved by creates, with the time of
// each reservation.
func (c *Catalog) reservations(ctx context.Context) (map[uint64]time.Time, error) {
	it, err := c.b.Scan(ctx, layout.Catalog, store.ScanOptions{Prefix: layout.CreatingPrefix()})
	if err != nil {
		return nil, fmt.Errorf("catalog: scanning id reservations: %w", err)
	}
	out := map[uint64]time.Time{}
	for it.Next() {
		id, err := layout.ParseCreatingKey(it.Key())
		if err != nil || len(it.Value()) != 8 {
			continue // not ours to judge; it never keeps a partition
		}
		out[id] = time.UnixMicro(int64(binary.BigEndian.Uint64(it.Value())))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("catalog: scanning id reservations: %w", err)
	}
	return out, nil
}

// Backend returns the StorageBackend the catalog is stored in.
func (c *Catalog) Backend() store.StorageBackend { return c.b }

// CreateNamespace creates namespace name, or fails with
// core.ErrNamespaceExists or core.ErrInvalidSchema (bad name).
func (c *Catalog) CreateNamespace(ctx context.Context, name string) (*Namespace, error) {
	if err := ValidateName("namespace", name); err != nil {
		return nil, err
	}
	c.ddl.Lock()
	defer c.ddl.Unlock()
	ns := &Namespace{Name: name, CreatedAt: c.clock.Now().UTC()}
	data, err := json.Marshal(namespaceRecord{Format: recordFormat, Namespace: ns})
	if err != nil {
		return nil, err
	}
	key := layout.NamespaceKey(name)
	err = c.b.Batch(ctx, []store.Operation{check(key, nil), store.PutOp(layout.Catalog, key, data), bump()})
	if errors.Is(err, store.ErrConditionFailed) {
		_, _ = c.refresh(ctx, false)
		return nil, fmt.Errorf("%w: %s", core.ErrNamespaceExists, name)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: creating namespace %s: %w", name, err)
	}
	c.mu.Lock()
	c.namespaces[name] = ns
	c.mu.Unlock()
	cp := *ns
	return &cp, nil
}

// Namespace returns namespace name, or core.ErrNamespaceNotFound.
func (c *Catalog) Namespace(name string) (*Namespace, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ns, ok := c.namespaces[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", core.ErrNamespaceNotFound, name)
	}
	cp := *ns
	return &cp, nil
}

// Namespaces returns every namespace, sorted by name.
func (c *Catalog) Namespaces() []*Namespace {
	c.mu.RLock()
	out := make([]*Namespace, 0, len(c.namespaces))
	for _, ns := range c.namespaces {
		cp := *ns
		out = append(out, &cp)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// DropNamespace removes an empty namespace; it fails with
// core.ErrNamespaceNotFound, or core.ErrNamespaceNotEmpty while it has
// tables.
func (c *Catalog) DropNamespace(ctx context.Context, name string) error {
	c.ddl.Lock()
	defer c.ddl.Unlock()
	key := layout.NamespaceKey(name)
	for attempt := 0; ; attempt++ {
		raw, err := c.get(ctx, key)
		if err != nil {
			return fmt.Errorf("catalog: dropping namespace %s: %w", name, err)
		}
		if raw == nil {
			c.forgetNamespace(name)
			return fmt.Errorf("%w: %s", core.ErrNamespaceNotFound, name)
		}
		n, err := c.countTables(ctx, name)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %s has %d table(s)", core.ErrNamespaceNotEmpty, name, n)
		}
		err = c.b.Batch(ctx, []store.Operation{check(key, raw), store.DeleteOp(layout.Catalog, key), bump()})
		if err == nil {
			c.forgetNamespace(name)
			return nil
		}
		if retry, err := conflict(err, attempt, "dropping namespace "+name); !retry {
			return err
		}
	}
}

func (c *Catalog) forgetNamespace(name string) {
	c.mu.Lock()
	delete(c.namespaces, name)
	c.mu.Unlock()
}

// countTables counts the table records of namespace ns in the backend.
func (c *Catalog) countTables(ctx context.Context, ns string) (int, error) {
	it, err := c.b.Scan(ctx, layout.Catalog, store.ScanOptions{Prefix: layout.TablesPrefix(ns)})
	if err != nil {
		return 0, fmt.Errorf("catalog: listing the tables of %s: %w", ns, err)
	}
	n := 0
	for it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("catalog: listing the tables of %s: %w", ns, err)
	}
	return n, nil
}

// reserveID takes the next table id for a create, alone in its batch, and
// records the reservation (CreatingKey): from then on the id and its
// partition are this create's.
func (c *Catalog) reserveID(ctx context.Context) (uint64, error) {
	for attempt := 0; ; attempt++ {
		id, raw, err := c.nextID(ctx)
		if err != nil {
			return 0, err
		}
		at := binary.BigEndian.AppendUint64(nil, uint64(c.clock.Now().UnixMicro()))
		err = c.b.Batch(ctx, []store.Operation{
			check(layout.NextTableIDKey(), raw),
			store.PutOp(layout.Catalog, layout.NextTableIDKey(), binary.BigEndian.AppendUint64(nil, id+1)),
			store.PutOp(layout.Catalog, layout.CreatingKey(id), at),
		})
		if err == nil {
			return id, nil
		}
		if retry, err := conflict(err, attempt, "reserving a table id"); !retry {
			return 0, err
		}
	}
}

// CreateTable validates def, assigns its id, creates its partition and
// stores it. It fails with core.ErrInvalidSchema (often a
// *core.ColumnError), core.ErrNamespaceNotFound or core.ErrTableExists.
// def is not modified; the returned *Table is the catalog's own, shared and
// read-only.
func (c *Catalog) CreateTable(ctx context.Context, def Table) (*Table, error) {
	t := def.clone()
	if err := t.Validate(); err != nil {
		return nil, err
	}
	c.ddl.Lock()
	defer c.ddl.Unlock()
	nsKey, key := layout.NamespaceKey(t.Namespace), layout.TableKey(t.Namespace, t.Name)
	nsRaw, err := c.createChecks(ctx, t, nsKey, key)
	if err != nil {
		return nil, err
	}
	id, err := c.reserveID(ctx)
	if err != nil {
		return nil, fmt.Errorf("catalog: creating table %s: %w", t.FullName(), err)
	}
	t.ID = id
	t.CreatedAt = c.clock.Now().UTC()
	if err := t.prepare(); err != nil {
		return nil, err
	}
	part := t.Partition()
	// The id is this create's alone: a partition with its name can only be
	// the leftover of an earlier attempt. Start from an empty one.
	if ok, err := c.b.PartitionExists(ctx, part); err != nil {
		return nil, fmt.Errorf("catalog: creating table %s: %w", t.FullName(), err)
	} else if ok {
		if err := c.b.DropPartition(ctx, part); err != nil {
			return nil, fmt.Errorf("catalog: creating table %s: clearing leftover partition: %w", t.FullName(), err)
		}
	}
	if err := c.b.CreatePartition(ctx, part); err != nil {
		return nil, fmt.Errorf("catalog: creating table %s: %w", t.FullName(), err)
	}
	data, err := json.Marshal(tableRecord{Format: recordFormat, Table: t})
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		nsData, err := bumpNamespace(nsRaw)
		if err != nil {
			return nil, err
		}
		err = c.b.Batch(ctx, []store.Operation{
			check(nsKey, nsRaw),
			store.PutOp(layout.Catalog, nsKey, nsData),
			check(key, nil),
			store.PutOp(layout.Catalog, key, data),
			store.DeleteOp(layout.Catalog, layout.CreatingKey(t.ID)),
			bump(),
		})
		if err == nil {
			break
		}
		retry, err := conflict(err, attempt, "creating table "+t.FullName())
		if retry {
			// The namespace was rewritten (another table created in it)
			// or removed, or the table created elsewhere: decide again.
			if nsRaw, err = c.createChecks(ctx, t, nsKey, key); err == nil {
				continue
			}
		}
		if errors.Is(err, store.ErrConditionFailed) || errors.Is(err, core.ErrTableExists) || errors.Is(err, core.ErrNamespaceNotFound) {
			// Known not recorded: the partition and the reservation go.
			_ = c.b.DropPartition(ctx, part)
			_ = c.b.Delete(ctx, layout.Catalog, layout.CreatingKey(t.ID))
		}
		// Otherwise the outcome is unknown: the reservation keeps the
		// partition until ReservationGrace, and the sweep then removes it
		// unless the table was recorded.
		return nil, err
	}
	c.mu.Lock()
	c.tables[t.FullName()] = t
	c.raw[t.FullName()] = data
	c.mu.Unlock()
	return t, nil
}

// createChecks reads what a create of t depends on: the namespace record
// (returned for the batch's check), and that no table has t's name.
func (c *Catalog) createChecks(ctx context.Context, t *Table, nsKey, key []byte) ([]byte, error) {
	nsRaw, err := c.get(ctx, nsKey)
	if err != nil {
		return nil, fmt.Errorf("catalog: creating table %s: %w", t.FullName(), err)
	}
	if nsRaw == nil {
		c.forgetNamespace(t.Namespace)
		return nil, fmt.Errorf("%w: %s (creating table %s)", core.ErrNamespaceNotFound, t.Namespace, t.FullName())
	}
	if v, err := c.get(ctx, key); err != nil {
		return nil, fmt.Errorf("catalog: creating table %s: %w", t.FullName(), err)
	} else if v != nil {
		_, _ = c.refresh(ctx, false)
		return nil, fmt.Errorf("%w: %s", core.ErrTableExists, t.FullName())
	}
	return nsRaw, nil
}

// bumpNamespace returns the namespace record raw with one more table
// created.
func bumpNamespace(raw []byte) ([]byte, error) {
	rec := namespaceRecord{Namespace: &Namespace{}}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("%w: catalog: namespace record: %v", core.ErrCorrupt, err)
	}
	rec.Format = recordFormat
	rec.Gen++
	return json.Marshal(rec)
}

// AddColumn appends column col to user or shared table ns.name and stores
// the new definition, which it returns; the *Table of the old definition
// stays valid and unchanged. The column must be nullable: rows written
// before it read it as null. It fails with core.ErrInvalidSchema (a
// *core.ColumnError naming the column: not nullable, a name taken or
// reserved, an invalid type, too many columns), core.ErrWrongTableType
// for a stream table, core.ErrNamespaceNotFound or core.ErrTableNotFound.
// The definition it extends is the stored one, which may have columns
// another server added that this catalog's copy does not have yet.
//
// The catalog only records the definition: a table layer that holds stores
// of the table must switch them to it (tables.DB.AddColumn does).
func (c *Catalog) AddColumn(ctx context.Context, ns, name string, col Column) (*Table, error) {
	c.ddl.Lock()
	defer c.ddl.Unlock()
	key := layout.TableKey(ns, name)
	for attempt := 0; ; attempt++ {
		old, raw, err := c.stored(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		if old.Type == StreamTable {
			return nil, fmt.Errorf("%w: %s is a stream table; columns can only be added to user and shared tables", core.ErrWrongTableType, old.FullName())
		}
		if !col.Nullable {
			return nil, core.InvalidSchema(col.Name, "must be nullable: the rows already in %s have no value for it and read it as null", old.FullName())
		}
		t := old.clone()
		t.Columns = append(t.Columns, col)
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if err := t.prepare(); err != nil {
			return nil, err
		}
		data, err := json.Marshal(tableRecord{Format: recordFormat, Table: t})
		if err != nil {
			return nil, err
		}
		err = c.b.Batch(ctx, []store.Operation{check(key, raw), store.PutOp(layout.Catalog, key, data), bump()})
		if err == nil {
			c.mu.Lock()
			c.tables[t.FullName()] = t
			c.raw[t.FullName()] = data
			c.mu.Unlock()
			return t, nil
		}
		if retry, err := conflict(err, attempt, fmt.Sprintf("adding column %s to %s", col.Name, t.FullName())); !retry {
			return nil, err
		}
	}
}

// stored reads table ns.name from the backend: its definition and its
// record. A table this catalog's copy has, the same record, keeps its
// *Table. It fails with core.ErrNamespaceNotFound or
// core.ErrTableNotFound, and then forgets the table in the copy.
func (c *Catalog) stored(ctx context.Context, ns, name string) (*Table, []byte, error) {
	raw, err := c.get(ctx, layout.TableKey(ns, name))
	if err != nil {
		return nil, nil, fmt.Errorf("catalog: reading table %s.%s: %w", ns, name, err)
	}
	full := ns + "." + name
	if raw == nil {
		c.mu.Lock()
		delete(c.tables, full)
		delete(c.raw, full)
		c.mu.Unlock()
		if nsRaw, err := c.get(ctx, layout.NamespaceKey(ns)); err == nil && nsRaw == nil {
			c.forgetNamespace(ns)
			return nil, nil, fmt.Errorf("%w: %s", core.ErrNamespaceNotFound, ns)
		}
		return nil, nil, fmt.Errorf("%w: %s", core.ErrTableNotFound, full)
	}
	c.mu.RLock()
	t, same := c.tables[full], bytes.Equal(c.raw[full], raw)
	c.mu.RUnlock()
	if t != nil && same {
		return t, raw, nil
	}
	t, err = decodeTable(raw)
	return t, raw, err
}

// Table returns table ns.name, or core.ErrNamespaceNotFound or
// core.ErrTableNotFound.
func (c *Catalog) Table(ns, name string) (*Table, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.tables[ns+"."+name]
	if ok {
		return t, nil
	}
	if _, ok := c.namespaces[ns]; !ok {
		return nil, fmt.Errorf("%w: %s", core.ErrNamespaceNotFound, ns)
	}
	return nil, fmt.Errorf("%w: %s.%s", core.ErrTableNotFound, ns, name)
}

// Tables returns the tables of namespace ns sorted by name, or every table
// (sorted by namespace, then name) when ns is "".
func (c *Catalog) Tables(ns string) ([]*Table, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if _, ok := c.namespaces[ns]; !ok && ns != "" {
		return nil, fmt.Errorf("%w: %s", core.ErrNamespaceNotFound, ns)
	}
	out := make([]*Table, 0, len(c.tables))
	for _, t := range c.tables {
		if ns == "" || t.Namespace == ns {
			out = append(out, t)
		}
	}
	sortTables(out)
	return out, nil
}

// DropTable removes table ns.name with all its rows. Handles on the table
// fail with core.ErrTableNotFound from then on.
func (c *Catalog) DropTable(ctx context.Context, ns, name string) error {
	c.ddl.Lock()
	defer c.ddl.Unlock()
	key := layout.TableKey(ns, name)
	var t *Table
	for attempt := 0; ; attempt++ {
		var raw []byte
		var err error
		if t, raw, err = c.stored(ctx, ns, name); err != nil {
			return err
		}
		// Forget the table first: if the partition drop below is
		// interrupted, the next Open sweeps the orphan partition.
		err = c.b.Batch(ctx, []store.Operation{
			check(key, raw),
			store.DeleteOp(layout.Catalog, key),
			store.DeleteOp(layout.Sequences, layout.SequenceKey(t.ID)),
			// The record of the table's lease, which a finished stream
			// eviction leaves (lease.Lease.Finish); a flush or eviction
			// holding it on another server commits nothing more.
			store.DeleteOp(layout.Leases, []byte(lease.TableName(t.ID))),
			bump(),
		})
		if err == nil {
			break
		}
		if retry, err := conflict(err, attempt, "dropping table "+t.FullName()); !retry {
			return err
		}
	}
	c.mu.Lock()
	delete(c.tables, t.FullName())
	delete(c.raw, t.FullName())
	c.mu.Unlock()
	if err := c.b.DropPartition(ctx, t.Partition()); err != nil && !errors.Is(err, store.ErrPartitionNotFound) {
		return fmt.Errorf("catalog: dropping the rows of table %s: %w", t.FullName(), err)
	}
	return nil
}

// shared reports whether other servers may change the catalog: the
// backend is shared by several processes (Capabilities.MultiProcess).
func (c *Catalog) shared() bool { return c.b.Capabilities().MultiProcess }

// missing reports whether err is a lookup's not-found, which a refresh may
// answer on a shared backend.
func missing(err error) bool {
	return errors.Is(err, core.ErrNamespaceNotFound) || errors.Is(err, core.ErrTableNotFound)
}

// RefreshIfMissing refreshes the copy after a lookup failed with err, when
// err says that a namespace or table is unknown (core.ErrNamespaceNotFound,
// core.ErrTableNotFound) and other servers share the backend: one may have
// just created it. It reports whether the lookup runs again: whenever the
// refresh succeeded, since a concurrent request's refresh may have brought
// the change already. When the refresh fails, it returns err with the
// refresh's error. Otherwise it does nothing and reports false.
func (c *Catalog) RefreshIfMissing(ctx context.Context, err error) (bool, error) {
	if !missing(err) || !c.shared() {
		return false, nil
	}
	if _, rerr := c.Refresh(ctx); rerr != nil {
		return false, fmt.Errorf("%w (and reading the catalog again failed: %v)", err, rerr)
	}
	return true, nil
}

// FindNamespace is Namespace for a request: on a backend other servers
// share, a namespace this copy does not know is looked up again after a
// Refresh, since another server may have just created it. On an embedded
// backend it is Namespace.
func (c *Catalog) FindNamespace(ctx context.Context, name string) (*Namespace, error) {
	ns, err := c.Namespace(name)
	if again, rerr := c.RefreshIfMissing(ctx, err); rerr != nil {
		return nil, rerr
	} else if again {
		return c.Namespace(name)
	}
	return ns, err
}

// FindTable is Table for a request, refreshing on a miss as FindNamespace
// does.
func (c *Catalog) FindTable(ctx context.Context, ns, name string) (*Table, error) {
	t, err := c.Table(ns, name)
	if again, rerr := c.RefreshIfMissing(ctx, err); rerr != nil {
		return nil, rerr
	} else if again {
		return c.Table(ns, name)
	}
	return t, err
}

// FreshTables is Tables for a request: on a backend other servers share,
// the copy is brought up to date first (Refresh: one read when nothing
// changed), so that the list holds the tables other servers just created.
// On an embedded backend it is Tables.
func (c *Catalog) FreshTables(ctx context.Context, ns string) ([]*Table, error) {
	if c.shared() {
		if _, err := c.Refresh(ctx); err != nil {
			return nil, err
		}
	}
	return c.Tables(ns)
}

// FreshNamespaces is Namespaces for a request, brought up to date first as
// FreshTables does.
func (c *Catalog) FreshNamespaces(ctx context.Context) ([]*Namespace, error) {
	if c.shared() {
		if _, err := c.Refresh(ctx); err != nil {
			return nil, err
		}
	}
	return c.Namespaces(), nil
}

// Recreated reports whether table t, which an operation found gone
// (core.ErrTableNotFound), exists again under its name as another table:
// on a backend other servers share, one of them may have dropped it and
// created it again, and the request then looks its table up again and runs
// once more. It refreshes the copy first on such a backend; on an embedded
// backend it reads the copy, which this process keeps current.
func (c *Catalog) Recreated(ctx context.Context, t *Table) (bool, error) {
	if c.shared() {
		if _, err := c.Refresh(ctx); err != nil {
			return false, err
		}
	}
	cur, err := c.Table(t.Namespace, t.Name)
	return err == nil && cur.ID != t.ID, nil
}

// RefreshForColumn refreshes the copy when t, the definition a request
// was checked against, lacks column: on a backend other servers share,
// one of them may have just added it. It reports whether the copy now
// holds another definition of the table than t (the refresh, or a
// concurrent one, brought it), in which case the request looks its table
// up again and decides again. On an embedded backend, or when t has the
// column, it does nothing.
func (c *Catalog) RefreshForColumn(ctx context.Context, t *Table, column string) (bool, error) {
	if !c.shared() {
		return false, nil
	}
	if _, ok := t.ColumnIndex(column); ok {
		return false, nil
	}
	if _, err := c.Refresh(ctx); err != nil {
		return false, err
	}
	cur, err := c.Table(t.Namespace, t.Name)
	return err != nil || cur != t, nil
}
