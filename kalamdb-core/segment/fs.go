package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// FS is the file system the cold tier writes and reads through: the seam
// that tests replace with a fault-injecting implementation (package
// faultfs). Paths are slash-separated and relative to the root of the FS;
// they never start with "/" and never contain "." or ".." elements, which
// an implementation rejects.
//
// The crash-safety of a flush rests on the durability points of this
// interface: data written to a File is durable after File.Sync, and the
// entries of a directory (files created, renamed or removed in it) are
// durable after SyncDir of that directory.
type FS interface {
	// MkdirAll creates dir and its missing parents.
	MkdirAll(dir string) error
	// Create creates name for writing, truncating it if it exists.
	Create(name string) (File, error)
	// Open opens name for reading.
	Open(name string) (ReadFile, error)
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// Remove removes a file or an empty directory. Removing a missing
	// path fails with an error that wraps fs.ErrNotExist.
	Remove(name string) error
	// RemoveAll removes name and everything below it; a missing name is
	// not an error.
	RemoveAll(name string) error
	// ReadDir lists dir sorted by name. A missing dir fails with an error
	// that wraps fs.ErrNotExist.
	ReadDir(dir string) ([]fs.DirEntry, error)
	// SyncDir makes the entries of dir durable.
	SyncDir(dir string) error
}

// File is a file open for writing.
type File interface {
	io.Writer
	// Sync makes the data written so far durable.
	Sync() error
	// Close closes the file.
	Close() error
}

// ReadFile is a file open for reading: what the Parquet reader needs.
type ReadFile interface {
	io.Reader
	io.ReaderAt
	io.Seeker
	// Close closes the file.
	Close() error
}

// ErrBadPath reports a path that is absolute, empty or contains "." or ".."
// elements.
var ErrBadPath = errors.New("segment: bad path")

// CheckPath validates a path of an FS: relative, slash-separated, clean and
// without "." or ".." elements.
func CheckPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || strings.Contains(p, "\\") {
		return fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("%w: %q has an empty, \".\" or \"..\" element", ErrBadPath, p)
		}
	}
	return nil
}

// DirFS returns the FS of the operating system rooted at dir, which is
// created if missing when the first directory is made.
func DirFS(dir string) FS { return &osFS{root: dir} }

type osFS struct{ root string }

func (o *osFS) path(p string) (string, error) {
	if err := CheckPath(p); err != nil {
		return "", err
	}
	return filepath.Join(o.root, filepath.FromSlash(p)), nil
}

// dirPath is path for directories, which may also be the root ".".
func (o *osFS) dirPath(p string) (string, error) {
	if p == "." || p == "" {
		return o.root, nil
	}
	return o.path(p)
}

func (o *osFS) MkdirAll(dir string) error {
	p, err := o.dirPath(dir)
	if err != nil {
		return err
	}
	return os.MkdirAll(p, 0o700)
}

func (o *osFS) Create(name string) (File, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, err
	}
	return os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
}

func (o *osFS) Open(name string) (ReadFile, error) {
	p, err := o.path(name)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (o *osFS) Rename(oldname, newname string) error {
	a, err := o.path(oldname)
	if err != nil {
		return err
	}
	b, err := o.path(newname)
	if err != nil {
		return err
	}
	return os.Rename(a, b)
}

func (o *osFS) Remove(name string) error {
	p, err := o.path(name)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

func (o *osFS) RemoveAll(name string) error {
	p, err := o.path(name)
	if err != nil {
		return err
	}
	return os.RemoveAll(p)
}

func (o *osFS) ReadDir(dir string) ([]fs.DirEntry, error) {
	p, err := o.dirPath(dir)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(p)
}

func (o *osFS) SyncDir(dir string) error {
	p, err := o.dirPath(dir)
	if err != nil {
		return err
	}
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// parentDir returns the directory of a path of an FS ("." for a top-level
// name).
func parentDir(p string) string { return path.Dir(p) }
