package segment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"
)

// Store is where segments live: the operations the cold tier needs of a
// segment store, and nothing more. Names are paths as for FS (relative,
// slash-separated, checked with CheckPath). Segments are immutable: an
// object is written once, whole, and read or removed afterwards, never
// changed. A Store is safe for concurrent use.
//
// The cold tier's crash safety rests on Create: an object is visible under
// its name only once Upload.Commit returned nil, whole and durable; an
// upload that fails, is aborted or is cut short by a crash leaves nothing
// under the name (a local Store may leave a temporary file that List
// reports and recovery removes).
//
// Two implementations exist: FSStore, over an FS (a local directory, or a
// faultfs in tests), and package objstore's, over an object-store bucket;
// package segment's DiskCache adds a local cache of byte ranges in front of
// either.
type Store interface {
	// Create starts writing object name. Nothing is visible under name
	// until the upload's Commit succeeds.
	Create(ctx context.Context, name string) (Upload, error)
	// Open opens object name for ranged reads. size is its length when
	// the caller knows it (the manifest records it), or negative: the
	// Store then asks for it (a stat, or a HEAD request). A missing object
	// fails with an error that wraps fs.ErrNotExist.
	Open(ctx context.Context, name string, size int64) (Object, error)
	// Remove removes object name. Removing a missing object fails with an
	// error that wraps fs.ErrNotExist.
	Remove(ctx context.Context, name string) error
	// List calls fn for every object whose name starts with prefix ("" for
	// all), temporary objects of unfinished uploads included, in no
	// particular order; an error of fn ends the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// String describes the store for messages and logs (a directory, or a
	// URL without credentials).
	String() string
}

// Upload is an object being written.
type Upload interface {
	io.Writer
	// Commit makes the object visible, whole and durable, under its name.
	// After a failed Commit nothing is visible under the name.
	Commit() error
	// Abort gives the upload up; nothing is left under the name. It may
	// be called after a failed Commit, and is then a no-op.
	Abort()
}

// Object is an object open for reading.
type Object interface {
	io.ReaderAt
	// Size returns the object's length in bytes.
	Size() int64
	// Close releases the object.
	Close() error
}

// Prefetcher is implemented by Objects that fetch byte ranges ahead of
// reads (a cached remote object): the readers announce the ranges they are
// about to read, so that the object fetches them in as few requests as
// possible instead of one per read.
type Prefetcher interface {
	// Prefetch fetches the ranges [off, off+n) given as pairs.
	Prefetch(ctx context.Context, ranges [][2]int64) error
}

// ObjectInfo describes a listed object.
type ObjectInfo struct {
	// Name is the object's name.
	Name string
	// Size is its length in bytes.
	Size int64
	// ModTime is when it was written.
	ModTime time.Time
}

// IsTemp reports whether name is the temporary file of an unfinished
// upload of a local Store (it ends in TempExt).
func IsTemp(name string) bool { return strings.HasSuffix(name, TempExt) }

// FSStore returns the Store of fsys: an upload is written to name+TempExt,
// synced, renamed to name and its directory synced (directories are created
// and synced up to the root first), so that a crash at any point leaves
// either nothing under name or the whole, durable object. Removing an
// object also removes the directories it leaves empty.
func FSStore(fsys FS, desc string) Store {
	return &fsStore{fs: fsys, desc: desc, ready: map[string]bool{}}
}

type fsStore struct {
	fs   FS
	desc string
	// dirMu orders directory creation against the removal of empty
	// directories: a directory is never removed between its creation and
	// the creation of the file it was made for.
	dirMu sync.Mutex
	ready map[string]bool // directories known to exist durably
}

func (s *fsStore) String() string { return s.desc }

func (s *fsStore) Create(ctx context.Context, name string) (Upload, error) {
	if err := CheckPath(name); err != nil {
		return nil, err
	}
	dir := path.Dir(name)
	tmp := name + TempExt
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if dir != "." && !s.ready[dir] {
		if err := MkdirAllDurable(s.fs, dir); err != nil {
			return nil, err
		}
		s.ready[dir] = true
	}
	f, err := s.fs.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("segment: creating %s: %w", tmp, err)
	}
	return &fsUpload{s: s, f: f, name: name, tmp: tmp}, nil
}

type fsUpload struct {
	s         *fsStore
	f         File
	name, tmp string
	closed    bool
	done      bool
}

func (u *fsUpload) Write(p []byte) (int, error) {
	n, err := u.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("segment: writing %s: %w", u.tmp, err)
	}
	return n, nil
}

func (u *fsUpload) Commit() error {
	if u.done {
		return fmt.Errorf("segment: %s: upload already ended", u.name)
	}
	u.done = true
	fsys := u.s.fs
	if err := u.f.Sync(); err != nil {
		u.abort()
		return fmt.Errorf("segment: syncing %s: %w", u.tmp, err)
	}
	u.closed = true
	if err := u.f.Close(); err != nil {
		_ = fsys.Remove(u.tmp)
		return fmt.Errorf("segment: closing %s: %w", u.tmp, err)
	}
	if err := fsys.Rename(u.tmp, u.name); err != nil {
		_ = fsys.Remove(u.tmp)
		return fmt.Errorf("segment: renaming %s: %w", u.tmp, err)
	}
	if err := fsys.SyncDir(path.Dir(u.name)); err != nil {
		// No manifest records the file yet, so it can go (on a full disk
		// it must: nothing else would free its space before a restart).
		// Should the removal fail, or a crash undo it, recovery removes
		// the unrecorded file.
		_ = fsys.Remove(u.name)
		return fmt.Errorf("segment: syncing directory %s: %w", path.Dir(u.name), err)
	}
	return nil
}

func (u *fsUpload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.abort()
}

func (u *fsUpload) abort() {
	if !u.closed {
		u.closed = true
		_ = u.f.Close()
	}
	_ = u.s.fs.Remove(u.tmp)
}

func (s *fsStore) Open(ctx context.Context, name string, size int64) (Object, error) {
	f, err := s.fs.Open(name)
	if err != nil {
		return nil, fmt.Errorf("segment: opening %s: %w", name, err)
	}
	if size < 0 {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("segment: opening %s: %w", name, err)
		}
	}
	return &fsObject{f: f, size: size}, nil
}

type fsObject struct {
	f    ReadFile
	size int64
}

func (o *fsObject) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o *fsObject) Size() int64                             { return o.size }
func (o *fsObject) Close() error                            { return o.f.Close() }

func (s *fsStore) Remove(ctx context.Context, name string) error {
	if err := CheckPath(name); err != nil {
		return err
	}
	if err := s.fs.Remove(name); err != nil {
		return fmt.Errorf("segment: removing %s: %w", name, err)
	}
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		entries, err := s.fs.ReadDir(d)
		if err != nil || len(entries) > 0 || s.fs.Remove(d) != nil {
			break
		}
		delete(s.ready, d)
	}
	return nil
}

func (s *fsStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	// Walk from the deepest directory the prefix names.
	dir := "."
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		dir = prefix[:i]
	}
	return s.walk(ctx, dir, prefix, fn)
}

func (s *fsStore) walk(ctx context.Context, dir, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := s.fs.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("segment: listing %s: %w", dir, err)
	}
	var empty []string
	for _, e := range entries {
		p := e.Name()
		if dir != "." {
			p = dir + "/" + p
		}
		if e.IsDir() {
			if !strings.HasPrefix(p+"/", prefix) && !strings.HasPrefix(prefix, p+"/") {
				continue
			}
			if err := s.walk(ctx, p, prefix, fn); err != nil {
				return err
			}
			empty = append(empty, p)
			continue
		}
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		info := ObjectInfo{Name: p, Size: -1}
		if fi, err := e.Info(); err == nil {
			info.Size, info.ModTime = fi.Size(), fi.ModTime()
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	// Directories left empty (by fn's removals, or by a crash) go, as
	// there are no directories in the objects' model.
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	for _, d := range empty {
		if entries, err := s.fs.ReadDir(d); err == nil && len(entries) == 0 && s.fs.Remove(d) == nil {
			delete(s.ready, d)
		}
	}
	return nil
}
