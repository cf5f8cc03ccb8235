package sql

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// mirror is a local directory of whole segment files copied from a
// segment store that is not a local directory (an object store), so that
// the query engine can read them as it reads a local store's: each file is
// dir/<segment path>. It holds at most max bytes of files that no query
// uses, evicting the least recently used; a file a running query uses is
// never evicted, so the files in use may exceed max until their queries
// end. A segment file is never rewritten under its name (the name holds
// the table's id and the segment's), so a file present is the segment's.
// The directory is the mirror's alone: New empties it. It is safe for
// concurrent use.
type mirror struct {
	dir   string
	max   int64
	store segment.Store
	local segment.Store // dir, to check the footers of the copies

	mu      sync.Mutex
	files   map[string]*list.Element // of *mirrored, by segment path
	copying map[string]*copying      // the copies under way, by segment path
	lru     list.List                // most recently used first
	bytes   int64
}

// copying is a copy under way, which the other queries that need the file
// wait for rather than copy it too.
type copying struct {
	done    chan struct{} // closed once the copy is placed or failed
	err     error         // the copy's failure, set before done is closed
	waiters int           // queries waiting for it
}

// mirrored is a segment file of the mirror.
type mirrored struct {
	path string // the segment's, slash-separated
	size int64
	refs int // queries using it
}

// openMirror empties dir (creating it if needed) for a mirror of the
// files of store, holding at most limit bytes of unused files.
func openMirror(dir string, limit int64, store segment.Store) (*mirror, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("sql: segment files directory %s: the size limit must be positive, got %d", dir, limit)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("sql: emptying the segment files directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sql: making the segment files directory: %w", err)
	}
	return &mirror{dir: dir, max: limit, store: store, local: segment.FSStore(segment.DirFS(dir), dir),
		files: map[string]*list.Element{}, copying: map[string]*copying{}}, nil
}

// acquire makes every file of files present in the mirror and holds it
// until the returned release (idempotent) is called. When a file cannot
// be copied, it holds none and returns the error.
func (m *mirror) acquire(ctx context.Context, files []flush.SnapshotFile) (func(), error) {
	var held []*list.Element
	release := func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, el := range held {
			el.Value.(*mirrored).refs--
		}
		held = nil
		m.evictLocked()
	}
	for _, f := range files {
		el, err := m.hold(ctx, f)
		if err != nil {
			release()
			return nil, err
		}
		held = append(held, el)
	}
	return release, nil
}

// hold returns f's entry, its file copied first if missing, with one more
// reference. A query that needs a file another is copying waits for that
// copy, and fails with its error, unless that query gave up (its context
// ended): then it copies the file itself.
func (m *mirror) hold(ctx context.Context, f flush.SnapshotFile) (*list.Element, error) {
	for {
		m.mu.Lock()
		if el, ok := m.files[f.Path]; ok {
			if mf := el.Value.(*mirrored); m.intact(mf) {
				mf.refs++
				m.lru.MoveToFront(el)
				m.mu.Unlock()
				return el, nil
			}
			// Removed or cut short behind the mirror's back (its directory
			// cleaned, a disk that filled): copied again below.
			m.forgetLocked(el)
		}
		c, ok := m.copying[f.Path]
		if !ok {
			c = &copying{done: make(chan struct{})}
			m.copying[f.Path] = c
			m.mu.Unlock()
			el, err := m.copyAndPlace(ctx, f)
			m.mu.Lock()
			delete(m.copying, f.Path)
			c.err = err
			m.mu.Unlock()
			close(c.done)
			return el, err
		}
		c.waiters++
		m.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("sql: copying segment %s: %w", f.Path, ctx.Err())
		}
		if c.err != nil && !errors.Is(c.err, context.Canceled) && !errors.Is(c.err, context.DeadlineExceeded) {
			return nil, c.err
		}
		// Placed (held again above, unless already evicted: then copied
		// again), or abandoned by its query.
	}
}

// copyAndPlace copies f and places the copy in the mirror, as an entry
// with one reference.
func (m *mirror) copyAndPlace(ctx context.Context, f flush.SnapshotFile) (*list.Element, error) {
	tmp, size, err := m.copy(ctx, f)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := os.Rename(tmp, m.path(f.Path)); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("sql: segment %s: placing its copy: %w", f.Path, err)
	}
	el := m.lru.PushFront(&mirrored{path: f.Path, size: size, refs: 1})
	m.files[f.Path] = el
	m.bytes += size
	m.evictLocked()
	return el, nil
}

// intact reports whether f's file is still in place at its length.
func (m *mirror) intact(f *mirrored) bool {
	fi, err := os.Stat(m.path(f.path))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == f.size
}

// forgetLocked removes el's file from the mirror's accounts; the queries
// holding it release it as usual.
func (m *mirror) forgetLocked(el *list.Element) {
	f := el.Value.(*mirrored)
	m.lru.Remove(el)
	delete(m.files, f.path)
	m.bytes -= f.size
}

// path is the file of segment p in the mirror.
func (m *mirror) path(p string) string { return filepath.Join(m.dir, filepath.FromSlash(p)) }

// copy copies segment f from the store to a temporary file beside its
// place in the mirror and checks it: its length is the manifest's (when
// recorded) and its footer is that of the segment. It returns the
// temporary file's path and length.
func (m *mirror) copy(ctx context.Context, f flush.SnapshotFile) (string, int64, error) {
	if err := segment.CheckPath(f.Path); err != nil {
		return "", 0, fmt.Errorf("sql: segment %s: %w", f.Path, err)
	}
	size := f.Bytes
	if size <= 0 {
		size = -1
	}
	obj, err := m.store.Open(ctx, f.Path, size)
	if err != nil {
		return "", 0, fmt.Errorf("sql: copying segment %s: %w", f.Path, err)
	}
	defer obj.Close()
	if f.Bytes > 0 && obj.Size() != f.Bytes {
		return "", 0, fmt.Errorf("sql: copying segment %s: the store has %d bytes, the manifest records %d", f.Path, obj.Size(), f.Bytes)
	}
	dst := m.path(f.Path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", 0, fmt.Errorf("sql: copying segment %s: %w", f.Path, err)
	}
	out, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".*.tmp")
	if err != nil {
		return "", 0, fmt.Errorf("sql: copying segment %s: %w", f.Path, err)
	}
	tmp := out.Name()
	fail := func(err error) (string, int64, error) {
		_ = out.Close()
		_ = os.Remove(tmp)
		return "", 0, err
	}
	n, err := io.Copy(out, io.NewSectionReader(readerAt{ctx, obj}, 0, obj.Size()))
	if err != nil {
		return fail(fmt.Errorf("sql: copying segment %s: %w", f.Path, err))
	}
	if n != obj.Size() {
		return fail(fmt.Errorf("sql: copying segment %s: read %d of its %d bytes", f.Path, n, obj.Size()))
	}
	if err := out.Close(); err != nil {
		return fail(fmt.Errorf("sql: copying segment %s: %w", f.Path, err))
	}
	rel, err := filepath.Rel(m.dir, tmp)
	if err != nil {
		return fail(fmt.Errorf("sql: copying segment %s: %w", f.Path, err))
	}
	md, err := segment.ReadFooter(ctx, segment.Ref{Store: m.local, Name: filepath.ToSlash(rel), Size: n})
	if err == nil {
		err = segment.CheckFooter(md, f.Path, f.TableID, f.ID)
	}
	if err != nil {
		return fail(fmt.Errorf("sql: copying segment %s: the copy is not the segment: %w", f.Path, err))
	}
	return tmp, n, nil
}

// readerAt reads an Object, failing once ctx is done.
type readerAt struct {
	ctx context.Context
	o   segment.Object
}

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.o.ReadAt(p, off)
}

// evictLocked removes the least recently used files no query uses while
// the mirror holds more than max bytes.
func (m *mirror) evictLocked() {
	for el := m.lru.Back(); el != nil && m.bytes > m.max; {
		prev := el.Prev()
		if f := el.Value.(*mirrored); f.refs == 0 {
			if err := os.Remove(m.path(f.path)); err == nil || errors.Is(err, os.ErrNotExist) {
				m.forgetLocked(el)
			}
		}
		el = prev
	}
}

// held returns the bytes of the mirror's files and of those in use.
func (m *mirror) held() (all, inUse int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for el := m.lru.Front(); el != nil; el = el.Next() {
		if f := el.Value.(*mirrored); f.refs > 0 {
			inUse += f.size
		}
	}
	return m.bytes, inUse
}
