package segment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"
)

// fullDisk accepts limit bytes, then fails like a full disk: a short
// write, then nothing.
type fullDisk struct {
	limit, written int
	failed         bool
	callsAfter     int // calls after the first failure
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if d.failed {
		d.callsAfter++
		return 0, syscall.ENOSPC
	}
	if d.written+len(p) <= d.limit {
		d.written += len(p)
		return len(p), nil
	}
	n := d.limit - d.written
	d.written, d.failed = d.limit, true
	return n, syscall.ENOSPC
}

// writeAll writes vs as one segment to w and returns the first error.
func writeAll(w io.Writer, tbl *catalog.Table, vs []version, rg int) error {
	sw, err := segment.NewWriter(w, tbl, nil, segment.Meta{TableID: tbl.ID, Segment: 1}, segment.WriteOptions{RowGroupRows: rg})
	if err != nil {
		return err
	}
	for i := range vs {
		if err := sw.Append(vs[i].key, &vs[i].r); err != nil {
			_, _ = sw.Close()
			return err
		}
	}
	_, err = sw.Close()
	return err
}

type countingWriter struct{ n int }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// The Parquet library panics when its output fails at some points (its
// cleanup after a failed page write reads released pages; a failed magic
// number panics outright). A Writer whose output fills up at any byte
// returns the output's error, not a panic nor another error, and stops
// writing to it after the failure.
func TestWriterReturnsTheErrorOfAFullDiskAtEveryByte(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	vs := versions(t, tbl, nil, 2000)
	var size countingWriter
	require.NoError(t, writeAll(&size, tbl, vs, 300))
	t.Logf("segment of %d bytes", size.n)
	limits := []int{0, 1, 2, 3, 4, 5, 8}
	for l := 9; l < size.n; l += max(1, size.n/150) {
		limits = append(limits, l)
	}
	limits = append(limits, size.n-1)
	for _, limit := range limits {
		d := &fullDisk{limit: limit}
		err := writeAll(d, tbl, vs, 300)
		require.Error(t, err, "disk full after %d bytes", limit)
		require.ErrorIs(t, err, syscall.ENOSPC, "disk full after %d bytes", limit)
		require.Nil(t, guard.Stack(err), "disk full after %d bytes: not a panic: %v", limit, err)
		require.Zero(t, d.callsAfter, "disk full after %d bytes: nothing written after the failure", limit)
	}
	require.NoError(t, writeAll(&fullDisk{limit: size.n}, tbl, vs, 300), "exactly enough space")
}

// bigVersions are versions whose string column holds 2 KiB of random
// letters, so that a segment outgrows Create's 1 MiB write buffer and the
// Parquet library writes to the file while it encodes.
func bigVersions(t testing.TB, tbl *catalog.Table, n int) []version {
	vs := versions(t, tbl, nil, n)
	rnd := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 2048)
	for i := range vs {
		for j := range b {
			b[j] = byte('a' + rnd.IntN(26))
		}
		vs[i].r.Values[4] = row.String(string(b))
	}
	return vs
}

// Create on a disk that fills up at each of its file operations (ENOSPC
// from there on, removals still working) fails with an error naming the
// file and wrapping ENOSPC, leaves no file behind, and succeeds once there
// is space.
func TestCreateOnAFullDiskAtEveryStep(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	vs := bigVersions(t, tbl, 700)
	spec := segment.Spec{Dir: "app/items", Name: segment.FileName(tbl.ID, 1), Table: tbl,
		Meta: segment.Meta{TableID: tbl.ID, Namespace: tbl.Namespace, Table: tbl.Name, Segment: 1}, Options: segment.WriteOptions{RowGroupRows: 200}}
	fill := func(w *segment.Writer) error {
		for i := range vs {
			if err := w.Append(vs[i].key, &vs[i].r); err != nil {
				return err
			}
		}
		return nil
	}
	clean := faultfs.New(segment.DirFS(t.TempDir()))
	_, err := segment.Create(context.Background(), segment.FSStore(clean, "test"), spec, fill)
	require.NoError(t, err)
	steps := clean.Total(faultfs.NeedsSpace)
	require.GreaterOrEqual(t, clean.Count(faultfs.OpWrite), 2, "the segment takes several writes")

	for _, cause := range []error{syscall.ENOSPC, syscall.EIO} {
		for at := 1; at <= steps; at++ {
			root := t.TempDir()
			fsys := faultfs.New(segment.DirFS(root))
			fsys.SetRule(faultfs.FailFrom(at, faultfs.NeedsSpace, cause))
			_, err := segment.Create(context.Background(), segment.FSStore(fsys, "test"), spec, fill)
			what := fmt.Sprintf("%v from step %d of %d", cause, at, steps)
			require.ErrorIs(t, err, cause, what)
			require.Nil(t, guard.Stack(err), "%s: not a panic: %v", what, err)
			assert.Contains(t, err.Error(), "segment: ", what)
			assert.Contains(t, err.Error(), "app", what)
			assertNoFiles(t, root)

			fsys.SetRule(nil)
			_, err = segment.Create(context.Background(), segment.FSStore(fsys, "test"), spec, fill)
			require.NoError(t, err, "%s, then space again", what)
			assertSameVersions(t, vs, readAll(t, fsys, spec))
		}
	}
}

// A panic in fill abandons the segment like an error does.
func TestCreateTurnsAPanicOfFillIntoAnError(t *testing.T) {
	tbl := newTable(t, catalog.SharedTable, row.TypeInt64)
	vs := versions(t, tbl, nil, 3000)
	root := t.TempDir()
	spec := segment.Spec{Dir: "app/items", Name: segment.FileName(tbl.ID, 1), Table: tbl, Options: segment.WriteOptions{RowGroupRows: 100}}
	_, err := segment.Create(context.Background(), segment.FSStore(segment.DirFS(root), "test"), spec, func(w *segment.Writer) error {
		for i := range vs {
			require.NoError(t, w.Append(vs[i].key, &vs[i].r))
		}
		panic(errors.New("fill broke"))
	})
	require.Error(t, err)
	assert.NotNil(t, guard.Stack(err))
	assert.Contains(t, err.Error(), "fill broke")
	assert.Contains(t, err.Error(), spec.Path())
	assertNoFiles(t, root)
}
