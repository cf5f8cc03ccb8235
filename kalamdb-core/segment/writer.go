package segment

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// DefaultRowGroupRows is the row-group size of a segment: large enough for
// good compression and few footer entries, small enough that a key lookup
// decodes a bounded amount of data.
const DefaultRowGroupRows = 64 << 10

// Key-value metadata written in the footer of every segment.
const (
	MetaFormat     = "kalamdb.format"
	MetaTableID    = "kalamdb.table_id"
	MetaNamespace  = "kalamdb.namespace"
	MetaTable      = "kalamdb.table"
	MetaUser       = "kalamdb.user"
	MetaSegment    = "kalamdb.segment"
	MetaPrimaryKey = "kalamdb.primary_key"
)

// FormatVersion is the segment format written in MetaFormat.
const FormatVersion = 1

// ArrowType returns the Arrow type of a column type: int32, int64, float64,
// boolean, utf8, binary and timestamp[us, tz=UTC].
func ArrowType(t row.Type) (arrow.DataType, error) {
	switch t {
	case row.TypeInt32:
		return arrow.PrimitiveTypes.Int32, nil
	case row.TypeInt64:
		return arrow.PrimitiveTypes.Int64, nil
	case row.TypeFloat64:
		return arrow.PrimitiveTypes.Float64, nil
	case row.TypeBool:
		return arrow.FixedWidthTypes.Boolean, nil
	case row.TypeString:
		return arrow.BinaryTypes.String, nil
	case row.TypeBytes:
		return arrow.BinaryTypes.Binary, nil
	case row.TypeTimestamp:
		return timestampType, nil
	}
	return nil, fmt.Errorf("%w: no Arrow type for column type %s", core.ErrInvalidSchema, t)
}

var timestampType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// Schema returns the Arrow schema of t's segments: its columns in order,
// nullable as declared, then the system columns _seq (int64), _updated
// (timestamp[us, UTC]) and _deleted (boolean), none nullable.
func Schema(t *catalog.Table) (*arrow.Schema, error) {
	fields := make([]arrow.Field, 0, len(t.Columns)+3)
	for _, c := range t.Columns {
		typ, err := ArrowType(c.Type)
		if err != nil {
			return nil, err
		}
		fields = append(fields, arrow.Field{Name: c.Name, Type: typ, Nullable: c.Nullable})
	}
	fields = append(fields,
		arrow.Field{Name: catalog.ColumnSeq, Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: catalog.ColumnUpdated, Type: timestampType},
		arrow.Field{Name: catalog.ColumnDeleted, Type: arrow.FixedWidthTypes.Boolean},
	)
	return arrow.NewSchema(fields, nil), nil
}

// Meta identifies a segment; it is written in the footer's key-value
// metadata.
type Meta struct {
	TableID   uint64
	Namespace string
	Table     string
	// User is the owner of the rows of a user-table segment, "" for a
	// shared table.
	User    string
	Segment uint64
}

// WriteOptions tune a Writer. The zero value is the default.
type WriteOptions struct {
	// RowGroupRows is the most rows in a row group; 0 means
	// DefaultRowGroupRows.
	RowGroupRows int
	// Alloc allocates Arrow buffers; nil means the Go allocator.
	Alloc memory.Allocator
}

// Stats describe the rows a Writer wrote.
type Stats struct {
	// Rows is the number of row versions, tombstones included.
	Rows int64
	// Tombstones is the number of deleted versions among them.
	Tombstones int64
	// MinKey and MaxKey are the first and last keys.
	MinKey, MaxKey []byte
	// MinSeq and MaxSeq bound the _seq of the versions.
	MinSeq, MaxSeq int64
	// RowGroups is the number of row groups.
	RowGroups int
	// Bytes is the segment's length (set by Create).
	Bytes int64
}

// Writer writes one segment: row versions in strictly ascending key order,
// one per key, into a Parquet file with zstd compression and column
// statistics. It is for one goroutine.
//
// A failing io.Writer (a full disk, a read-only or broken file system)
// makes Append or Close return its error, never panic: the Parquet library
// writes to a sink that keeps the first error and reports success to the
// library from then on (see sink), and a panic of the library is returned
// as a *guard.PanicError. After an error the segment is lost: Close and
// throw the output away.
type Writer struct {
	t      *catalog.Table
	prefix []byte
	out    *sink
	fw     *pqarrow.FileWriter
	rb     *array.RecordBuilder
	rgRows int
	n      int
	stats  Stats
	last   []byte
	scr    []byte
	done   bool

	// Full row groups are encoded and compressed by a goroutine while the
	// next one is being filled (started at the first full group).
	groups  chan arrow.Record
	werr    chan error
	aborted atomic.Bool
}

// reserve sizes the builders for a full row group like rec, which was
// one: a row-group's worth of each column (and, for string and bytes
// columns, as many bytes as rec held) at once, instead of growing each
// buffer by doubling and copying.
func (w *Writer) reserve(rec arrow.Record) {
	for i := range w.rb.Fields() {
		b := w.rb.Field(i)
		b.Reserve(w.rgRows)
		if bb, ok := b.(interface{ ReserveData(int) }); ok {
			if col, ok := rec.Column(i).(interface{ ValueBytes() []byte }); ok {
				bb.ReserveData(len(col.ValueBytes()))
			}
		}
	}
}

// DictionaryPageLimit is the largest dictionary a column chunk of a segment
// gets: a column whose distinct values outgrow it within a row group is
// written in plain encoding from there on. Columns of few distinct values
// (up to about 16k numbers, or 128 KiB of strings, per row group) keep their
// dictionary; for columns of many, a dictionary would repeat most values
// once more, cost a hash-table insert per value, and compress worse than
// plain values under zstd (docs/flush.md gives the measured effect).
const DictionaryPageLimit = 128 << 10

// WriterProperties returns the Parquet properties segments of table t are
// written with: zstd, statistics on, rowGroupRows rows per row group (0
// means DefaultRowGroupRows), and dictionary encoding up to
// DictionaryPageLimit on every column but the primary key and _seq. Those
// two are unique within a segment, so a dictionary could never help them.
func WriterProperties(t *catalog.Table, rowGroupRows int, alloc memory.Allocator) *parquet.WriterProperties {
	if rowGroupRows <= 0 {
		rowGroupRows = DefaultRowGroupRows
	}
	if alloc == nil {
		alloc = memory.DefaultAllocator
	}
	return parquet.NewWriterProperties(
		parquet.WithAllocator(alloc),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithStats(true),
		parquet.WithDictionaryDefault(true),
		parquet.WithDictionaryFor(t.PrimaryKey, false),
		parquet.WithDictionaryFor(catalog.ColumnSeq, false),
		parquet.WithDictionaryPageSizeLimit(DictionaryPageLimit),
		parquet.WithMaxRowGroupLength(int64(rowGroupRows)),
		parquet.WithCreatedBy("kalamdb-go"),
	)
}

// sink is the io.Writer the Parquet library writes to. It passes bytes on
// until a write fails, then keeps that error and takes every later write
// without passing it on, as if it had succeeded.
//
// The library cannot survive an error of its output: a failed page write
// leaves the row group half written, and the library's own cleanup then
// reads pages it has already released, a nil-pointer panic (with Arrow
// v17, from pqarrow.FileWriter.Write through rowGroupWriter.Close); a
// failed write of the file's magic number panics outright. So it never
// sees one: the Writer checks the sink after each row group and at Close
// and returns the error itself. Only the goroutine writing to the library
// touches a sink at a time.
type sink struct {
	w   io.Writer
	err error
}

func (s *sink) Write(p []byte) (int, error) {
	if s.err != nil {
		return len(p), nil
	}
	n, err := s.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = err
	}
	return len(p), nil
}

// arrow runs a call into the Parquet library: a panic of the library comes
// back as a *guard.PanicError, and an error of the sink takes precedence
// over whatever the library made of the lost bytes. what names the step in
// the error.
func (w *Writer) arrow(what string, call func() error) error {
	err := guard.Run("segment: "+what, call)
	if w.out.err != nil {
		err = w.out.err
	}
	if err != nil {
		return fmt.Errorf("segment: %s: %w", what, err)
	}
	return nil
}

// NewWriter starts a segment of table t written to w. prefix is the key
// prefix of every row (the encoded user id of a user-table segment, empty
// for a shared table): Append checks that each key is prefix followed by the
// encoding of the row's primary key.
func NewWriter(w io.Writer, t *catalog.Table, prefix []byte, m Meta, opts WriteOptions) (*Writer, error) {
	if t.Type != catalog.UserTable && t.Type != catalog.SharedTable {
		return nil, fmt.Errorf("%w: %s is a %s table; only user and shared tables have segments", core.ErrWrongTableType, t.FullName(), t.Type)
	}
	sc, err := Schema(t)
	if err != nil {
		return nil, err
	}
	alloc := opts.Alloc
	if alloc == nil {
		alloc = memory.DefaultAllocator
	}
	rg := opts.RowGroupRows
	if rg <= 0 {
		rg = DefaultRowGroupRows
	}
	sw := &Writer{t: t, prefix: append([]byte(nil), prefix...), out: &sink{w: w}, rgRows: rg}
	err = sw.arrow("starting the Parquet writer", func() error {
		var err error
		sw.fw, err = pqarrow.NewFileWriter(sc, sw.out, WriterProperties(t, rg, alloc),
			pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(alloc)))
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, kv := range [][2]string{
		{MetaFormat, strconv.Itoa(FormatVersion)},
		{MetaTableID, strconv.FormatUint(m.TableID, 10)},
		{MetaNamespace, m.Namespace},
		{MetaTable, m.Table},
		{MetaUser, m.User},
		{MetaSegment, strconv.FormatUint(m.Segment, 10)},
		{MetaPrimaryKey, t.PrimaryKey},
	} {
		if err := sw.fw.AppendKeyValueMetadata(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	sw.rb = array.NewRecordBuilder(alloc, sc)
	return sw, nil
}

// Append adds the version r stored under key. Keys must be strictly
// ascending; r must be a valid version of the table's row (one value per
// column, each null only in a nullable column and else of the column's
// type). A bad version is an error and is not written.
func (w *Writer) Append(key []byte, r *row.Row) error {
	if w.done {
		return fmt.Errorf("%w: segment writer is closed", core.ErrInvalidArgument)
	}
	if w.last != nil && bytes.Compare(key, w.last) <= 0 {
		return fmt.Errorf("%w: segment keys out of order: %x after %x", core.ErrInvalidArgument, key, w.last)
	}
	if len(r.Values) != len(w.t.Columns) {
		return fmt.Errorf("%w: %s has %d columns, the version has %d values", core.ErrInvalidRow, w.t.FullName(), len(w.t.Columns), len(r.Values))
	}
	for i, c := range w.t.Columns {
		v := r.Values[i]
		if v.IsNull() {
			if !c.Nullable {
				return core.InvalidRow(c.Name, "is not nullable and the value is null")
			}
			continue
		}
		if v.Type() != c.Type {
			return core.InvalidRow(c.Name, "has type %s, the value is %s", c.Type, v.Type())
		}
	}
	var err error
	w.scr, err = w.t.AppendKey(append(w.scr[:0], w.prefix...), r.Values[w.t.PrimaryKeyIndex()])
	if err != nil {
		return err
	}
	if !bytes.Equal(w.scr, key) {
		return fmt.Errorf("%w: key %x does not match the row's primary key (%x)", core.ErrInvalidArgument, key, w.scr)
	}
	for i, c := range w.t.Columns {
		appendValue(w.rb.Field(i), c.Type, r.Values[i])
	}
	nc := len(w.t.Columns)
	w.rb.Field(nc).(*array.Int64Builder).Append(r.Seq)
	w.rb.Field(nc + 1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Updated))
	w.rb.Field(nc + 2).(*array.BooleanBuilder).Append(r.Deleted)

	s := &w.stats
	if s.Rows == 0 {
		s.MinKey = append([]byte(nil), key...)
		s.MinSeq, s.MaxSeq = r.Seq, r.Seq
	}
	s.MinSeq, s.MaxSeq = min(s.MinSeq, r.Seq), max(s.MaxSeq, r.Seq)
	s.Rows++
	if r.Deleted {
		s.Tombstones++
	}
	w.last = append(w.last[:0], key...)
	w.n++
	if w.n >= w.rgRows {
		return w.flushGroup()
	}
	return nil
}

func appendValue(b array.Builder, t row.Type, v row.Value) {
	if v.IsNull() {
		b.AppendNull()
		return
	}
	switch t {
	case row.TypeInt32:
		b.(*array.Int32Builder).Append(v.Int32())
	case row.TypeInt64:
		b.(*array.Int64Builder).Append(v.Int64())
	case row.TypeFloat64:
		b.(*array.Float64Builder).Append(v.Float64())
	case row.TypeBool:
		b.(*array.BooleanBuilder).Append(v.Bool())
	case row.TypeString:
		b.(*array.StringBuilder).BinaryBuilder.Append(view(v.Str()))
	case row.TypeBytes:
		b.(*array.BinaryBuilder).Append(view(v.BytesView()))
	case row.TypeTimestamp:
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(v.Micros()))
	}
}

// view returns the bytes of s without copying them, for a builder's Append,
// which copies its argument and never modifies it. (The builders' own
// string appends convert to []byte, a copy and, above 32 bytes, an
// allocation per value.)
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// flushGroup hands the rows appended so far, a row group, to the encoding
// goroutine (starting it on first use). It returns the goroutine's error
// if it already failed.
func (w *Writer) flushGroup() error {
	if w.n == 0 {
		return nil
	}
	rec := w.rb.NewRecord()
	if w.n == w.rgRows {
		w.reserve(rec)
	}
	w.n = 0
	w.stats.RowGroups++
	if w.groups == nil {
		w.groups, w.werr = make(chan arrow.Record, 1), make(chan error, 1)
		go w.encode(w.groups)
	}
	select {
	case err := <-w.werr:
		// The goroutine stopped on an error: report it (and keep it for
		// Close).
		rec.Release()
		w.werr <- err
		return err
	case w.groups <- rec:
		return nil
	}
}

// encode writes the row groups it receives until the channel is closed,
// then sends its first error (or nil). After an error it sends it at once,
// so that the next flushGroup can report it, and releases the row groups
// still coming without writing them.
func (w *Writer) encode(groups <-chan arrow.Record) {
	err := guard.Run("segment: encoding row groups", func() error {
		for rec := range groups {
			if w.aborted.Load() {
				rec.Release()
				return nil
			}
			err := w.arrow("writing a row group", func() error { return w.fw.Write(rec) })
			rec.Release()
			if err != nil {
				return err
			}
		}
		return nil
	})
	w.werr <- err
	for rec := range groups {
		rec.Release()
	}
}

// wait closes the encoding goroutine's channel and returns its error.
func (w *Writer) wait() error {
	if w.groups == nil {
		return nil
	}
	close(w.groups)
	err := <-w.werr
	w.groups = nil
	return err
}

// Rows returns the number of versions appended so far.
func (w *Writer) Rows() int64 { return w.stats.Rows }

// Close writes the last row group and the footer and returns what was
// written. The underlying writer is not closed (nor synced). The first
// error of the underlying writer, of any earlier call, is returned.
func (w *Writer) Close() (Stats, error) {
	if w.done {
		return Stats{}, fmt.Errorf("%w: segment writer is closed", core.ErrInvalidArgument)
	}
	w.done = true
	defer w.rb.Release()
	if w.groups == nil && w.n > 0 {
		// One row group: write it here, without a goroutine.
		rec := w.rb.NewRecord()
		err := w.arrow("writing a row group", func() error { return w.fw.Write(rec) })
		rec.Release()
		w.n = 0
		w.stats.RowGroups++
		if err != nil {
			return Stats{}, err
		}
	}
	err := w.flushGroup()
	if werr := w.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return Stats{}, err
	}
	if err := w.arrow("writing the footer", w.fw.Close); err != nil {
		return Stats{}, err
	}
	w.stats.MaxKey = append([]byte(nil), w.last...)
	return w.stats, nil
}

// abort ends a Writer whose segment is abandoned: the row groups being
// encoded are dropped and nothing more is written.
func (w *Writer) abort() {
	if w.done {
		return
	}
	w.done = true
	w.aborted.Store(true) // the encoder drops what it has not written yet
	_ = w.wait()
	w.rb.Release()
}
