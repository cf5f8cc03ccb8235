// Package flushtest holds the benchmarks of the cold tier, runnable on any
// StorageBackend as the hot buffer: kalamdb-core runs them on the memory
// backend, and the root module on RocksDB.
//
//	func BenchmarkFlush(b *testing.B) {
//		flushtest.Bench(b, flushtest.Harness{Name: "memory", New: func(testing.TB) store.StorageBackend { return memory.New() }})
//	}
package flushtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// Harness says how to get a fresh, empty backend for the hot buffer.
type Harness struct {
	Name string
	New  func(tb testing.TB) store.StorageBackend
	// Reopen, when set, closes a backend that New returned and opens its
	// data again. The flush benchmark calls it between the inserts and
	// the timed flush, so that an engine's background work caused by the
	// inserts (RocksDB's memtable flushes and compactions, which Close
	// waits for) is over before the timer starts and is not counted as
	// the flush's.
	Reopen func(tb testing.TB, b store.StorageBackend) store.StorageBackend
	// Segments, when set, returns a new, empty Store for the segments of
	// a Manager (an object store behind a disk cache, say); without it
	// they are files in a temporary directory.
	Segments func(tb testing.TB) segment.Store
}

// options returns the Options of a Manager of h: a new place for its
// segments, with opts's other settings.
func (h Harness) options(tb testing.TB, opts flush.Options) flush.Options {
	if h.Segments != nil {
		opts.Store = h.Segments(tb)
	} else {
		opts.Dir = tb.TempDir()
	}
	return opts
}

// FlushRows is the size of the flush benchmark: 1M rows of a 6-column
// table.
const FlushRows = 1_000_000

// Merged-read shape: 20 segments of 10,000 rows.
const (
	ReadSegments    = 20
	ReadSegmentRows = 10_000
)

const ns = "bench"

// Columns is the 6-column table of the benchmarks.
func Columns() []catalog.Column {
	return []catalog.Column{
		{Name: "id", Type: row.TypeInt64},
		{Name: "name", Type: row.TypeString},
		{Name: "score", Type: row.TypeFloat64},
		{Name: "active", Type: row.TypeBool},
		{Name: "created", Type: row.TypeTimestamp},
		{Name: "payload", Type: row.TypeBytes, Nullable: true},
	}
}

var payload = func() []byte {
	p := make([]byte, 64)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}()

func name(id int64) string { return fmt.Sprintf("name-%010d", id%100_000) }

// Row returns the values of row id.
func Row(id int64) []row.Value {
	return []row.Value{row.Int64(id), row.String(name(id)), row.Float64(float64(id) * 0.5),
		row.Bool(id%2 == 0), row.TimestampMicros(1_700_000_000_000_000 + id), row.Bytes(payload)}
}

// Bench runs the cold-tier benchmarks:
//
//   - Flush/raw-pqarrow/{stock,reuse}-zstd: the ceiling, pqarrow writing
//     the same 1M rows from Go slices to a file (and fsyncing it), with the
//     Parquet library's zstd codec and with the encoder-reusing one;
//   - Flush/<backend>: a flush of 1M buffered rows of a shared table
//     (reading the buffer, writing and fsyncing the segment, committing the
//     manifest and deleting the buffered versions);
//   - MergedRead/<layout>/<cache>/scan: reading every row, in primary-key
//     order, through the table store's Scan (pages of tables.MaxLimit rows),
//     of a table whose rows are in 20 segments of 10,000 rows, with disjoint
//     or interleaved key ranges, or interleaved and then compacted into one
//     segment, with the row-group cache off (each read decodes every file;
//     footers stay cached) or on;
//   - MergedRead/<layout>/<cache>/source: the same rows through the cold
//     tier's merged iterator alone, decoding each version into a reused
//     row (the cold tier's own cost, without the page the store builds);
//   - MergedRead/buffer-only/scan, for reference: the same 200,000 rows read
//     through Scan from the buffer alone;
//   - Compact: Manager.Compact of the interleaved layout's 20 segments into
//     one.
//
// Each reports rows/s.
func Bench(b *testing.B, h Harness) {
	b.Run("Flush", func(b *testing.B) {
		for _, stock := range []bool{true, false} {
			codec := map[bool]string{true: "stock-zstd", false: "reuse-zstd"}[stock]
			b.Run("raw-pqarrow/"+codec, func(b *testing.B) {
				segment.UseStockZstd(stock)
				defer segment.UseStockZstd(false)
				benchRawWrite(b, h)
			})
		}
		b.Run(h.Name, func(b *testing.B) { benchFlush(b, h) })
	})
	b.Run("MergedRead", func(b *testing.B) {
		b.Run("buffer-only/scan", func(b *testing.B) { benchMergedRead(b, h, "buffer", false, false) })
		for _, layout := range []string{"disjoint", "interleaved", "compacted"} {
			for _, cache := range []string{"footers-only", "row-groups"} {
				for _, how := range []string{"scan", "source"} {
					b.Run(layout+"/"+cache+"/"+how, func(b *testing.B) {
						benchMergedRead(b, h, layout, cache == "row-groups", how == "source")
					})
				}
			}
		}
	})
	b.Run("Compact", func(b *testing.B) { benchCompact(b, h) })
}

func reportRows(b *testing.B, rows int) {
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// benchRawWrite writes FlushRows rows with pqarrow alone.
func benchRawWrite(b *testing.B, h Harness) {
	t := mustTable(b, h)
	sc, err := segment.Schema(t)
	require.NoError(b, err)
	ids := make([]int64, FlushRows)
	for i := range ids {
		ids[i] = int64(i)
	}
	dir := b.TempDir()
	alloc := memory.DefaultAllocator
	var cpu cpuMeter
	b.ReportAllocs()
	b.ResetTimer()
	cpu.resume()
	for i := 0; i < b.N; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("raw-%d.parquet", i)))
		require.NoError(b, err)
		bw := bufio.NewWriterSize(f, 1<<20)
		fw, err := pqarrow.NewFileWriter(sc, bw, segment.WriterProperties(t, 0, alloc),
			pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(alloc)))
		require.NoError(b, err)
		rb := array.NewRecordBuilder(alloc, sc)
		for start := 0; start < FlushRows; start += segment.DefaultRowGroupRows {
			end := min(start+segment.DefaultRowGroupRows, FlushRows)
			for _, id := range ids[start:end] {
				rb.Field(0).(*array.Int64Builder).Append(id)
				rb.Field(1).(*array.StringBuilder).Append(name(id))
				rb.Field(2).(*array.Float64Builder).Append(float64(id) * 0.5)
				rb.Field(3).(*array.BooleanBuilder).Append(id%2 == 0)
				rb.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + id))
				rb.Field(5).(*array.BinaryBuilder).Append(payload)
				rb.Field(6).(*array.Int64Builder).Append(id + 1)
				rb.Field(7).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000))
				rb.Field(8).(*array.BooleanBuilder).Append(false)
			}
			rec := rb.NewRecord()
			require.NoError(b, fw.Write(rec))
			rec.Release()
		}
		rb.Release()
		require.NoError(b, fw.Close())
		require.NoError(b, bw.Flush())
		require.NoError(b, f.Sync())
		require.NoError(b, f.Close())
	}
	b.StopTimer()
	cpu.report(b)
	reportRows(b, FlushRows)
}

// mustTable returns a table definition of the benchmark's shape.
func mustTable(b testing.TB, h Harness) *catalog.Table {
	backend := h.New(b)
	b.Cleanup(func() { _ = backend.Close() })
	m, err := flush.Open(context.Background(), backend, flush.Options{Dir: b.TempDir()})
	require.NoError(b, err)
	return createTable(b, m, "shape", catalog.SharedTable)
}

func createTable(b testing.TB, m *flush.Manager, tbl string, typ catalog.TableType) *catalog.Table {
	ctx := context.Background()
	if _, err := m.DB().Catalog().Namespace(ns); err != nil {
		_, err := m.DB().Catalog().CreateNamespace(ctx, ns)
		require.NoError(b, err)
	}
	t, err := m.DB().Catalog().CreateTable(ctx, catalog.Table{Namespace: ns, Name: tbl, Type: typ, PrimaryKey: "id",
		Columns: Columns(), Flush: catalog.FlushPolicy{RowLimit: 1 << 40}})
	require.NoError(b, err)
	return t
}

// insert adds rows ids to a shared table, in batches.
func insert(b testing.TB, s *tables.SharedTableStore, ids []int64) {
	ctx := context.Background()
	batch := make([][]row.Value, 0, 1000)
	for i, id := range ids {
		batch = append(batch, Row(id))
		if len(batch) == cap(batch) || i == len(ids)-1 {
			_, err := s.Insert(ctx, batch...)
			require.NoError(b, err)
			batch = batch[:0]
		}
	}
}

func benchFlush(b *testing.B, h Harness) {
	ctx := context.Background()
	ids := make([]int64, FlushRows)
	for i := range ids {
		ids[i] = int64(i)
	}
	var cpu cpuMeter
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		backend := h.New(b)
		opts := h.options(b, flush.Options{})
		m, err := flush.Open(ctx, backend, opts)
		require.NoError(b, err)
		createTable(b, m, "items", catalog.SharedTable)
		s, err := m.DB().Shared(ctx, ns, "items")
		require.NoError(b, err)
		insert(b, s, ids)
		if h.Reopen != nil {
			backend = h.Reopen(b, backend)
			m, err = flush.Open(ctx, backend, opts)
			require.NoError(b, err)
		}
		b.StartTimer()
		cpu.resume()
		res, err := m.Flush(ctx, ns, "items")
		cpu.pause()
		b.StopTimer()
		require.NoError(b, err)
		require.EqualValues(b, FlushRows, res.Rows)
		require.EqualValues(b, FlushRows, res.Removed)
		require.NoError(b, backend.Close())
		b.StartTimer()
	}
	b.StopTimer()
	cpu.report(b)
	reportRows(b, FlushRows)
}

func benchMergedRead(b *testing.B, h Harness, layout string, rowGroupCache, source bool) {
	ctx := context.Background()
	backend := h.New(b)
	b.Cleanup(func() { _ = backend.Close() })
	opts := h.options(b, flush.Options{RowGroupCacheBytes: -1})
	if rowGroupCache {
		opts.RowGroupCacheBytes = 1 << 30
	}
	m, err := flush.Open(ctx, backend, opts)
	require.NoError(b, err)
	tbl := createTable(b, m, "items", catalog.SharedTable)
	s, err := m.DB().Shared(ctx, ns, "items")
	require.NoError(b, err)
	ids := make([]int64, ReadSegmentRows)
	for seg := int64(0); seg < ReadSegments; seg++ {
		for i := range ids {
			if layout == "disjoint" || layout == "buffer" {
				ids[i] = seg*ReadSegmentRows + int64(i)
			} else {
				ids[i] = int64(i)*ReadSegments + seg
			}
		}
		insert(b, s, ids)
		if layout == "buffer" {
			continue
		}
		res, err := m.Flush(ctx, ns, "items")
		require.NoError(b, err)
		require.Len(b, res.Files, 1)
	}
	if layout == "compacted" {
		res, err := m.Compact(ctx, ns, "items")
		require.NoError(b, err)
		require.Equal(b, ReadSegments, res.Merged)
	}
	const total = ReadSegments * ReadSegmentRows
	cold, err := m.ColdTier().ColdSource(tbl)
	require.NoError(b, err)
	var r row.Row
	readSource := func() {
		it, err := cold.Scan(ctx, nil, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for it.Next() {
			if err := it.Row(&r); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if err := it.Close(); err != nil {
			b.Fatal(err)
		}
		if n != total {
			b.Fatalf("read %d versions, want %d", n, total)
		}
	}
	readAll := func() {
		n := 0
		opts := tables.ScanOptions{Limit: tables.MaxLimit}
		for {
			page, err := s.Scan(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			n += len(page.Rows)
			if !page.More {
				break
			}
			opts.After = page.Next
		}
		if n != total {
			b.Fatalf("read %d rows, want %d", n, total)
		}
	}
	if source {
		readAll = readSource
	}
	readAll() // footers parsed (and row groups cached, with the cache on)
	var cpu cpuMeter
	b.ReportAllocs()
	b.ResetTimer()
	cpu.resume()
	for i := 0; i < b.N; i++ {
		readAll()
	}
	b.StopTimer()
	cpu.report(b)
	reportRows(b, total)
}

// benchCompact times Manager.Compact of a table whose 200,000 rows are in
// 20 segments with interleaved keys, into one segment.
func benchCompact(b *testing.B, h Harness) {
	ctx := context.Background()
	ids := make([]int64, ReadSegmentRows)
	var cpu cpuMeter
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		backend := h.New(b)
		m, err := flush.Open(ctx, backend, h.options(b, flush.Options{}))
		require.NoError(b, err)
		createTable(b, m, "items", catalog.SharedTable)
		s, err := m.DB().Shared(ctx, ns, "items")
		require.NoError(b, err)
		for seg := int64(0); seg < ReadSegments; seg++ {
			for j := range ids {
				ids[j] = int64(j)*ReadSegments + seg
			}
			insert(b, s, ids)
			_, err := m.Flush(ctx, ns, "items")
			require.NoError(b, err)
		}
		b.StartTimer()
		cpu.resume()
		res, err := m.Compact(ctx, ns, "items")
		cpu.pause()
		b.StopTimer()
		require.NoError(b, err)
		require.Equal(b, ReadSegments, res.Merged)
		require.EqualValues(b, ReadSegments*ReadSegmentRows, res.Rows)
		require.NoError(b, backend.Close())
		b.StartTimer()
	}
	b.StopTimer()
	cpu.report(b)
	reportRows(b, ReadSegments*ReadSegmentRows)
}
