package catalog

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
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
}

// Catalog is the set of namespaces and tables of one StorageBackend. Open
// loads it; every change is written through to the backend before it is
// visible. It is safe for concurrent use. Only one Catalog may be open on a
// backend at a time.
type Catalog struct {
	b     store.StorageBackend
	clock clock.Clock

	ddl sync.Mutex // serialises changes

	mu         sync.RWMutex
	namespaces map[string]*Namespace
	tables     map[string]*Table // by "ns.table"
	nextID     uint64
}

// Options configure a Catalog.
type Options struct {
	// Clock stamps CreatedAt; nil means the real clock.
	Clock clock.Clock
}

// Open loads the catalog stored in b, creating the system partitions on
// first use. It also removes what an interrupted change may have left
// behind: table partitions and sequence counters of tables that do not
// exist.
func Open(ctx context.Context, b store.StorageBackend, opts Options) (*Catalog, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	c := &Catalog{b: b, clock: opts.Clock, namespaces: map[string]*Namespace{}, tables: map[string]*Table{}, nextID: 1}
	for _, p := range layout.SystemPartitions() {
		if err := b.CreatePartition(ctx, p); err != nil {
			return nil, fmt.Errorf("catalog: creating %s: %w", p, err)
		}
	}
	if err := c.load(ctx); err != nil {
		return nil, err
	}
	if err := c.sweep(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Catalog) load(ctx context.Context) error {
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
		c.namespaces[ns.Name] = ns
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("catalog: loading namespaces: %w", err)
	}

	it, err = c.b.Scan(ctx, layout.Catalog, store.ScanOptions{Prefix: layout.AllTablesPrefix()})
	if err != nil {
		return fmt.Errorf("catalog: loading tables: %w", err)
	}
	for it.Next() {
		t := &Table{}
		if err := json.Unmarshal(it.Value(), &tableRecord{Table: t}); err != nil {
			it.Close()
			return fmt.Errorf("%w: catalog: table record %q: %v", core.ErrCorrupt, it.Key(), err)
		}
		if err := t.Validate(); err != nil {
			it.Close()
			return fmt.Errorf("%w: catalog: stored table %s is not valid: %v", core.ErrCorrupt, t.FullName(), err)
		}
		if err := t.prepare(); err != nil {
			it.Close()
			return fmt.Errorf("%w: catalog: stored table %s: %v", core.ErrCorrupt, t.FullName(), err)
		}
		c.tables[t.FullName()] = t
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("catalog: loading tables: %w", err)
	}

	v, err := c.b.Get(ctx, layout.Catalog, layout.NextTableIDKey())
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("catalog: loading the table id counter: %w", err)
	case len(v) != 8:
		return fmt.Errorf("%w: catalog: table id counter is %d bytes", core.ErrCorrupt, len(v))
	default:
		c.nextID = binary.BigEndian.Uint64(v)
	}
	for _, t := range c.tables {
		if t.ID >= c.nextID {
			return fmt.Errorf("%w: catalog: table %s has id %d, the counter is at %d", core.ErrCorrupt, t.FullName(), t.ID, c.nextID)
		}
	}
	return nil
}

// sweep drops the table partitions and sequence counters that belong to no
// table: leftovers of a create or drop interrupted between its steps.
func (c *Catalog) sweep(ctx context.Context) error {
	live := make(map[uint64]*Table, len(c.tables))
	for _, t := range c.tables {
		live[t.ID] = t
	}
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
		if err := c.b.DropPartition(ctx, p); err != nil && !errors.Is(err, store.ErrPartitionNotFound) {
			return fmt.Errorf("catalog: dropping orphan partition %s: %w", p, err)
		}
	}
	it, err := c.b.Scan(ctx, layout.Sequences, store.ScanOptions{})
	if err != nil {
		return fmt.Errorf("catalog: scanning sequences: %w", err)
	}
	var stale []store.Operation
	for it.Next() {
		id, err := layout.ParseSequenceKey(it.Key())
		if err != nil || live[id] == nil {
			stale = append(stale, store.DeleteOp(layout.Sequences, append([]byte(nil), it.Key()...)))
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("catalog: scanning sequences: %w", err)
	}
	for _, batch := range c.b.Capabilities().Split(stale) {
		if err := c.b.Batch(ctx, batch); err != nil {
			return fmt.Errorf("catalog: removing stale sequences: %w", err)
		}
	}
	return nil
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
	c.mu.RLock()
	_, exists := c.namespaces[name]
	c.mu.RUnlock()
	if exists {
		return nil, fmt.Errorf("%w: %s", core.ErrNamespaceExists, name)
	}
	ns := &Namespace{Name: name, CreatedAt: c.clock.Now().UTC()}
	data, err := json.Marshal(namespaceRecord{Format: recordFormat, Namespace: ns})
	if err != nil {
		return nil, err
	}
	if err := c.b.Put(ctx, layout.Catalog, layout.NamespaceKey(name), data); err != nil {
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
	c.mu.RLock()
	_, ok := c.namespaces[name]
	n := 0
	for _, t := range c.tables {
		if t.Namespace == name {
			n++
		}
	}
	c.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %s", core.ErrNamespaceNotFound, name)
	}
	if n > 0 {
		return fmt.Errorf("%w: %s has %d table(s)", core.ErrNamespaceNotEmpty, name, n)
	}
	if err := c.b.Delete(ctx, layout.Catalog, layout.NamespaceKey(name)); err != nil {
		return fmt.Errorf("catalog: dropping namespace %s: %w", name, err)
	}
	c.mu.Lock()
	delete(c.namespaces, name)
	c.mu.Unlock()
	return nil
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
	c.mu.RLock()
	_, nsOK := c.namespaces[t.Namespace]
	_, exists := c.tables[t.FullName()]
	id := c.nextID
	c.mu.RUnlock()
	if !nsOK {
		return nil, fmt.Errorf("%w: %s (creating table %s)", core.ErrNamespaceNotFound, t.Namespace, t.FullName())
	}
	if exists {
		return nil, fmt.Errorf("%w: %s", core.ErrTableExists, t.FullName())
	}
	t.ID = id
	t.CreatedAt = c.clock.Now().UTC()
	if err := t.prepare(); err != nil {
		return nil, err
	}
	part := t.Partition()
	// A partition with this name can only be the leftover of a create that
	// failed before it was recorded: start from an empty one.
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
	next := binary.BigEndian.AppendUint64(nil, id+1)
	err = c.b.Batch(ctx, []store.Operation{
		store.PutOp(layout.Catalog, layout.TableKey(t.Namespace, t.Name), data),
		store.PutOp(layout.Catalog, layout.NextTableIDKey(), next),
		store.DeleteOp(layout.Sequences, layout.SequenceKey(t.ID)),
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: creating table %s: %w", t.FullName(), err)
	}
	c.mu.Lock()
	c.tables[t.FullName()] = t
	c.nextID = id + 1
	c.mu.Unlock()
	return t, nil
}

// AddColumn appends column col to user or shared table ns.name and stores
// the new definition, which it returns; the *Table of the old definition
// stays valid and unchanged. The column must be nullable: rows written
// before it read it as null. It fails with core.ErrInvalidSchema (a
// *core.ColumnError naming the column: not nullable, a name taken or
// reserved, an invalid type, too many columns), core.ErrWrongTableType
// for a stream table, core.ErrNamespaceNotFound or core.ErrTableNotFound.
//
// The catalog only records the definition: a table layer that holds stores
// of the table must switch them to it (tables.DB.AddColumn does).
func (c *Catalog) AddColumn(ctx context.Context, ns, name string, col Column) (*Table, error) {
	c.ddl.Lock()
	defer c.ddl.Unlock()
	old, err := c.Table(ns, name)
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
	if err := c.b.Put(ctx, layout.Catalog, layout.TableKey(t.Namespace, t.Name), data); err != nil {
		return nil, fmt.Errorf("catalog: adding column %s to %s: %w", col.Name, t.FullName(), err)
	}
	c.mu.Lock()
	c.tables[t.FullName()] = t
	c.mu.Unlock()
	return t, nil
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
	t, err := c.Table(ns, name)
	if err != nil {
		return err
	}
	part := t.Partition()
	// Forget the table first: if the partition drop below is interrupted,
	// the next Open sweeps the orphan partition.
	err = c.b.Batch(ctx, []store.Operation{
		store.DeleteOp(layout.Catalog, layout.TableKey(ns, name)),
		store.DeleteOp(layout.Sequences, layout.SequenceKey(t.ID)),
	})
	if err != nil {
		return fmt.Errorf("catalog: dropping table %s: %w", t.FullName(), err)
	}
	c.mu.Lock()
	delete(c.tables, t.FullName())
	c.mu.Unlock()
	if err := c.b.DropPartition(ctx, part); err != nil && !errors.Is(err, store.ErrPartitionNotFound) {
		return fmt.Errorf("catalog: dropping the rows of table %s: %w", t.FullName(), err)
	}
	return nil
}
