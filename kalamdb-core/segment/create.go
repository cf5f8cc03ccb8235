package segment

import (
	"bufio"
	"fmt"
	"path"
	"strings"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
)

// Spec says what segment file to create and where.
type Spec struct {
	// Dir is the directory of the segment (see TableDir and UserDir).
	Dir string
	// Name is the file name (see FileName); it must end with SegmentExt.
	Name string
	// Table is the table whose rows the segment holds.
	Table *catalog.Table
	// Prefix is the key prefix of every row (see NewWriter).
	Prefix []byte
	// Meta identifies the segment in its footer.
	Meta Meta
	// Options tune the writer.
	Options WriteOptions
	// DirReady says that Dir exists and its entry, and those of its
	// parents, are already durable: Create then skips MkdirAllDurable.
	DirReady bool
}

// Path returns Dir/Name.
func (s *Spec) Path() string { return path.Join(s.Dir, s.Name) }

// TempPath returns the path the segment is written to before its rename.
func (s *Spec) TempPath() string { return s.Path() + TempExt }

// Create writes a segment durably and atomically, in the order crash safety
// needs: it writes the rows that fill appends to a temporary file
// (Name+TempExt), syncs the file, renames it to its final name and syncs the
// directory. When Create returns nil the file is complete and durable under
// its final name; when it fails, it removes the temporary file (best
// effort: recovery removes what a crash leaves behind), and after a
// failed directory sync the renamed file too. It never leaves a partial
// file under the final name.
//
// Every failure of the file system (a full disk, a read-only directory, an
// I/O error on create, write, sync, close or rename) is an error naming the
// file and wrapping the file system's error, so errors.Is finds
// syscall.ENOSPC, for example. A panic of the Parquet library or of fill
// is returned as an error wrapping a *guard.PanicError, the file abandoned
// like after any other failure.
//
// fill may return an error to abandon the segment. A segment with no row is
// not created: Create reports Stats.Rows == 0 and writes nothing durable.
func Create(fsys FS, spec Spec, fill func(w *Writer) error) (Stats, error) {
	if !strings.HasSuffix(spec.Name, SegmentExt) || strings.Contains(spec.Name, "/") {
		return Stats{}, fmt.Errorf("%w: segment name %q must be one path element ending in %s", ErrBadPath, spec.Name, SegmentExt)
	}
	if err := CheckPath(spec.Path()); err != nil {
		return Stats{}, err
	}
	if !spec.DirReady {
		if err := MkdirAllDurable(fsys, spec.Dir); err != nil {
			return Stats{}, err
		}
	}
	tmp := spec.TempPath()
	f, err := fsys.Create(tmp)
	if err != nil {
		return Stats{}, fmt.Errorf("segment: creating %s: %w", tmp, err)
	}
	abandon := func(err error) (Stats, error) {
		_ = f.Close()
		_ = fsys.Remove(tmp)
		return Stats{}, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := NewWriter(bw, spec.Table, spec.Prefix, spec.Meta, spec.Options)
	if err != nil {
		return abandon(fmt.Errorf("segment: writing %s: %w", tmp, err))
	}
	if err := guard.Run("segment: filling "+tmp, func() error { return fill(w) }); err != nil {
		w.abort()
		return abandon(err)
	}
	st, err := w.Close()
	if err != nil {
		return abandon(fmt.Errorf("segment: writing %s: %w", tmp, err))
	}
	if st.Rows == 0 {
		return abandon(nil)
	}
	if err := bw.Flush(); err != nil {
		return abandon(fmt.Errorf("segment: writing %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return abandon(fmt.Errorf("segment: syncing %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		_ = fsys.Remove(tmp)
		return Stats{}, fmt.Errorf("segment: closing %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, spec.Path()); err != nil {
		_ = fsys.Remove(tmp)
		return Stats{}, fmt.Errorf("segment: renaming %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(spec.Dir); err != nil {
		// No manifest records the file yet, so it can go (on a full disk
		// it must: nothing else would free its space before a restart).
		// Should the removal fail, or a crash undo it, recovery removes
		// the unrecorded file.
		_ = fsys.Remove(spec.Path())
		return Stats{}, fmt.Errorf("segment: syncing directory %s: %w", spec.Dir, err)
	}
	return st, nil
}

// MkdirAllDurable creates dir and its missing parents and syncs every
// directory from dir's parent up to the root, so that the new entries
// survive a crash.
func MkdirAllDurable(fsys FS, dir string) error {
	if err := CheckPath(dir); err != nil {
		return err
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return fmt.Errorf("segment: creating directory %s: %w", dir, err)
	}
	for d := dir; ; {
		parent := path.Dir(d)
		if err := fsys.SyncDir(parent); err != nil {
			return fmt.Errorf("segment: creating directory %s: syncing directory %s: %w", dir, parent, err)
		}
		if parent == "." {
			return nil
		}
		d = parent
	}
}
