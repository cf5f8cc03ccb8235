package segment

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/apache/arrow/go/v17/parquet/schema"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// chunkRanges returns the byte ranges of the column chunks of row group i
// that readGroup reads (with keysOnly, those of the primary key, _seq and
// _deleted), in file order.
func chunkRanges(md *metadata.FileMetaData, t *catalog.Table, i int, keysOnly bool) [][2]int64 {
	rg := md.RowGroup(i)
	var out [][2]int64
	for leaf := range md.Schema.NumColumns() {
		if keysOnly {
			switch md.Schema.Column(leaf).Name() {
			case t.PrimaryKey, catalog.ColumnSeq, catalog.ColumnDeleted:
			default:
				continue
			}
		}
		cc, err := rg.ColumnChunk(leaf)
		if err != nil {
			continue
		}
		start := cc.DataPageOffset()
		if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < start {
			start = cc.DictionaryPageOffset()
		}
		if n := cc.TotalCompressedSize(); start >= 0 && n > 0 {
			out = append(out, [2]int64{start, n})
		}
	}
	return out
}

// readGroup decodes row group i with the Parquet column readers, straight
// into the RowGroup's slices (no Arrow arrays in between). With keysOnly it
// reads only the primary-key, _seq and _deleted columns.
func readGroup(ctx context.Context, r Ref, md *metadata.FileMetaData, t *catalog.Table, prefix []byte, i int, keysOnly bool) (g *RowGroup, err error) {
	path := r.Name
	if i < 0 || i >= len(md.RowGroups) {
		return nil, fmt.Errorf("%w: segment %s has %d row groups, not %d", core.ErrInvalidArgument, path, len(md.RowGroups), i+1)
	}
	obj, rd, f, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if p, ok := obj.(Prefetcher); ok {
		if err := p.Prefetch(ctx, chunkRanges(md, t, i, keysOnly)); err != nil {
			return nil, fmt.Errorf("segment: reading %s row group %d: %w", path, i, err)
		}
	}
	defer readFailure(rd, fmt.Sprintf("%s row group %d", path, i), &err)
	defer corruptOnPanic(path, &err)
	defer guard.Recover("segment: reading "+path, &err)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: segment %s row group %d: %s", core.ErrCorrupt, path, i, fmt.Sprintf(format, args...))
	}
	pr, err := file.NewParquetReader(f, file.WithMetadata(md), file.WithReadProps(parquet.NewReaderProperties(memory.DefaultAllocator)))
	if err != nil {
		return nil, bad("%v", err)
	}
	rgr := pr.RowGroup(i)
	rows := md.RowGroup(i).NumRows()
	if rows < 0 || rows > math.MaxInt32 {
		return nil, bad("%d rows", rows)
	}
	n := int(rows)
	g = &RowGroup{n: n, cols: make([]column, len(t.Columns)), keysOnly: keysOnly}
	for j := range g.cols {
		g.cols[j] = column{typ: t.Columns[j].Type, missing: true}
	}
	pk := t.PrimaryKeyIndex()
	var haveSeq, haveUpd, haveDel bool
	for leaf := range md.Schema.NumColumns() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("segment: reading %s: %w", path, err)
		}
		desc := md.Schema.Column(leaf)
		name := desc.Name()
		var want row.Type
		var target *column
		switch name {
		case catalog.ColumnSeq, catalog.ColumnDeleted:
			want = map[string]row.Type{catalog.ColumnSeq: row.TypeInt64, catalog.ColumnDeleted: row.TypeBool}[name]
		case catalog.ColumnUpdated:
			if keysOnly {
				continue
			}
			want = row.TypeTimestamp
		default:
			j, ok := t.ColumnIndex(name)
			if !ok || (keysOnly && j != pk) {
				continue
			}
			target = &g.cols[j]
			want = target.typ
		}
		if err := checkLeaf(desc, want); err != nil {
			return nil, bad("column %s: %v", name, err)
		}
		cr, err := rgr.Column(leaf)
		if err != nil {
			return nil, bad("column %s: %v", name, err)
		}
		var c column
		c.typ = want
		hint := 0
		if cc, err := md.RowGroup(i).ColumnChunk(leaf); err == nil {
			hint = int(min(cc.TotalUncompressedSize(), 1<<30))
		}
		if err := readLeaf(cr, desc.MaxDefinitionLevel(), n, hint, &c); err != nil {
			return nil, bad("column %s: %v", name, err)
		}
		if target != nil {
			*target = c
			g.size += int64(len(c.num))*8 + int64(len(c.off))*8 + int64(cap(c.data)) + int64(len(c.null))
			continue
		}
		if c.null != nil {
			return nil, bad("system column %s has nulls", name)
		}
		switch name {
		case catalog.ColumnSeq:
			g.seq, haveSeq = make([]int64, n), true
			for k, v := range c.num {
				g.seq[k] = int64(v)
			}
		case catalog.ColumnUpdated:
			g.upd, haveUpd = make([]int64, n), true
			for k, v := range c.num {
				g.upd[k] = int64(v)
			}
		case catalog.ColumnDeleted:
			g.del, haveDel = make([]bool, n), true
			for k, v := range c.num {
				g.del[k] = v != 0
			}
		}
	}
	if !haveSeq || !haveDel || (!keysOnly && !haveUpd) {
		return nil, bad("a system column (%s, %s, %s) is missing", catalog.ColumnSeq, catalog.ColumnUpdated, catalog.ColumnDeleted)
	}
	g.size += int64(n) * (8 + 8 + 1)
	if err := g.buildKeys(t, prefix); err != nil {
		return nil, bad("%v", err)
	}
	return g, nil
}

// checkLeaf checks that a Parquet column holds values of a column type.
func checkLeaf(desc *schema.Column, want row.Type) error {
	var phys parquet.Type
	switch want {
	case row.TypeInt32:
		phys = parquet.Types.Int32
	case row.TypeInt64, row.TypeTimestamp:
		phys = parquet.Types.Int64
	case row.TypeFloat64:
		phys = parquet.Types.Double
	case row.TypeBool:
		phys = parquet.Types.Boolean
	default:
		phys = parquet.Types.ByteArray
	}
	lt := desc.LogicalType()
	_, isTS := lt.(*schema.TimestampLogicalType)
	_, isString := lt.(schema.StringLogicalType)
	ok := desc.PhysicalType() == phys
	switch want {
	case row.TypeTimestamp:
		ok = ok && isTS && lt.(*schema.TimestampLogicalType).TimeUnit() == schema.TimeUnitMicros
	case row.TypeInt64:
		ok = ok && !isTS
	case row.TypeString:
		ok = ok && isString
	case row.TypeBytes:
		ok = ok && !isString
	}
	if !ok || desc.MaxRepetitionLevel() != 0 {
		return fmt.Errorf("has physical type %s (%s), the table says %s", desc.PhysicalType(), lt, want)
	}
	return nil
}

// readLeaf reads the n values of a column chunk into c: fixed-width values
// in c.num, strings and bytes in c.data and c.off, nulls in c.null (nil
// when there are none).
func readLeaf(cr file.ColumnChunkReader, maxDef int16, n int, sizeHint int, c *column) error {
	var defs []int16
	if maxDef > 0 {
		defs = make([]int16, n)
	}
	var dense int // values read (not counting nulls)
	read := 0
	// next reads the next batch with fn, which fills values from dense on.
	next := func(fn func(d []int16) (int64, int, error)) error {
		for read < n {
			var d []int16
			if defs != nil {
				d = defs[read:]
			}
			total, values, err := fn(d)
			if err != nil {
				return err
			}
			if total == 0 {
				return fmt.Errorf("has %d values for %d rows", read, n)
			}
			read += int(total)
			dense += values
		}
		return nil
	}
	var err error
	switch r := cr.(type) {
	case *file.Int32ColumnChunkReader:
		vals := make([]int32, n)
		err = next(func(d []int16) (int64, int, error) { return r.ReadBatch(int64(n-read), vals[dense:], d, nil) })
		c.num = make([]uint64, n)
		for k, v := range vals[:dense] {
			c.num[k] = uint64(int64(v))
		}
	case *file.Int64ColumnChunkReader:
		// int64 and uint64 share their layout: read straight into c.num.
		c.num = make([]uint64, n)
		vals := unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(c.num))), n)
		err = next(func(d []int16) (int64, int, error) { return r.ReadBatch(int64(n-read), vals[dense:], d, nil) })
	case *file.Float64ColumnChunkReader:
		c.num = make([]uint64, n)
		vals := unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(c.num))), n)
		err = next(func(d []int16) (int64, int, error) { return r.ReadBatch(int64(n-read), vals[dense:], d, nil) })
	case *file.BooleanColumnChunkReader:
		vals := make([]bool, n)
		err = next(func(d []int16) (int64, int, error) { return r.ReadBatch(int64(n-read), vals[dense:], d, nil) })
		c.num = make([]uint64, n)
		for k, v := range vals[:dense] {
			if v {
				c.num[k] = 1
			}
		}
	case *file.ByteArrayColumnChunkReader:
		// The values point into the reader's page buffers: copy each batch
		// before the next one. c.off holds the dense values' offsets until
		// nulls are spread below.
		vals := make([]parquet.ByteArray, min(n, 4096))
		c.off = make([]int64, n+1)
		err = next(func(d []int16) (int64, int, error) {
			total, values, err := r.ReadBatch(int64(min(n-read, len(vals))), vals, d, nil)
			size := len(c.data)
			for _, v := range vals[:values] {
				size += len(v)
			}
			if size > cap(c.data) {
				// Make room for this batch and, at its rate, for the
				// rows that follow, rather than growing by copies.
				want := size * (n + n/8) / (dense + values)
				c.data = slices.Grow(c.data, max(want, size)-len(c.data))
			}
			for k, v := range vals[:values] {
				c.data = append(c.data, v...)
				c.off[dense+k+1] = int64(len(c.data))
			}
			return total, values, err
		})
	default:
		return fmt.Errorf("unsupported column reader %T", cr)
	}
	if err != nil {
		return err
	}
	if read != n {
		return fmt.Errorf("has %d values for %d rows", read, n)
	}
	c.missing = false
	if defs == nil || dense == n {
		for _, d := range defs {
			if d != maxDef {
				return fmt.Errorf("bad definition level %d", d)
			}
		}
		if dense != n {
			return fmt.Errorf("has %d values for %d rows", dense, n)
		}
		return nil
	}
	// Spread the dense values over the rows, nulls where the definition
	// level is below the maximum.
	c.null = make([]bool, n)
	nonNull := 0
	for _, d := range defs {
		if d == maxDef {
			nonNull++
		}
	}
	if nonNull != dense {
		return fmt.Errorf("%d definition levels say a value, %d values were read", nonNull, dense)
	}
	if c.off != nil {
		// In place, from the end: the row ending after the k-th value
		// ends where that value does, and a null row is empty.
		k := dense
		for row := n - 1; row >= 0; row-- {
			c.off[row+1] = c.off[k]
			if defs[row] == maxDef {
				k--
			} else {
				c.null[row] = true
			}
		}
		return nil
	}
	// In place, from the end: value k moves to row >= k.
	k := dense - 1
	for row := n - 1; row >= 0; row-- {
		if defs[row] == maxDef {
			c.num[row] = c.num[k]
			k--
		} else {
			c.null[row] = true
			c.num[row] = 0
		}
	}
	return nil
}

// buildKeys computes the key of every version (prefix and encoded primary
// key) and checks that they strictly ascend.
func (g *RowGroup) buildKeys(t *catalog.Table, prefix []byte) error {
	pk := &g.cols[t.PrimaryKeyIndex()]
	if pk.missing {
		return fmt.Errorf("the primary-key column %s is missing", t.PrimaryKey)
	}
	n := g.n
	g.keyOff = make([]int32, n+1)
	g.keys = make([]byte, 0, n*(len(prefix)+10))
	var err error
	for i := range n {
		v := pk.value(i)
		if v.IsNull() {
			return fmt.Errorf("version %d has a null primary key", i)
		}
		start := len(g.keys)
		g.keys = append(g.keys, prefix...)
		if g.keys, err = t.AppendKey(g.keys, v); err != nil {
			return fmt.Errorf("version %d: %v", i, err)
		}
		if len(g.keys) > math.MaxInt32 {
			return fmt.Errorf("keys exceed 2 GiB")
		}
		g.keyOff[i+1] = int32(len(g.keys))
		if i > 0 && bytes.Compare(g.keys[g.keyOff[i-1]:start], g.keys[start:]) >= 0 {
			return fmt.Errorf("versions %d and %d are out of key order", i-1, i)
		}
	}
	g.size += int64(len(g.keys)) + int64(len(g.keyOff))*4
	return nil
}
