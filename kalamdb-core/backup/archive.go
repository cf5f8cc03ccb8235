package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// A backup is a set of named files (docs/backup.md). It lives in a
// directory, in one .tar.gz file, or in an object store; sink writes one and
// source reads one.

// sink is where a backup is written.
type sink interface {
	// put writes file name; size is its length when known, else -1.
	put(ctx context.Context, name string, size int64, write func(io.Writer) error) error
	// close finishes the backup; abort gives it up.
	close() error
	abort()
	String() string
}

// source is a backup being read.
type source interface {
	// index reads and decodes the index.
	index(ctx context.Context) (*Index, error)
	// walk calls fn for each of names, in the order the backup stores
	// them (a store: the order of names; a .tar.gz: the archive's),
	// with the file's bytes. A name the backup lacks fails with an error
	// naming it; the index and files not in names are skipped.
	walk(ctx context.Context, names []string, fn func(name string, r io.Reader) error) error
	close() error
	String() string
}

// isArchive reports whether loc names a .tar.gz file.
func isArchive(loc string) bool {
	return strings.HasSuffix(loc, ".tar.gz") || strings.HasSuffix(loc, ".tgz")
}

// storeOf returns the segment.Store of a directory or object-store
// location, and what closes it.
func storeOf(ctx context.Context, loc string, objects ObjectStores) (segment.Store, func() error, error) {
	if u, err := url.Parse(loc); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		if u.Scheme == "file" {
			dir := u.Host + u.Path
			if u.Opaque != "" {
				dir = u.Opaque
			}
			return dirStore(dir), func() error { return nil }, nil
		}
		if objects == nil {
			u.User, u.RawQuery = nil, ""
			return nil, nil, fmt.Errorf("%s: this program opens no object-store URLs; give a directory, a .tar.gz file or a file:// URL", u)
		}
		return objects(ctx, loc)
	}
	return dirStore(loc), func() error { return nil }, nil
}

// ObjectStores opens the object store of a URL (s3://, gs://, azblob://)
// as a segment.Store, and returns what closes it; package objstore's
// Open can make one. A program that leaves Options.ObjectStores nil takes no
// object-store URLs, and does not link their clients.
type ObjectStores func(ctx context.Context, url string) (segment.Store, func() error, error)

func dirStore(dir string) segment.Store {
	return segment.FSStore(segment.DirFS(dir), dir)
}

// openSink opens loc for a new backup; a backup already there is refused.
// Its errors wrap ErrDestination.
func openSink(ctx context.Context, loc string, objects ObjectStores) (sink, error) {
	sk, err := openSinkAt(ctx, loc, objects)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDestination, err)
	}
	return sk, nil
}

// ErrDestination is wrapped by the errors of a backup destination that
// cannot be used: not empty, not writable, not reachable.
var ErrDestination = errors.New("backup destination unusable")

func openSinkAt(ctx context.Context, loc string, objects ObjectStores) (sink, error) {
	if isArchive(loc) {
		f, err := os.OpenFile(loc, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", loc, err)
		}
		gz := gzip.NewWriter(f)
		return &tarSink{f: f, gz: gz, tw: tar.NewWriter(gz), path: loc}, nil
	}
	if !hasScheme(loc) {
		if err := os.MkdirAll(loc, 0o700); err != nil {
			return nil, err
		}
	}
	st, closeFn, err := storeOf(ctx, loc, objects)
	if err != nil {
		return nil, err
	}
	found := ""
	err = st.List(ctx, "", func(o segment.ObjectInfo) error {
		found = o.Name
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) && !errors.Is(err, fs.ErrNotExist) {
		_ = closeFn()
		return nil, fmt.Errorf("listing %s: %w", st, err)
	}
	if found != "" {
		_ = closeFn()
		return nil, fmt.Errorf("%s is not empty (it holds %s); a backup goes to an empty directory or object-store prefix, or to a new .tar.gz file", st, found)
	}
	return &storeSink{st: st, closeFn: closeFn}, nil
}

var errStop = errors.New("stop")

// storeSink writes a backup's files as objects of a segment.Store (a
// directory or an object store): each one visible only once whole.
type storeSink struct {
	st      segment.Store
	closeFn func() error
}

func (s *storeSink) String() string { return s.st.String() }

func (s *storeSink) put(ctx context.Context, name string, _ int64, write func(io.Writer) error) error {
	up, err := s.st.Create(ctx, name)
	if err != nil {
		return fmt.Errorf("backup: writing %s to %s: %w", name, s.st, err)
	}
	if err := write(up); err != nil {
		up.Abort()
		return err
	}
	if err := up.Commit(); err != nil {
		return fmt.Errorf("backup: writing %s to %s: %w", name, s.st, err)
	}
	return nil
}

func (s *storeSink) close() error { return s.closeFn() }
func (s *storeSink) abort()       { _ = s.closeFn() }

// tarSink writes a backup as a gzip-compressed tar file. A file of unknown
// size is spooled to a temporary file first, since a tar header holds the
// size.
type tarSink struct {
	f    *os.File
	gz   *gzip.Writer
	tw   *tar.Writer
	path string
}

func (s *tarSink) String() string { return s.path }

func (s *tarSink) put(_ context.Context, name string, size int64, write func(io.Writer) error) error {
	if size >= 0 {
		if err := s.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
			return fmt.Errorf("backup: writing %s: %w", s.path, err)
		}
		return write(s.tw)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".kalamdb-backup-spool-*")
	if err != nil {
		return fmt.Errorf("backup: spooling %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := write(tmp); err != nil {
		return err
	}
	n, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := s.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: n, ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("backup: writing %s: %w", s.path, err)
	}
	if _, err := io.Copy(s.tw, tmp); err != nil {
		return fmt.Errorf("backup: writing %s: %w", s.path, err)
	}
	return nil
}

func (s *tarSink) close() error {
	err := errors.Join(s.tw.Close(), s.gz.Close(), s.f.Sync(), s.f.Close())
	if err != nil {
		_ = os.Remove(s.path)
		return fmt.Errorf("backup: finishing %s: %w", s.path, err)
	}
	return nil
}

func (s *tarSink) abort() {
	_ = s.f.Close()
	_ = os.Remove(s.path)
}

// openSource opens the backup at loc.
func openSource(ctx context.Context, loc string, objects ObjectStores) (source, error) {
	if isArchive(loc) {
		if _, err := os.Stat(loc); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		return &tarSource{path: loc}, nil
	}
	st, closeFn, err := storeOf(ctx, loc, objects)
	if err != nil {
		return nil, err
	}
	return &storeSource{st: st, closeFn: closeFn}, nil
}

// decodeIndex reads the index from r.
func decodeIndex(r io.Reader) (*Index, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<30))
	if err != nil {
		return nil, err
	}
	return parseIndex(data)
}

type storeSource struct {
	st      segment.Store
	closeFn func() error
}

func (s *storeSource) String() string { return s.st.String() }
func (s *storeSource) close() error   { return s.closeFn() }

func (s *storeSource) open(ctx context.Context, name string) (io.Reader, func() error, error) {
	obj, err := s.st.Open(ctx, name, -1)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &CorruptError{File: name, Msg: fmt.Sprintf("missing from %s", s.st)}
		}
		return nil, nil, fmt.Errorf("backup: opening %s in %s: %w", name, s.st, err)
	}
	return io.NewSectionReader(obj, 0, obj.Size()), obj.Close, nil
}

func (s *storeSource) index(ctx context.Context) (*Index, error) {
	r, closeFn, err := s.open(ctx, IndexName)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("backup: %s has no %s: it is not a backup, or one that did not finish", s.st, IndexName)
		}
		return nil, err
	}
	defer closeFn()
	idx, err := decodeIndex(r)
	if err != nil {
		return nil, fmt.Errorf("backup: %s in %s: %w", IndexName, s.st, err)
	}
	return idx, nil
}

func (s *storeSource) walk(ctx context.Context, names []string, fn func(string, io.Reader) error) error {
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, closeFn, err := s.open(ctx, name)
		if err != nil {
			return err
		}
		err = fn(name, r)
		if cerr := closeFn(); err == nil && cerr != nil {
			err = fmt.Errorf("backup: reading %s in %s: %w", name, s.st, cerr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// tarSource reads a .tar.gz backup sequentially; each walk reads the file
// once more.
type tarSource struct {
	path string
}

func (s *tarSource) String() string { return s.path }
func (s *tarSource) close() error   { return nil }

// offsetReader counts the compressed bytes read, for error messages.
type offsetReader struct {
	r io.Reader
	n int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.n += int64(n)
	return n, err
}

// each calls fn for every regular file of the archive, in order.
func (s *tarSource) each(ctx context.Context, fn func(name string, r io.Reader) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	or := &offsetReader{r: f}
	gz, err := gzip.NewReader(or)
	if err != nil {
		return &CorruptError{File: s.path, Offset: 0, Msg: fmt.Sprintf("not a gzip file: %v", err)}
	}
	tr := tar.NewReader(gz)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &CorruptError{File: s.path, Offset: or.n, Msg: fmt.Sprintf("the archive is damaged or truncated (compressed offset): %v", err)}
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		er := &archiveEntry{r: tr, or: or, path: s.path}
		if err := fn(h.Name, er); err != nil {
			return err
		}
		if er.err != nil {
			return er.err
		}
	}
}

// archiveEntry reads one file of an archive and turns a damaged archive
// into a CorruptError naming the archive and the compressed offset.
type archiveEntry struct {
	r    io.Reader
	or   *offsetReader
	path string
	err  error
}

func (e *archiveEntry) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = &CorruptError{File: e.path, Offset: e.or.n, Msg: fmt.Sprintf("the archive is damaged or truncated (compressed offset): %v", err)}
		return n, e.err
	}
	return n, err
}

func (s *tarSource) index(ctx context.Context) (*Index, error) {
	var idx *Index
	err := s.each(ctx, func(name string, r io.Reader) error {
		if name != IndexName {
			return nil
		}
		var err error
		if idx, err = decodeIndex(r); err != nil {
			return fmt.Errorf("backup: %s in %s: %w", IndexName, s.path, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if idx == nil {
		return nil, fmt.Errorf("backup: %s has no %s: it is not a backup, or one that did not finish", s.path, IndexName)
	}
	return idx, nil
}

func (s *tarSource) walk(ctx context.Context, names []string, fn func(string, io.Reader) error) error {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	err := s.each(ctx, func(name string, r io.Reader) error {
		if !want[name] {
			return nil
		}
		delete(want, name)
		return fn(name, r)
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		if want[n] {
			return &CorruptError{File: n, Msg: fmt.Sprintf("missing from %s", s.path)}
		}
	}
	return nil
}
