package segment

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
)

// Spec says what segment to create and where.
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
}

// Path returns Dir/Name.
func (s *Spec) Path() string { return path.Join(s.Dir, s.Name) }

// Create writes a segment to st, whole or not at all: it writes the rows
// that fill appends to an upload of the segment and commits it (on a local
// store: a temporary file, fsync, rename, directory fsync). When Create
// returns nil the segment is complete and durable under its name; when it
// fails, it aborts the upload and nothing is left under the name (a local
// store may leave a temporary file after a crash, which recovery removes).
//
// Every failure of the store (a full disk, a read-only directory, an
// unreachable object store) is an error naming the segment and wrapping
// the store's error, so errors.Is finds syscall.ENOSPC, for example. A
// panic of the Parquet library or of fill is returned as an error wrapping
// a *guard.PanicError, the upload abandoned like after any other failure.
//
// fill may return an error to abandon the segment. A segment with no row is
// not created: Create reports Stats.Rows == 0 and leaves nothing.
func Create(ctx context.Context, st Store, spec Spec, fill func(w *Writer) error) (Stats, error) {
	if !strings.HasSuffix(spec.Name, SegmentExt) || strings.Contains(spec.Name, "/") {
		return Stats{}, fmt.Errorf("%w: segment name %q must be one path element ending in %s", ErrBadPath, spec.Name, SegmentExt)
	}
	if err := CheckPath(spec.Dir); err != nil {
		return Stats{}, err
	}
	name := spec.Path()
	up, err := st.Create(ctx, name)
	if err != nil {
		return Stats{}, err
	}
	abandon := func(err error) (Stats, error) {
		up.Abort()
		return Stats{}, err
	}
	cw := &countingWriter{w: up}
	bw := bufio.NewWriterSize(cw, 1<<20)
	w, err := NewWriter(bw, spec.Table, spec.Prefix, spec.Meta, spec.Options)
	if err != nil {
		return abandon(fmt.Errorf("segment: writing %s: %w", name, err))
	}
	if err := guard.Run("segment: filling "+name, func() error { return fill(w) }); err != nil {
		w.abort()
		return abandon(err)
	}
	stats, err := w.Close()
	if err != nil {
		return abandon(fmt.Errorf("segment: writing %s: %w", name, err))
	}
	if stats.Rows == 0 {
		return abandon(nil)
	}
	if err := bw.Flush(); err != nil {
		return abandon(fmt.Errorf("segment: writing %s: %w", name, err))
	}
	if err := up.Commit(); err != nil {
		up.Abort()
		return Stats{}, err
	}
	stats.Bytes = cw.n
	return stats, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
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
