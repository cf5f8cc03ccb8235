package flush

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// tier is the cold tier of one user or shared table: its committed
// segments, by user, and the tables.Source that reads them.
type tier struct {
	m *Manager
	// t is the table's definition, replaced when columns are added (see
	// coldTier.ChangeSchema); read it with table().
	t       atomic.Pointer[catalog.Table]
	dir     string
	perUser bool

	// flushMu serialises the flushes and the drop of the table, so that
	// segment ids grow with the age of the versions they hold.
	flushMu sync.Mutex
	// doubts are the commits whose outcome is not known yet, oldest
	// first (see doubt); under flushMu.
	doubts []*doubt
	// lease is the table's lease while a flush or compaction holds it
	// (Options.Leases); under flushMu.
	lease *lease.Lease

	// commitMu keeps a commit's buffer delete out of the way of scans on a
	// backend without snapshot scans: such a scan may miss a key deleted
	// while it runs, so a scan holds it (read) from the moment it takes its
	// list of segments until it is closed, and a commit (write) waits. With
	// snapshot scans it is not used.
	commitMu sync.RWMutex

	mu        sync.RWMutex
	users     map[string][]*segFile // ascending segment id
	nextID    uint64
	dropped   bool
	lastFlush time.Time

	// On a shared backend (see sync): version is the manifest version the
	// list was read at (nil: absent), synced whether it was read at all,
	// under mu; syncMu serialises the reads of the manifest; stale asks the
	// next Pin to read it again; workVersion is the version the lease
	// holder's commits raise, under flushMu.
	version     []byte
	synced      bool
	syncMu      sync.Mutex
	stale       atomic.Bool
	workVersion []byte
}

// segFile is a committed segment and what was learnt of its file: the key
// range of each row group, from the footer's statistics.
type segFile struct {
	Segment

	loadMu sync.Mutex
	loaded atomic.Bool // groups is set
	groups []groupRange

	// listed: the tier's list holds f (and its reference); under the
	// tier's mu.
	listed bool

	// refs counts who may still read the file: 1 for the tier while the
	// segment is listed, plus 1 per reader that holds it (a scan from
	// start to Close, a lookup while it reads). The one who brings it to 0,
	// once a compaction or a failed commit has unlisted the segment,
	// removes the file; so a reader never loses a file under it.
	refs atomic.Int64
}

// acquire takes a reference to f for a reader that found f in a list it
// took without the tier's lock. It fails when f has been unlisted and its
// last reader is gone (the file is being removed): the reader must take
// the list again.
func (f *segFile) acquire() bool {
	for {
		n := f.refs.Load()
		if n <= 0 {
			return false
		}
		if f.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference to f; the last one removes its file, unless
// other servers share the segments: one of them may still read it, and
// the garbage rule removes it once no manifest records it (ADR-018).
func (tr *tier) release(f *segFile) {
	if f.refs.Add(-1) == 0 && !tr.m.shared {
		tr.m.cache.Forget(f.Path)
		// An object that cannot be removed now is an orphan that a
		// later Open removes.
		_ = tr.m.store.Remove(context.Background(), f.Path)
	}
}

type groupRange struct {
	lo, hi []byte
	known  bool // false: no statistics, every key is possible
	rows   int  // versions in the row group
}

// table returns the table's current definition.
func (tr *tier) table() *catalog.Table { return tr.t.Load() }

func newTier(m *Manager, t *catalog.Table) *tier {
	tr := &tier{m: m, dir: segment.TableDir(t.Namespace, t.Name), perUser: t.Type == catalog.UserTable,
		users: map[string][]*segFile{}, nextID: 1, lastFlush: m.clock.Now()}
	tr.t.Store(t)
	return tr
}

// userDir returns the directory of user's segments.
func (tr *tier) userDir(user string) (string, error) {
	if !tr.perUser {
		return tr.dir, nil
	}
	d, err := segment.UserDir(user)
	if err != nil {
		return "", err
	}
	return tr.dir + "/" + d, nil
}

// prefix returns the key prefix of user's rows.
func (tr *tier) prefix(user string) []byte {
	if !tr.perUser {
		return nil
	}
	return keys.AppendString(nil, user)
}

func (tr *tier) segments(user string) []*segFile {
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	return tr.users[user]
}

// acquireSegments returns the segments of user (every user's when all is
// set), each with a reference the caller releases, and the manifest
// version the list is at (see sync).
func (tr *tier) acquireSegments(user string, all bool) ([]*segFile, []byte) {
	tr.mu.RLock()
	defer tr.mu.RUnlock()
	var segs []*segFile
	if all {
		for _, s := range tr.users {
			segs = append(segs, s...)
		}
	} else {
		segs = slices.Clone(tr.users[user])
	}
	for _, f := range segs {
		// Listed, so the tier's reference is still there: never 0.
		f.refs.Add(1)
	}
	return segs, tr.version
}

// add makes s visible to readers, before its commit (a read of the
// manifest, on a shared backend, lists it once the manifest records it).
func (tr *tier) add(s *segFile) {
	s.refs.Store(1)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.insertLocked(s)
}

// addRecorded lists s, a segment the manifest records.
func (tr *tier) addRecorded(s *segFile) {
	s.refs.Store(1)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.insertLocked(s)
}

// settled records that the commit of s ended: recorded, s stays listed;
// not recorded, s is unlisted and its reference released.
func (tr *tier) settled(s *segFile, recorded bool) {
	if !recorded {
		tr.remove(s)
	}
}

// insertLocked lists f in its user's list, in segment id order, unless a
// segment of that id is listed already. The caller holds tr.mu.
func (tr *tier) insertLocked(f *segFile) bool {
	segs := tr.users[f.User]
	i, found := slices.BinarySearchFunc(segs, f.ID, func(s *segFile, id uint64) int { return cmp.Compare(s.ID, id) })
	if found {
		return false
	}
	// Copy on write: readers keep the slice they took.
	tr.users[f.User] = slices.Insert(slices.Clip(segs), i, f)
	f.listed = true
	if f.ID >= tr.nextID {
		tr.nextID = f.ID + 1
	}
	return true
}

// unlistLocked removes the segment of user with id from the list and
// returns it, for the caller to release once it has let go of tr.mu; nil
// when none is listed.
func (tr *tier) unlistLocked(user string, id uint64) *segFile {
	segs := tr.users[user]
	i, found := slices.BinarySearchFunc(segs, id, func(s *segFile, id uint64) int { return cmp.Compare(s.ID, id) })
	if !found {
		return nil
	}
	f := segs[i]
	out := slices.Delete(slices.Clone(segs), i, i+1)
	if len(out) == 0 {
		delete(tr.users, user)
	} else {
		tr.users[user] = out
	}
	f.listed = false
	return f
}

// remove hides s again (its commit failed) and releases the tier's
// reference, if s is still the segment listed under its id.
func (tr *tier) remove(s *segFile) {
	tr.mu.Lock()
	var f *segFile
	if s.listed {
		f = tr.unlistLocked(s.User, s.ID)
	}
	tr.mu.Unlock()
	if f != nil {
		tr.release(f)
	}
}

// ref names the segment's object in the store.
func (f *segFile) ref(tr *tier) segment.Ref {
	size := f.Bytes
	if size <= 0 {
		size = -1
	}
	return segment.Ref{Store: tr.m.store, Name: f.Path, Size: size}
}

// load reads the footer of the segment (through the cache) and the key
// ranges of its row groups, once it succeeds: a failure (an I/O error) is
// returned to this reader only, and the next one tries again.
func (f *segFile) load(tr *tier) error {
	if f.loaded.Load() {
		return nil
	}
	f.loadMu.Lock()
	defer f.loadMu.Unlock()
	if f.loaded.Load() {
		return nil
	}
	md, err := tr.m.cache.Footer(context.Background(), f.ref(tr))
	if err != nil {
		return fmt.Errorf("flush: %s: committed segment %s: %w", tr.table().FullName(), f.Path, err)
	}
	if err := segment.CheckFooter(md, f.Path, f.TableID, f.ID); err != nil {
		return err
	}
	prefix := tr.prefix(f.User)
	groups := make([]groupRange, len(md.RowGroups))
	for i := range groups {
		lo, hi, ok := segment.KeyRange(md, tr.table(), prefix, i)
		groups[i] = groupRange{lo: lo, hi: hi, known: ok, rows: int(md.RowGroup(i).NumRows())}
	}
	f.groups = groups
	f.loaded.Store(true)
	return nil
}

func (tr *tier) rowGroup(ctx context.Context, f *segFile, i int) (*segment.RowGroup, error) {
	g, err := tr.m.cache.RowGroup(ctx, f.ref(tr), tr.table(), tr.prefix(f.User), i)
	if err != nil {
		return nil, fmt.Errorf("flush: %s: reading segment %s: %w", tr.table().FullName(), f.Path, err)
	}
	return g, nil
}

// userOfKey returns the user whose rows key belongs to.
func (tr *tier) userOfKey(key []byte) (string, error) {
	if !tr.perUser {
		return "", nil
	}
	u, _, err := keys.DecodeString(key)
	if err != nil {
		return "", fmt.Errorf("%w: %s: key %x has no user: %v", core.ErrInvalidArgument, tr.table().FullName(), key, err)
	}
	return u, nil
}

// Lookup implements tables.Source: the newest cold version of key. The
// segments of the key's user are searched newest first, and a segment (or
// row group) whose key range excludes key is never opened.
func (tr *tier) Lookup(ctx context.Context, key []byte) (row.Row, bool, error) {
	return tr.find(ctx, key, true)
}

// find looks key up; without full it only reports whether a version
// exists, from the key indexes, and returns a zero row.
func (tr *tier) find(ctx context.Context, key []byte, full bool) (row.Row, bool, error) {
	user, err := tr.userOfKey(key)
	if err != nil {
		return row.Row{}, false, err
	}
	for {
		r, found, ok, err := tr.findIn(ctx, tr.segments(user), key, full)
		if ok {
			return r, found, err
		}
		// A compaction replaced a segment the lookup needed: the new list
		// holds the same versions.
	}
}

// findIn is find over the list segs; ok is false when a segment of the
// list was unlisted and removed before the lookup could take it.
func (tr *tier) findIn(ctx context.Context, segs []*segFile, key []byte, full bool) (r row.Row, found, ok bool, err error) {
	for i := len(segs) - 1; i >= 0; i-- {
		f := segs[i]
		if bytes.Compare(key, f.MinKey) < 0 || bytes.Compare(key, f.MaxKey) > 0 {
			continue
		}
		if !f.acquire() {
			return row.Row{}, false, false, nil
		}
		r, found, err := tr.findInSegment(ctx, f, key, full)
		tr.release(f)
		if err != nil || found {
			return r, found, true, err
		}
	}
	return row.Row{}, false, true, nil
}

// findInSegment looks key up in f, which the caller holds.
func (tr *tier) findInSegment(ctx context.Context, f *segFile, key []byte, full bool) (row.Row, bool, error) {
	if err := f.load(tr); err != nil {
		return row.Row{}, false, err
	}
	for gi, gr := range f.groups {
		if gr.known && (bytes.Compare(key, gr.lo) < 0 || bytes.Compare(key, gr.hi) > 0) {
			continue
		}
		ki, err := tr.m.cache.KeyIndex(ctx, f.ref(tr), tr.table(), tr.prefix(f.User), gi)
		if err != nil {
			return row.Row{}, false, fmt.Errorf("flush: %s: reading segment %s: %w", tr.table().FullName(), f.Path, err)
		}
		if idx, found := ki.Search(key); found {
			if !full {
				return row.Row{}, true, nil
			}
			g, err := tr.rowGroup(ctx, f, gi)
			if err != nil {
				return row.Row{}, false, err
			}
			var r row.Row
			g.Row(idx, &r)
			return r, true, nil
		}
	}
	return row.Row{}, false, nil
}

// Scan implements tables.Source: the cold versions under prefix from start,
// merged across segments, newest _seq winning. On a shared backend it
// reads the manifest again first when it moved, and its Close fails with
// tables.ErrSourceChanged when it moved while the scan ran.
func (tr *tier) Scan(ctx context.Context, prefix, start []byte, exclusive bool) (tables.VersionIter, error) {
	r, empty := store.ScanOptions{Prefix: prefix, Start: start, ExclusiveStart: exclusive && len(start) > 0}.ToRange()
	if empty {
		return newSegMerge(nil, 0, nil), nil
	}
	if err := tr.sync(ctx); err != nil {
		return nil, err
	}
	var unlock func()
	if !tr.m.snapshots {
		tr.commitMu.RLock()
		unlock = tr.commitMu.RUnlock
	}
	all := tr.perUser && len(prefix) == 0
	var user string
	if !all {
		var err error
		if user, err = tr.userOfKey(prefix); err != nil {
			if unlock != nil {
				unlock()
			}
			return nil, err
		}
	}
	segs, version := tr.acquireSegments(user, all)
	its := make([]*segIter, 0, len(segs))
	held := segs[:0]
	for _, f := range segs {
		if (r.Lower != nil && bytes.Compare(f.MaxKey, r.Lower) < 0) || (r.Upper != nil && bytes.Compare(f.MinKey, r.Upper) >= 0) {
			tr.release(f)
			continue
		}
		held = append(held, f)
		its = append(its, &segIter{ctx: ctx, tr: tr, f: f, lower: r.Lower, upper: r.Upper, gi: -1})
	}
	it := newSegMerge(its, len(prefix), func() {
		for _, f := range held {
			tr.release(f)
		}
		if unlock != nil {
			unlock()
		}
	})
	if !tr.m.shared {
		return it, nil
	}
	return &versionCheck{VersionIter: it, ctx: ctx, tr: tr, version: version}, nil
}

// has reports whether any segment holds a version of key.
func (tr *tier) has(ctx context.Context, key []byte) (bool, error) {
	_, found, err := tr.find(ctx, key, false)
	return found, err
}
