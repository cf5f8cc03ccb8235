// Package faultfs wraps a segment.FS and makes chosen operations fail, and
// simulates what a power loss does to data that was not made durable, so
// that the flush can be tested against a failure or a crash at every step.
//
// A failed operation is not applied. A crash (CrashAt) fails the operation
// at the crash point and every later one with ErrCrashed, like a process
// that died there. PowerLoss then rewinds the files to what a machine that
// lost power at that point would find on disk: file data not synced with
// File.Sync is lost, and directory entries (files and directories created,
// renames) not made durable by SyncDir of their directory are undone.
// Removals are treated as durable at once.
package faultfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// ErrInjected is the error FailNth returns.
var ErrInjected = errors.New("faultfs: injected fault")

// ErrCrashed is returned by every operation from the crash point on.
var ErrCrashed = errors.New("faultfs: simulated crash")

// Op names an operation of the FS.
type Op string

// The operations a Rule sees. OpWrite, OpSync and OpClose are calls on a
// File; OpOpen opens a file for reading (its reads are not operations).
const (
	OpMkdir   Op = "mkdir"
	OpCreate  Op = "create"
	OpWrite   Op = "write"
	OpSync    Op = "sync"
	OpClose   Op = "close"
	OpOpen    Op = "open"
	OpRename  Op = "rename"
	OpRemove  Op = "remove"
	OpReadDir Op = "readdir"
	OpSyncDir Op = "syncdir"
)

// IsWrite reports whether op changes files or directories.
func (op Op) IsWrite() bool {
	switch op {
	case OpOpen, OpReadDir:
		return false
	}
	return true
}

// Writes is a match function that accepts the operations that change
// files or directories.
func Writes(op Op) bool { return op.IsWrite() }

// A Rule decides, for each operation in order, whether it fails (nil lets
// it through). Rules run under the FS's lock, one at a time.
type Rule func(op Op, name string) error

// FailNth fails the n-th operation (1-based) that match accepts (nil
// accepts all), once, with ErrInjected.
func FailNth(n int, match func(Op) bool) Rule {
	seen := 0
	return func(op Op, name string) error {
		if match != nil && !match(op) {
			return nil
		}
		seen++
		if seen == n {
			return fmt.Errorf("%s %s (#%d): %w", op, name, n, ErrInjected)
		}
		return nil
	}
}

// CrashAt fails the n-th operation (1-based) that match accepts, and every
// operation after it, with ErrCrashed.
func CrashAt(n int, match func(Op) bool) Rule {
	seen := 0
	return func(op Op, name string) error {
		if match != nil && !match(op) {
			return nil
		}
		seen++
		if seen >= n {
			return fmt.Errorf("%s %s (#%d): %w", op, name, seen, ErrCrashed)
		}
		return nil
	}
}

// FailFrom fails the n-th operation (1-based) that match accepts, and every
// later one it accepts, with err (wrapped with the operation and the path):
// a disk that fills up (syscall.ENOSPC with match NeedsSpace) or turns
// read-only (syscall.EROFS with match Writes) and stays so until the rule
// is removed. Unlike CrashAt it is no crash: the operations match refuses
// still work.
func FailFrom(n int, match func(Op) bool, err error) Rule {
	seen := 0
	return func(op Op, name string) error {
		if match != nil && !match(op) {
			return nil
		}
		seen++
		if seen >= n {
			return fmt.Errorf("%s %s (#%d): %w", op, name, seen, err)
		}
		return nil
	}
}

// NeedsSpace is a match function that accepts the operations a full disk
// fails: every operation that changes files or directories except
// removals, which free space.
func NeedsSpace(op Op) bool { return op.IsWrite() && op != OpRemove }

// FS is a segment.FS that consults a Rule before every operation and keeps
// track of what is durable.
type FS struct {
	inner segment.FS

	mu      sync.Mutex
	rule    Rule
	crashed bool
	counts  map[Op]int
	files   map[string]*fileState // files written through this FS, by path
	pending []entryOp             // directory changes not yet synced, in order
}

type fileState struct {
	size   int64 // bytes written
	synced int64 // bytes made durable by Sync
}

type entryOp struct {
	dir      string
	kind     string // "create", "mkdir" or "rename"
	from, to string
}

// New returns a transparent wrapper of inner.
func New(inner segment.FS) *FS {
	return &FS{inner: inner, counts: map[Op]int{}, files: map[string]*fileState{}}
}

// SetRule installs r (nil removes any rule) and clears the crashed state.
func (f *FS) SetRule(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rule, f.crashed = r, false
}

// Crashed reports whether a crash rule fired.
func (f *FS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// Count returns how many operations of kind op were let through.
func (f *FS) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// Total returns how many operations that match accepts were let through.
func (f *FS) Total(match func(Op) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for op, c := range f.counts {
		if match == nil || match(op) {
			n += c
		}
	}
	return n
}

// Inner returns the wrapped FS.
func (f *FS) Inner() segment.FS { return f.inner }

func (f *FS) check(op Op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkLocked(op, name)
}

func (f *FS) checkLocked(op Op, name string) error {
	if f.crashed {
		return fmt.Errorf("%s %s: %w", op, name, ErrCrashed)
	}
	if f.rule != nil {
		if err := f.rule(op, name); err != nil {
			if errors.Is(err, ErrCrashed) {
				f.crashed = true
			}
			return err
		}
	}
	f.counts[op]++
	return nil
}

// PowerLoss rewinds the files to their durable state (see the package
// documentation), then removes the rule and the crashed state. The counts
// are kept.
func (f *FS) PowerLoss() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.pending) - 1; i >= 0; i-- {
		e := f.pending[i]
		var err error
		switch e.kind {
		case "create":
			err = f.inner.Remove(e.to)
			delete(f.files, e.to)
		case "mkdir":
			err = f.inner.RemoveAll(e.to)
			for p := range f.files {
				if strings.HasPrefix(p, e.to+"/") {
					delete(f.files, p)
				}
			}
		case "rename":
			err = f.inner.Rename(e.to, e.from)
			if st := f.files[e.to]; st != nil {
				delete(f.files, e.to)
				f.files[e.from] = st
			}
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("faultfs: undoing %s of %s: %w", e.kind, e.to, err)
		}
	}
	f.pending = nil
	paths := make([]string, 0, len(f.files))
	for p := range f.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		st := f.files[p]
		if st.synced < st.size {
			if err := f.truncate(p, st.synced); err != nil {
				return err
			}
			st.size = st.synced
		}
	}
	f.rule, f.crashed = nil, false
	return nil
}

// truncate shortens the file at p to n bytes through the inner FS.
func (f *FS) truncate(p string, n int64) error {
	r, err := f.inner.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("faultfs: truncating %s: %w", p, err)
	}
	keep := make([]byte, n)
	_, err = io.ReadFull(r, keep)
	r.Close()
	if err != nil {
		return fmt.Errorf("faultfs: truncating %s: %w", p, err)
	}
	w, err := f.inner.Create(p)
	if err != nil {
		return fmt.Errorf("faultfs: truncating %s: %w", p, err)
	}
	if _, err := w.Write(keep); err != nil {
		w.Close()
		return fmt.Errorf("faultfs: truncating %s: %w", p, err)
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func (f *FS) exists(dir string) bool {
	_, err := f.inner.ReadDir(dir)
	return err == nil
}

// MkdirAll implements segment.FS.
func (f *FS) MkdirAll(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked(OpMkdir, dir); err != nil {
		return err
	}
	var created []string
	if dir != "." && dir != "" {
		for d := dir; d != "."; d = path.Dir(d) {
			if !f.exists(d) {
				created = append(created, d)
			}
		}
	}
	if err := f.inner.MkdirAll(dir); err != nil {
		return err
	}
	for i := len(created) - 1; i >= 0; i-- {
		f.pending = append(f.pending, entryOp{dir: path.Dir(created[i]), kind: "mkdir", to: created[i]})
	}
	return nil
}

// Create implements segment.FS.
func (f *FS) Create(name string) (segment.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked(OpCreate, name); err != nil {
		return nil, err
	}
	existed := false
	if r, err := f.inner.Open(name); err == nil {
		existed = true
		r.Close()
	}
	w, err := f.inner.Create(name)
	if err != nil {
		return nil, err
	}
	st := &fileState{}
	f.files[name] = st
	if !existed {
		f.pending = append(f.pending, entryOp{dir: path.Dir(name), kind: "create", to: name})
	}
	return &file{fs: f, name: name, w: w, st: st}, nil
}

// Open implements segment.FS.
func (f *FS) Open(name string) (segment.ReadFile, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	return f.inner.Open(name)
}

// Rename implements segment.FS.
func (f *FS) Rename(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked(OpRename, oldname+" -> "+newname); err != nil {
		return err
	}
	if err := f.inner.Rename(oldname, newname); err != nil {
		return err
	}
	if st := f.files[oldname]; st != nil {
		delete(f.files, oldname)
		f.files[newname] = st
	}
	// The rename is durable once both directories are synced; this model
	// records it against the new name's directory (the flush renames
	// within one directory).
	f.pending = append(f.pending, entryOp{dir: path.Dir(newname), kind: "rename", from: oldname, to: newname})
	return nil
}

func (f *FS) forget(name string) {
	delete(f.files, name)
	for p := range f.files {
		if strings.HasPrefix(p, name+"/") {
			delete(f.files, p)
		}
	}
	kept := f.pending[:0]
	for _, e := range f.pending {
		if e.to == name || strings.HasPrefix(e.to, name+"/") {
			continue
		}
		kept = append(kept, e)
	}
	f.pending = kept
}

// Remove implements segment.FS.
func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked(OpRemove, name); err != nil {
		return err
	}
	if err := f.inner.Remove(name); err != nil {
		return err
	}
	f.forget(name)
	return nil
}

// RemoveAll implements segment.FS.
func (f *FS) RemoveAll(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked(OpRemove, name); err != nil {
		return err
	}
	if err := f.inner.RemoveAll(name); err != nil {
		return err
	}
	f.forget(name)
	return nil
}

// ReadDir implements segment.FS.
func (f *FS) ReadDir(dir string) ([]fs.DirEntry, error) {
	if err := f.check(OpReadDir, dir); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(dir)
}

// SyncDir implements segment.FS.
func (f *FS) SyncDir(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkLocked(OpSyncDir, dir); err != nil {
		return err
	}
	if err := f.inner.SyncDir(dir); err != nil {
		return err
	}
	if dir == "" {
		dir = "."
	}
	kept := f.pending[:0]
	for _, e := range f.pending {
		if e.dir != dir {
			kept = append(kept, e)
		}
	}
	f.pending = kept
	return nil
}

type file struct {
	fs   *FS
	name string
	w    segment.File
	st   *fileState
}

func (w *file) Write(p []byte) (int, error) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if err := w.fs.checkLocked(OpWrite, w.name); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	w.st.size += int64(n)
	return n, err
}

func (w *file) Sync() error {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if err := w.fs.checkLocked(OpSync, w.name); err != nil {
		return err
	}
	if err := w.w.Sync(); err != nil {
		return err
	}
	w.st.synced = w.st.size
	return nil
}

func (w *file) Close() error {
	w.fs.mu.Lock()
	err := w.fs.checkLocked(OpClose, w.name)
	w.fs.mu.Unlock()
	// The descriptor is released whatever the rule says: a crashed
	// process holds no files either.
	cerr := w.w.Close()
	if err != nil {
		return err
	}
	return cerr
}
