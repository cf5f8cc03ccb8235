package tables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/keylock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/merge"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/internal/seq"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// rowTable is the implementation shared by user and shared tables. A key is
// the encoded user id (user tables only) followed by the encoded primary
// key; the value is the row codec's encoding of the newest buffered version,
// _seq included. A soft delete replaces the row with a tombstone version.
type rowTable struct {
	// schemaMu guards t, types, pk and buffer.types: every operation of
	// the stores holds it for reading, and DB.AddColumn for writing while
	// it switches them to a new definition.
	schemaMu sync.RWMutex
	t        *catalog.Table
	types    []row.Type
	pk       int
	b        store.StorageBackend
	part     store.Partition
	perUser  bool
	alloc    *seq.Allocator
	locks    *keylock.Set
	clock    clock.Clock
	buffer   *bufferSource

	// shared: other processes may write the buffer too (the backend is
	// MultiProcess). A write then reads its key's buffered version and
	// applies its batch with a check that the key still holds it, retrying
	// when another process changed it in between: the key locks below
	// serialise the writers of this process only.
	shared bool

	// sources are the tiers reads merge: buffer first, then the cold tier
	// when the DB has one. They are fixed when the store opens.
	sources []Source
	// synced are the sources other processes change (SharedSource), on a
	// shared backend.
	synced []SharedSource

	// written counts the versions written to the buffer since the store
	// opened (seeded with those already buffered, up to the flush row
	// limit), less what flushes took (Buffer.Flushed): the input of the
	// flush policy, which so never reads the buffer to decide.
	written atomic.Int64
}

// newRowTable returns the store of user or shared table t; cold, when not
// nil, is the table's cold tier.
func newRowTable(t *catalog.Table, b store.StorageBackend, alloc *seq.Allocator, clk clock.Clock, cold Source) *rowTable {
	buf := &bufferSource{b: b, part: t.Partition(), types: t.Types()}
	sources := []Source{buf}
	if cold != nil {
		sources = append(sources, cold)
	}
	rt := &rowTable{
		t: t, types: t.Types(), pk: t.PrimaryKeyIndex(), b: b, part: t.Partition(),
		perUser: t.Type == catalog.UserTable, alloc: alloc, locks: keylock.New(), clock: clk,
		buffer: buf, sources: sources, shared: b.Capabilities().MultiProcess,
	}
	if ss, ok := cold.(SharedSource); ok && rt.shared {
		rt.synced = []SharedSource{ss}
	}
	return rt
}

// sync brings the shared sources up to date, for a read that has read the
// buffer already (see SharedSource).
func (rt *rowTable) sync(ctx context.Context) error {
	for _, s := range rt.synced {
		if err := s.Sync(ctx); err != nil {
			return rt.wrap(err)
		}
	}
	return nil
}

// pin returns the checks a write's batch holds so that the shared sources
// it read have not changed under it (see SharedSource): none on a backend
// of one process.
func (rt *rowTable) pin(ctx context.Context) ([]store.Operation, error) {
	if len(rt.synced) == 0 {
		return nil, nil
	}
	ops := make([]store.Operation, len(rt.synced))
	for i, s := range rt.synced {
		op, err := s.Pin(ctx)
		if err != nil {
			return nil, rt.wrap(err)
		}
		ops[i] = op
	}
	return ops, nil
}

// confirmed reports whether a write may answer what it decided from what
// it read (the row is absent, or present) without sending a batch, whose
// checks would otherwise confirm it: on a shared backend the shared
// sources it read must not have changed since its pins (a flush by another
// server may have moved the row out of the buffer into a segment its list
// lacked). It reads their version again, after the buffer as a read does;
// when it moved, the write reads again (false). A write that has read
// again maxConflicts times fails.
func (rt *rowTable) confirmed(ctx context.Context, pins []store.Operation, attempt int) (bool, error) {
	if len(pins) == 0 {
		return true, nil
	}
	if err := rt.sync(ctx); err != nil {
		return false, err
	}
	now, err := rt.pin(ctx)
	if err != nil {
		return false, err
	}
	for i := range pins {
		if pins[i].Kind != now[i].Kind || !bytes.Equal(pins[i].Value, now[i].Value) {
			if attempt+1 >= maxConflicts {
				return false, fmt.Errorf("%s: other servers flushed or compacted the table %d times while this write ran; try again: %w",
					rt.t.FullName(), maxConflicts, store.ErrConditionFailed)
			}
			return false, nil
		}
	}
	return true, nil
}

// maxSourceChanges is how many times a read starts again when a shared
// source changed under it (ErrSourceChanged); each time, another server
// committed a flush or a compaction of the table meanwhile.
const maxSourceChanges = 20

// reread reports whether a read that failed with err starts again.
func reread(err error, attempt int) bool {
	return attempt+1 < maxSourceChanges && errors.Is(err, ErrSourceChanged)
}

// wrap turns a vanished partition into core.ErrTableNotFound.
func (rt *rowTable) wrap(err error) error {
	if errors.Is(err, store.ErrPartitionNotFound) {
		return fmt.Errorf("%w: %s: %w", core.ErrTableNotFound, rt.t.FullName(), err)
	}
	return err
}

// scopePrefix appends the key prefix of user (nothing for a shared table).
func (rt *rowTable) scopePrefix(dst []byte, user string) ([]byte, error) {
	if !rt.perUser {
		return dst, nil
	}
	if err := catalog.ValidateUserID(user); err != nil {
		return nil, err
	}
	return keys.AppendString(dst, user), nil
}

// key returns the backend key of pk for user.
func (rt *rowTable) key(user string, pk row.Value) ([]byte, error) {
	return rt.appendKey(make([]byte, 0, len(user)+2+pk.Len()+12), user, pk)
}

// appendKey appends the backend key of pk for user to dst.
func (rt *rowTable) appendKey(dst []byte, user string, pk row.Value) ([]byte, error) {
	k, err := rt.scopePrefix(dst, user)
	if err != nil {
		return nil, err
	}
	return rt.t.AppendKey(k, pk)
}

// reading takes the table's definition for the length of an operation;
// call the function it returns when the operation ends.
func (rt *rowTable) reading() (done func()) {
	rt.schemaMu.RLock()
	return rt.schemaMu.RUnlock
}

// setSchema switches the table to t, a later definition of it (columns
// added at the end). The caller holds schemaMu for writing.
func (rt *rowTable) setSchema(t *catalog.Table) {
	rt.t, rt.types, rt.pk = t, t.Types(), t.PrimaryKeyIndex()
	rt.buffer.types = rt.types
}

// fill gives r a value for every column of the table (row.Row.Fill).
func (rt *rowTable) fill(r *row.Row) { r.Fill(len(rt.types)) }

// newest returns the newest version of key across all sources.
func (rt *rowTable) newest(ctx context.Context, key []byte) (row.Row, bool, error) {
	srcs := rt.sources
	if len(srcs) == 1 {
		r, ok, err := srcs[0].Lookup(ctx, key)
		if ok {
			rt.fill(&r)
		}
		return r, ok, rt.wrap(err)
	}
	var best row.Row
	found := false
	for i, s := range srcs {
		if i == 1 && len(rt.synced) > 0 {
			if found {
				// A buffered version is the newest: every write takes a
				// _seq above the version it replaces, wherever that is,
				// and a flush removes a version from the buffer only
				// once it is in a segment. Other servers' segments need
				// not be read (one round trip to the backend spared).
				break
			}
			// After the buffer: see SharedSource.
			if err := rt.sync(ctx); err != nil {
				return row.Row{}, false, err
			}
		}
		r, ok, err := s.Lookup(ctx, key)
		if err != nil {
			return row.Row{}, false, rt.wrap(err)
		}
		if ok && (!found || r.Seq > best.Seq) {
			best, found = r, true
		}
	}
	if found {
		rt.fill(&best)
	}
	return best, found, nil
}

// current returns the newest version of key across all sources, as newest
// does, for a write that replaces it. When the buffer is shared it also
// returns check, the condition of the write's batch: the buffer still
// holds the version read (or still holds none).
func (rt *rowTable) current(ctx context.Context, key []byte) (cur row.Row, found bool, check store.Operation, err error) {
	if !rt.shared {
		cur, found, err = rt.newest(ctx, key)
		return cur, found, check, err
	}
	raw, err := rt.b.Get(ctx, rt.part, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		check = store.CheckAbsentOp(rt.part, key)
	case err != nil:
		return row.Row{}, false, check, rt.wrap(err)
	default:
		check = store.CheckValueOp(rt.part, key, raw)
		if err := row.Decode(raw, rt.types, &cur); err != nil {
			return row.Row{}, false, check, fmt.Errorf("key %x: %w", key, err)
		}
		found = true
	}
	for _, s := range rt.sources[1:] {
		r, ok, err := s.Lookup(ctx, key)
		if err != nil {
			return row.Row{}, false, check, rt.wrap(err)
		}
		if ok && (!found || r.Seq > cur.Seq) {
			cur, found = r, true
		}
	}
	if found {
		rt.fill(&cur)
	}
	return cur, found, check, nil
}

// maxConflicts is how many times a write on a shared buffer retries when
// other processes change its keys between its read and its batch. Every
// retry means another write succeeded, so they all progress.
const maxConflicts = 100

// conflict tells whether a write whose batch returned err, at the given
// attempt, reads its keys again and retries; when it may not, it returns
// the error to report.
func (rt *rowTable) conflict(err error, attempt int) (retry bool, _ error) {
	if !rt.shared || !errors.Is(err, store.ErrConditionFailed) {
		return false, rt.wrap(err)
	}
	if attempt+1 < maxConflicts {
		// The check that failed may be a source's (pin).
		for _, s := range rt.synced {
			s.Invalidate()
		}
		return true, nil
	}
	return false, fmt.Errorf("%s: other servers changed the row %d times while this write ran; try again: %w",
		rt.t.FullName(), maxConflicts, err)
}

// iter returns the merged versions of every source.
func (rt *rowTable) iter(ctx context.Context, prefix, start []byte, exclusive bool) (VersionIter, error) {
	srcs := rt.sources
	its := make([]VersionIter, 0, len(srcs))
	for _, s := range srcs {
		it, err := s.Scan(ctx, prefix, start, exclusive)
		if err != nil {
			for _, open := range its {
				_ = open.Close()
			}
			return nil, rt.wrap(err)
		}
		its = append(its, it)
	}
	if len(its) == 1 {
		return its[0], nil
	}
	m := merge.New(len(prefix), len(its))
	for _, it := range its {
		m.Add(it)
	}
	return m, nil
}

func (rt *rowTable) pkName() string { return rt.t.Columns[rt.pk].Name }

func (rt *rowTable) notFound(pk row.Value) error {
	return fmt.Errorf("%w: %s %s=%v", core.ErrRowNotFound, rt.t.FullName(), rt.pkName(), pk)
}

func (rt *rowTable) duplicate(pk row.Value) error {
	return fmt.Errorf("%w: %s %s=%v", core.ErrDuplicateKey, rt.t.FullName(), rt.pkName(), pk)
}

func rowErr(i, n int, err error) error {
	if n == 1 {
		return err
	}
	return fmt.Errorf("row %d: %w", i, err)
}

// insert writes rows, all or none. See UserTableStore.Insert.
func (rt *rowTable) insert(ctx context.Context, user string, rows [][]row.Value) (int64, error) {
	n := len(rows)
	if n == 0 {
		return 0, fmt.Errorf("%w: insert into %s has no rows", core.ErrInvalidArgument, rt.t.FullName())
	}
	if n == 1 {
		return rt.insertOne(ctx, user, rows[0])
	}
	prefix, err := rt.scopePrefix(nil, user)
	if err != nil {
		return 0, err
	}
	// Keys share one arena; each key is a full slice expression of it.
	arena := make([]byte, 0, n*(len(prefix)+12))
	ks := make([][]byte, n)
	size := 0
	for i, vals := range rows {
		if err := rt.t.ValidateValues(vals); err != nil {
			return 0, rowErr(i, n, err)
		}
		l, err := rt.encodedLen(vals)
		if err != nil {
			return 0, rowErr(i, n, err)
		}
		size += l
		start := len(arena)
		arena = append(arena, prefix...)
		if arena, err = rt.t.AppendKey(arena, vals[rt.pk]); err != nil {
			return 0, rowErr(i, n, err)
		}
		ks[i] = arena[start:len(arena):len(arena)]
	}
	if i, twice := repeated(ks); twice {
		return 0, rowErr(i, n, fmt.Errorf("%w (twice in one insert)", rt.duplicate(rows[i][rt.pk])))
	}
	g := rt.locks.LockKeys(ks)
	defer g.Unlock()
	// On a shared buffer the batch holds a check per key, and the shared
	// sources' checks, before the puts.
	nops := n
	if rt.shared {
		nops = 2*n + len(rt.synced)
	}
	ops := make([]store.Operation, nops)
	puts := ops[nops-n:]
	vals := make([]byte, 0, size)
attempts:
	for attempt := 0; ; attempt++ {
		pins, err := rt.pin(ctx)
		if err != nil {
			return 0, err
		}
		copy(ops[n:], pins)
		var floor int64
		for i, k := range ks {
			cur, found, check, err := rt.current(ctx, k)
			if err != nil {
				return 0, rowErr(i, n, err)
			}
			if found && !cur.Deleted {
				if ok, err := rt.confirmed(ctx, pins, attempt); err != nil || !ok {
					if err != nil {
						return 0, err
					}
					continue attempts
				}
				return 0, rowErr(i, n, rt.duplicate(rows[i][rt.pk]))
			}
			floor = max(floor, cur.Seq)
			if rt.shared {
				ops[i] = check
			}
		}
		first, err := rt.alloc.NextAbove(ctx, n, floor)
		if err != nil {
			return 0, rt.wrap(err)
		}
		now := rt.clock.Now().UnixMicro()
		vals = vals[:0]
		for i := range rows {
			r := row.Row{Seq: first + int64(i), Updated: now, Values: rows[i]}
			start := len(vals)
			if vals, err = row.Encode(vals, &r, rt.types); err != nil {
				return 0, rowErr(i, n, err)
			}
			puts[i] = store.PutOp(rt.part, ks[i], vals[start:len(vals):len(vals)])
		}
		if err := rt.b.Capabilities().CheckBatch(ops); err != nil {
			return 0, fmt.Errorf("%w: the insert of %d rows into %s does not fit what the storage backend writes at once, and an insert is all or nothing; insert fewer rows at a time (%v)",
				core.ErrInvalidArgument, n, rt.t.FullName(), err)
		}
		err = rt.b.Batch(ctx, ops)
		if err == nil {
			rt.written.Add(int64(n))
			return first, nil
		}
		if retry, err := rt.conflict(err, attempt); !retry {
			return 0, err
		}
	}
}

// repeated returns the index of a key of ks that another key of ks equals,
// if there is one.
func repeated(ks [][]byte) (int, bool) {
	order := make([]int, len(ks))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ks[a], ks[b]) })
	for j := 1; j < len(order); j++ {
		if bytes.Equal(ks[order[j-1]], ks[order[j]]) {
			return order[j], true
		}
	}
	return 0, false
}

// insertOne is insert of one row, with the key and the value in one
// allocation.
func (rt *rowTable) insertOne(ctx context.Context, user string, vals []row.Value) (int64, error) {
	if err := rt.t.ValidateValues(vals); err != nil {
		return 0, err
	}
	size, err := rt.encodedLen(vals)
	if err != nil {
		return 0, err
	}
	pk := vals[rt.pk]
	pb := getBuf(len(user) + 2 + pk.Len() + 12 + size)
	defer putBuf(pb)
	buf, err := rt.scopePrefix(*pb, user)
	if err != nil {
		return 0, err
	}
	if buf, err = rt.t.AppendKey(buf, pk); err != nil {
		return 0, err
	}
	k := buf[:len(buf):len(buf)]
	stripe := rt.locks.Lock(k)
	defer rt.locks.Unlock(stripe)
	for attempt := 0; ; attempt++ {
		pins, err := rt.pin(ctx)
		if err != nil {
			return 0, err
		}
		cur, found, check, err := rt.current(ctx, k)
		if err != nil {
			return 0, err
		}
		if found && !cur.Deleted {
			if ok, err := rt.confirmed(ctx, pins, attempt); err != nil {
				return 0, err
			} else if !ok {
				continue
			}
			return 0, rt.duplicate(pk)
		}
		first, err := rt.alloc.NextAbove(ctx, 1, cur.Seq)
		if err != nil {
			return 0, rt.wrap(err)
		}
		r := row.Row{Seq: first, Updated: rt.clock.Now().UnixMicro(), Values: vals}
		if buf, err = row.Encode(buf[:len(k)], &r, rt.types); err != nil {
			return 0, err
		}
		*pb = buf
		if err = rt.put(ctx, k, buf[len(k):], check, pins); err == nil {
			rt.written.Add(1)
			return first, nil
		}
		if retry, err := rt.conflict(err, attempt); !retry {
			return 0, err
		}
	}
}

// put stores val under k; on a shared buffer, in one batch with check and
// the shared sources' checks (pin).
func (rt *rowTable) put(ctx context.Context, k, val []byte, check store.Operation, pins []store.Operation) error {
	if !rt.shared {
		return rt.b.Put(ctx, rt.part, k, val)
	}
	ops := make([]store.Operation, 0, 2+len(pins))
	ops = append(append(append(ops, pins...), check), store.PutOp(rt.part, k, val))
	return rt.b.Batch(ctx, ops)
}

// encodedLen returns the encoded size of a row of vals, or an error when it
// is above the backend's value limit.
func (rt *rowTable) encodedLen(vals []row.Value) (int, error) {
	n := row.EncodedLen(&row.Row{Values: vals})
	if n > store.MaxValueSize {
		return 0, fmt.Errorf("%w: %s: the row encodes to %d bytes, the limit is %d", core.ErrInvalidRow, rt.t.FullName(), n, store.MaxValueSize)
	}
	return n, nil
}

func (rt *rowTable) get(ctx context.Context, user string, pk row.Value) (row.Row, error) {
	pb := getBuf(len(user) + 2 + pk.Len() + 12)
	defer putBuf(pb)
	k, err := rt.appendKey(*pb, user, pk)
	if err != nil {
		return row.Row{}, err
	}
	*pb = k
	r, found, err := rt.newest(ctx, k)
	if err != nil {
		return row.Row{}, err
	}
	if !found || r.Deleted {
		return row.Row{}, rt.notFound(pk)
	}
	return r, nil
}

func (rt *rowTable) update(ctx context.Context, user string, pk row.Value, set map[string]row.Value) (row.Row, error) {
	k, err := rt.key(user, pk)
	if err != nil {
		return row.Row{}, err
	}
	if err := rt.t.ValidatePatch(set); err != nil {
		return row.Row{}, err
	}
	stripe := rt.locks.Lock(k)
	defer rt.locks.Unlock(stripe)
	for attempt := 0; ; attempt++ {
		pins, err := rt.pin(ctx)
		if err != nil {
			return row.Row{}, err
		}
		cur, found, check, err := rt.current(ctx, k)
		if err != nil {
			return row.Row{}, err
		}
		if !found || cur.Deleted {
			if ok, err := rt.confirmed(ctx, pins, attempt); err != nil {
				return row.Row{}, err
			} else if !ok {
				continue
			}
			return row.Row{}, rt.notFound(pk)
		}
		vals, err := rt.t.Patch(cur.Values, set)
		if err != nil {
			return row.Row{}, err
		}
		next := row.Row{Values: vals}
		if _, err := rt.encodedLen(vals); err != nil {
			return row.Row{}, err
		}
		if err = rt.write(ctx, k, &next, cur.Seq, check, pins); err == nil {
			return next, nil
		}
		if retry, err := rt.conflict(err, attempt); !retry {
			return row.Row{}, err
		}
	}
}

func (rt *rowTable) delete(ctx context.Context, user string, pk row.Value) error {
	k, err := rt.key(user, pk)
	if err != nil {
		return err
	}
	stripe := rt.locks.Lock(k)
	defer rt.locks.Unlock(stripe)
	for attempt := 0; ; attempt++ {
		pins, err := rt.pin(ctx)
		if err != nil {
			return err
		}
		cur, found, check, err := rt.current(ctx, k)
		if err != nil {
			return err
		}
		if !found || cur.Deleted {
			if ok, err := rt.confirmed(ctx, pins, attempt); err != nil {
				return err
			} else if !ok {
				continue
			}
			return rt.notFound(pk)
		}
		// The tombstone keeps the last values: the row is soft-deleted.
		tomb := row.Row{Deleted: true, Values: cur.Values}
		if err = rt.write(ctx, k, &tomb, cur.Seq, check, pins); err == nil {
			return nil
		}
		if retry, err := rt.conflict(err, attempt); !retry {
			return err
		}
	}
}

// write gives r a new _seq above replaced (the _seq of the version it
// replaces) and _updated, and stores it under k, with check and pins on a
// shared buffer. The caller holds k's lock. A storage error is returned as
// is, for conflict to judge.
func (rt *rowTable) write(ctx context.Context, k []byte, r *row.Row, replaced int64, check store.Operation, pins []store.Operation) error {
	s, err := rt.alloc.NextAbove(ctx, 1, replaced)
	if err != nil {
		return err
	}
	r.Seq, r.Updated = s, rt.clock.Now().UnixMicro()
	val, err := row.Encode(nil, r, rt.types)
	if err != nil {
		return err
	}
	if err := rt.put(ctx, k, val, check, pins); err != nil {
		return err
	}
	rt.written.Add(1)
	return nil
}

// Pages are built in slabs: the rows' values are allocated for many rows
// at a time, from firstSlabRows rows up to maxSlabRows, doubling, so a page
// of n rows costs O(log n) allocations. The slice of rows is sized at once
// from a Remainder's count when the merged sources give one, else it
// doubles likewise up to the page's limit.
const (
	firstSlabRows = 64
	maxSlabRows   = 4096
)

// pageRows builds the rows of a page of at most limit rows of nc columns.
type pageRows struct {
	rows     []row.Row
	slab     []row.Value
	slabRows int
	nc       int
	limit    int
}

func newPageRows(nc, limit int) pageRows {
	return pageRows{slabRows: firstSlabRows, nc: nc, limit: limit}
}

// reserve makes room for about n more rows (at most up to the limit).
func (p *pageRows) reserve(n int) {
	if n = min(n, p.limit-len(p.rows)); n > cap(p.rows)-len(p.rows) {
		p.rows = slices.Grow(p.rows, n)
	}
}

// add appends a row whose Values has room for nc values, for the caller to
// decode into in place (which keeps the row off the heap). Each row's
// values are a full slice expression of the slab, so an append to one
// never overwrites the next.
func (p *pageRows) add() *row.Row {
	if len(p.rows) == cap(p.rows) {
		p.rows = slices.Grow(p.rows, min(p.limit, max(2*cap(p.rows), 2*firstSlabRows))-len(p.rows))
	}
	if len(p.slab) < p.nc {
		p.slab = make([]row.Value, p.nc*min(p.slabRows, p.limit-len(p.rows)))
		p.slabRows = min(2*p.slabRows, maxSlabRows)
	}
	p.rows = append(p.rows, row.Row{Values: p.slab[:p.nc:p.nc]})
	p.slab = p.slab[p.nc:]
	return &p.rows[len(p.rows)-1]
}

func (rt *rowTable) scan(ctx context.Context, user string, opts ScanOptions) (Page, error) {
	for attempt := 0; ; attempt++ {
		p, err := rt.scanOnce(ctx, user, opts)
		if !reread(err, attempt) {
			return p, err
		}
	}
}

func (rt *rowTable) scanOnce(ctx context.Context, user string, opts ScanOptions) (Page, error) {
	limit, err := checkLimit(opts.Limit)
	if err != nil {
		return Page{}, err
	}
	if err := checkMaxBytes(opts.MaxBytes); err != nil {
		return Page{}, err
	}
	if !opts.Start.IsNull() && !opts.After.IsNull() {
		return Page{}, fmt.Errorf("%w: scan of %s sets both Start and After", core.ErrInvalidArgument, rt.t.FullName())
	}
	prefix, err := rt.scopePrefix(nil, user)
	if err != nil {
		return Page{}, err
	}
	var start []byte
	exclusive := false
	if from := opts.Start; !from.IsNull() || !opts.After.IsNull() {
		if from.IsNull() {
			from, exclusive = opts.After, true
		}
		if start, err = rt.t.AppendKey(slices.Clone(prefix), from); err != nil {
			return Page{}, err
		}
	}
	it, err := rt.iter(ctx, prefix, start, exclusive)
	if err != nil {
		return Page{}, err
	}
	defer it.Close()
	p := newPageRows(len(rt.types), limit)
	more := false
	size := 0 // of the page's rows, when opts.MaxBytes bounds it
	// src is it until a merge has one source left, then that source.
	src, m := it, (*merge.Iter)(nil)
	if mi, ok := it.(*merge.Iter); ok {
		m = mi
	}
	for first := true; src.Next(); first = false {
		if m != nil {
			if s := m.Solitary(); s != nil {
				src, m = s, nil
			}
		}
		if first {
			if r, ok := it.(Remainder); ok {
				p.reserve(r.Remaining())
			}
		}
		if src.Deleted() {
			continue
		}
		if len(p.rows) == limit || (opts.MaxBytes > 0 && size >= opts.MaxBytes) {
			more = true
			break
		}
		r := p.add()
		if err := src.Row(r); err != nil {
			return Page{}, err
		}
		rt.fill(r)
		if opts.MaxBytes > 0 {
			size += row.EncodedLen(r)
		}
	}
	if err := it.Close(); err != nil {
		return Page{}, rt.wrap(err)
	}
	if p.rows == nil {
		p.rows = []row.Row{}
	}
	page := Page{Rows: p.rows, More: more}
	if more {
		page.Next = p.rows[len(p.rows)-1].Values[rt.pk]
	}
	return page, nil
}

func (rt *rowTable) count(ctx context.Context, user string) (int64, error) {
	for attempt := 0; ; attempt++ {
		n, err := rt.countOnce(ctx, user)
		if !reread(err, attempt) {
			return n, err
		}
	}
}

func (rt *rowTable) countOnce(ctx context.Context, user string) (int64, error) {
	prefix, err := rt.scopePrefix(nil, user)
	if err != nil {
		return 0, err
	}
	it, err := rt.iter(ctx, prefix, nil, false)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	var n int64
	for it.Next() {
		if !it.Deleted() {
			n++
		}
	}
	return n, rt.wrap(it.Close())
}
