package flush

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// tier is the cold tier of one user or shared table: its committed
// segments, by user, and the tables.Source that reads them.
type tier struct {
	m       *Manager
	t       *catalog.Table
	dir     string
	perUser bool

	// flushMu serialises the flushes and the drop of the table, so that
	// segment ids grow with the age of the versions they hold.
	flushMu sync.Mutex

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
	dirsReady map[string]bool // directories known to exist durably
}

// segFile is a committed segment and what was learnt of its file: the key
// range of each row group, from the footer's statistics.
type segFile struct {
	Segment

	once   sync.Once
	err    error
	groups []groupRange
}

type groupRange struct {
	lo, hi []byte
	known  bool // false: no statistics, every key is possible
	rows   int  // versions in the row group
}

func newTier(m *Manager, t *catalog.Table) *tier {
	return &tier{m: m, t: t, dir: segment.TableDir(t.Namespace, t.Name), perUser: t.Type == catalog.UserTable,
		users: map[string][]*segFile{}, nextID: 1, lastFlush: m.clock.Now(), dirsReady: map[string]bool{}}
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

// add makes s visible to readers.
func (tr *tier) add(s *segFile) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	// Copy on write: readers keep the slice they took.
	tr.users[s.User] = append(slices.Clip(tr.users[s.User]), s)
	if s.ID >= tr.nextID {
		tr.nextID = s.ID + 1
	}
}

// remove hides s again (its commit failed).
func (tr *tier) remove(s *segFile) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	segs := tr.users[s.User]
	out := make([]*segFile, 0, len(segs))
	for _, x := range segs {
		if x != s {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		delete(tr.users, s.User)
	} else {
		tr.users[s.User] = out
	}
}

func (tr *tier) allocID() uint64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	id := tr.nextID
	tr.nextID++
	return id
}

// load reads the footer of the segment (through the cache) and the key
// ranges of its row groups, once.
func (f *segFile) load(tr *tier) error {
	f.once.Do(func() {
		md, err := tr.m.cache.Footer(tr.m.fs, f.Path)
		if err != nil {
			f.err = fmt.Errorf("flush: %s: committed segment %s: %w", tr.t.FullName(), f.Path, err)
			return
		}
		if err := segment.CheckFooter(md, f.Path, f.TableID, f.ID); err != nil {
			f.err = err
			return
		}
		prefix := tr.prefix(f.User)
		f.groups = make([]groupRange, len(md.RowGroups))
		for i := range f.groups {
			lo, hi, ok := segment.KeyRange(md, tr.t, prefix, i)
			f.groups[i] = groupRange{lo: lo, hi: hi, known: ok, rows: int(md.RowGroup(i).NumRows())}
		}
	})
	return f.err
}

func (tr *tier) rowGroup(ctx context.Context, f *segFile, i int) (*segment.RowGroup, error) {
	g, err := tr.m.cache.RowGroup(ctx, tr.m.fs, f.Path, tr.t, tr.prefix(f.User), i)
	if err != nil {
		return nil, fmt.Errorf("flush: %s: reading segment %s: %w", tr.t.FullName(), f.Path, err)
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
		return "", fmt.Errorf("%w: %s: key %x has no user: %v", core.ErrInvalidArgument, tr.t.FullName(), key, err)
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
	segs := tr.segments(user)
	for i := len(segs) - 1; i >= 0; i-- {
		f := segs[i]
		if bytes.Compare(key, f.MinKey) < 0 || bytes.Compare(key, f.MaxKey) > 0 {
			continue
		}
		if err := f.load(tr); err != nil {
			return row.Row{}, false, err
		}
		for gi, gr := range f.groups {
			if gr.known && (bytes.Compare(key, gr.lo) < 0 || bytes.Compare(key, gr.hi) > 0) {
				continue
			}
			ki, err := tr.m.cache.KeyIndex(ctx, tr.m.fs, f.Path, tr.t, tr.prefix(f.User), gi)
			if err != nil {
				return row.Row{}, false, fmt.Errorf("flush: %s: reading segment %s: %w", tr.t.FullName(), f.Path, err)
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
	}
	return row.Row{}, false, nil
}

// Scan implements tables.Source: the cold versions under prefix from start,
// merged across segments, newest _seq winning.
func (tr *tier) Scan(ctx context.Context, prefix, start []byte, exclusive bool) (tables.VersionIter, error) {
	r, empty := store.ScanOptions{Prefix: prefix, Start: start, ExclusiveStart: exclusive && len(start) > 0}.ToRange()
	if empty {
		return newMerge(nil), nil
	}
	var release func()
	if !tr.m.snapshots {
		tr.commitMu.RLock()
		release = tr.commitMu.RUnlock
	}
	var segs []*segFile
	if tr.perUser && len(prefix) == 0 {
		tr.mu.RLock()
		for _, s := range tr.users {
			segs = append(segs, s...)
		}
		tr.mu.RUnlock()
	} else {
		user, err := tr.userOfKey(prefix)
		if err != nil {
			if release != nil {
				release()
			}
			return nil, err
		}
		segs = tr.segments(user)
	}
	its := make([]*segIter, 0, len(segs))
	for _, f := range segs {
		if r.Lower != nil && bytes.Compare(f.MaxKey, r.Lower) < 0 {
			continue
		}
		if r.Upper != nil && bytes.Compare(f.MinKey, r.Upper) >= 0 {
			continue
		}
		its = append(its, &segIter{ctx: ctx, tr: tr, f: f, lower: r.Lower, upper: r.Upper, skip: len(prefix), gi: -1})
	}
	m := newMerge(its)
	m.release = release
	return m, nil
}

// has reports whether any segment holds a version of key.
func (tr *tier) has(ctx context.Context, key []byte) (bool, error) {
	_, found, err := tr.find(ctx, key, false)
	return found, err
}
