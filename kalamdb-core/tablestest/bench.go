package tablestest

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// benchRows is how many rows the get and scan benchmarks preload.
const benchRows = 100_000

// benchPage is the page size of the scan benchmarks.
const benchPage = 100

const benchUser = "user-000042"

// benchColumns is a six-column table: the shape the flush benchmarks use.
func benchColumns() []catalog.Column {
	return []catalog.Column{
		{Name: "id", Type: row.TypeInt64},
		{Name: "name", Type: row.TypeString},
		{Name: "score", Type: row.TypeFloat64},
		{Name: "active", Type: row.TypeBool},
		{Name: "created", Type: row.TypeTimestamp},
		{Name: "payload", Type: row.TypeBytes, Nullable: true},
	}
}

var benchPayload = make([]byte, 64)

func benchRow(vals []row.Value, id int64) []row.Value {
	vals = append(vals[:0], row.Int64(id), row.String("name-0000000042"), row.Float64(float64(id)*0.5),
		row.Bool(id%2 == 0), row.TimestampMicros(1_700_000_000_000_000+id), row.Bytes(benchPayload))
	return vals
}

type benchEnv struct {
	ctx    context.Context
	b      store.StorageBackend
	db     *tables.DB
	user   *tables.UserTableStore
	shared *tables.SharedTableStore
	stream *tables.StreamTableStore
	raw    store.Partition
	types  []row.Type
}

func newBenchEnv(b *testing.B, h Harness) *benchEnv { return newBenchEnvWith(b, h, nil) }

// newBenchEnvWith is newBenchEnv with the backend passed through wrap
// (when not nil).
func newBenchEnvWith(b *testing.B, h Harness, wrap func(store.StorageBackend) store.StorageBackend) *benchEnv {
	b.Helper()
	backend, _ := h.New(b)
	if wrap != nil {
		backend = wrap(backend)
	}
	e := &benchEnv{ctx: context.Background(), b: backend, raw: store.MustPartition("bench.raw")}
	b.Cleanup(func() {
		if e.db != nil {
			_ = e.db.Close()
		}
		_ = backend.Close()
	})
	db, err := tables.Open(e.ctx, backend, tables.Options{})
	require.NoError(b, err)
	e.db = db
	cat := db.Catalog()
	_, err = cat.CreateNamespace(e.ctx, "bench")
	require.NoError(b, err)
	for _, def := range []catalog.Table{
		{Namespace: "bench", Name: "u", Type: catalog.UserTable, PrimaryKey: "id", Columns: benchColumns()},
		{Namespace: "bench", Name: "s", Type: catalog.SharedTable, PrimaryKey: "id", Columns: benchColumns()},
		{Namespace: "bench", Name: "e", Type: catalog.StreamTable, Columns: benchColumns(),
			Stream: catalog.StreamOptions{TTL: 1 << 62, MaxBuffer: 1 << 40}},
	} {
		_, err := cat.CreateTable(e.ctx, def)
		require.NoError(b, err)
	}
	e.user, err = db.User(e.ctx, "bench", "u")
	require.NoError(b, err)
	e.shared, err = db.Shared(e.ctx, "bench", "s")
	require.NoError(b, err)
	e.stream, err = db.Stream(e.ctx, "bench", "e")
	require.NoError(b, err)
	require.NoError(b, backend.CreatePartition(e.ctx, e.raw))
	e.types = e.user.Table().Types()
	return e
}

// fullStreamMax is the maximum buffer of the stream of fullStream.
const fullStreamMax = 4096

// fullStream creates a stream table of fullStreamMax events at most and
// fills it.
func (e *benchEnv) fullStream(b *testing.B) *tables.StreamTableStore {
	_, err := e.db.Catalog().CreateTable(e.ctx, catalog.Table{Namespace: "bench", Name: "full", Type: catalog.StreamTable, Columns: benchColumns(),
		Stream: catalog.StreamOptions{TTL: 1 << 62, MaxBuffer: fullStreamMax}})
	require.NoError(b, err)
	s, err := e.db.Stream(e.ctx, "bench", "full")
	require.NoError(b, err)
	batch := make([][]row.Value, 0, 256)
	for id := range int64(fullStreamMax) {
		batch = append(batch, benchRow(nil, id))
		if len(batch) == cap(batch) {
			_, err := s.Append(e.ctx, batch...)
			require.NoError(b, err)
			batch = batch[:0]
		}
	}
	return s
}

// rawKey is a user-table key: the same bytes the user store writes.
func rawKey(dst []byte, id int64) []byte {
	return keys.AppendInt64(keys.AppendString(dst[:0], benchUser), id)
}

// rawValue is an encoded row, the same bytes the user store writes.
func (e *benchEnv) rawValue(b *testing.B) []byte {
	r := row.Row{Seq: 1, Updated: 1_700_000_000_000_000, Values: benchRow(nil, 1)}
	v, err := row.Encode(nil, &r, e.types)
	require.NoError(b, err)
	return v
}

// spread maps the i-th lookup to a preloaded id, visiting them out of order.
func spread(i int) int64 { return int64(i*7919) % benchRows }

func (e *benchEnv) preloadRaw(b *testing.B) {
	val := e.rawValue(b)
	ops := make([]store.Operation, 0, 1000)
	for id := int64(0); id < benchRows; id++ {
		ops = append(ops, store.PutOp(e.raw, rawKey(nil, id), val))
		if len(ops) == cap(ops) {
			require.NoError(b, e.b.Batch(e.ctx, ops))
			ops = ops[:0]
		}
	}
}

func preloadRows(b *testing.B, insert func(rows ...[]row.Value) (int64, error)) {
	batch := make([][]row.Value, 0, 1000)
	for id := int64(0); id < benchRows; id++ {
		batch = append(batch, benchRow(nil, id))
		if len(batch) == cap(batch) {
			_, err := insert(batch...)
			require.NoError(b, err)
			batch = batch[:0]
		}
	}
}

// Bench runs the table-store benchmarks on the harness's backend, next to
// the raw backend operations they sit on, with the same key and value
// bytes: raw/put vs */insert, raw/get vs */get, raw/scan vs */scan (pages
// of 100 rows). Compare them as ratios within one run.
func Bench(b *testing.B, h Harness) {
	b.Run("raw/put", func(b *testing.B) {
		e := newBenchEnv(b, h)
		val := e.rawValue(b)
		var k []byte
		b.ReportAllocs()
		id := int64(0)
		for b.Loop() {
			k = rawKey(k, id)
			id++
			if err := e.b.Put(e.ctx, e.raw, k, val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/get", func(b *testing.B) {
		e := newBenchEnv(b, h)
		e.preloadRaw(b)
		var k []byte
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			k = rawKey(k, spread(i))
			i++
			if _, err := e.b.Get(e.ctx, e.raw, k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/scan", func(b *testing.B) {
		e := newBenchEnv(b, h)
		e.preloadRaw(b)
		prefix := keys.AppendString(nil, benchUser)
		var k []byte
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			k = rawKey(k, spread(i)%(benchRows-benchPage))
			i++
			it, err := e.b.Scan(e.ctx, e.raw, store.ScanOptions{Prefix: prefix, Start: k, Limit: benchPage})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for it.Next() {
				n++
			}
			if err := it.Close(); err != nil || n != benchPage {
				b.Fatal(n, err)
			}
		}
	})

	type rowBench struct {
		name      string
		insert    func(e *benchEnv) func(rows ...[]row.Value) (int64, error)
		insertOne func(e *benchEnv) func(vals []row.Value) (int64, error)
		get       func(e *benchEnv) func(pk row.Value) (row.Row, error)
		scan      func(e *benchEnv) func(opts tables.ScanOptions) (tables.Page, error)
	}
	rowBenches := []rowBench{
		{
			name: "user",
			insert: func(e *benchEnv) func(rows ...[]row.Value) (int64, error) {
				return func(rows ...[]row.Value) (int64, error) { return e.user.Insert(e.ctx, benchUser, rows...) }
			},
			insertOne: func(e *benchEnv) func(vals []row.Value) (int64, error) {
				return func(vals []row.Value) (int64, error) { return e.user.Insert(e.ctx, benchUser, vals) }
			},
			get: func(e *benchEnv) func(pk row.Value) (row.Row, error) {
				return func(pk row.Value) (row.Row, error) { return e.user.Get(e.ctx, benchUser, pk) }
			},
			scan: func(e *benchEnv) func(opts tables.ScanOptions) (tables.Page, error) {
				return func(opts tables.ScanOptions) (tables.Page, error) { return e.user.Scan(e.ctx, benchUser, opts) }
			},
		},
		{
			name: "shared",
			insert: func(e *benchEnv) func(rows ...[]row.Value) (int64, error) {
				return func(rows ...[]row.Value) (int64, error) { return e.shared.Insert(e.ctx, rows...) }
			},
			insertOne: func(e *benchEnv) func(vals []row.Value) (int64, error) {
				return func(vals []row.Value) (int64, error) { return e.shared.Insert(e.ctx, vals) }
			},
			get: func(e *benchEnv) func(pk row.Value) (row.Row, error) {
				return func(pk row.Value) (row.Row, error) { return e.shared.Get(e.ctx, pk) }
			},
			scan: func(e *benchEnv) func(opts tables.ScanOptions) (tables.Page, error) {
				return func(opts tables.ScanOptions) (tables.Page, error) { return e.shared.Scan(e.ctx, opts) }
			},
		},
	}
	for _, rb := range rowBenches {
		// insert-multiprocess inserts on a backend that claims several
		// processes share it: every insert's batch checks its key.
		for _, c := range []struct {
			name string
			wrap func(store.StorageBackend) store.StorageBackend
		}{
			{"insert", nil},
			{"insert-multiprocess", MultiProcess},
		} {
			b.Run(rb.name+"/"+c.name, func(b *testing.B) {
				e := newBenchEnvWith(b, h, c.wrap)
				writeEach(b, rb.insertOne(e))
			})
		}
		b.Run(rb.name+"/get", func(b *testing.B) {
			e := newBenchEnv(b, h)
			preloadRows(b, rb.insert(e))
			get := rb.get(e)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := get(row.Int64(spread(i))); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(rb.name+"/scan", func(b *testing.B) {
			e := newBenchEnv(b, h)
			preloadRows(b, rb.insert(e))
			scan := rb.scan(e)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				page, err := scan(tables.ScanOptions{Start: row.Int64(spread(i) % (benchRows - benchPage)), Limit: benchPage})
				if err != nil || len(page.Rows) != benchPage {
					b.Fatal(len(page.Rows), err)
				}
				i++
			}
		})
	}

	b.Run("stream/append", func(b *testing.B) {
		e := newBenchEnv(b, h)
		writeEach(b, func(vals []row.Value) (int64, error) { return e.stream.Append(e.ctx, vals) })
	})
	// A stream held at its maximum: every append evicts. On a backend
	// several processes share, an eviction takes the table's lease and
	// counts the stream first, which appends amortise (ADR-023).
	for _, c := range []struct {
		name string
		wrap func(store.StorageBackend) store.StorageBackend
	}{{"stream/append-full", nil}, {"stream/append-full-shared", MultiProcess}} {
		b.Run(c.name, func(b *testing.B) {
			e := newBenchEnvWith(b, h, c.wrap)
			s := e.fullStream(b)
			writeEach(b, func(vals []row.Value) (int64, error) { return s.Append(e.ctx, vals) })
		})
	}
	b.Run("stream/read", func(b *testing.B) {
		e := newBenchEnv(b, h)
		preloadRows(b, func(rows ...[]row.Value) (int64, error) { return e.stream.Append(e.ctx, rows...) })
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			page, err := e.stream.Read(e.ctx, tables.StreamReadOptions{After: spread(i) % (benchRows - benchPage), Limit: benchPage})
			if err != nil || len(page.Events) != benchPage {
				b.Fatal(len(page.Events), err)
			}
			i++
		}
	})

	// Paired benchmarks: each iteration runs the raw backend operation and
	// the store operation on the same data, alternating which goes first,
	// and times them separately. x-raw is raw time / store time: the store's
	// throughput as a fraction of the raw backend's, measured under the same
	// machine load.
	for _, rb := range rowBenches {
		b.Run("paired/"+rb.name+"-insert", func(b *testing.B) {
			e := newBenchEnv(b, h)
			insert := rb.insertOne(e)
			val := e.rawValue(b)
			vals := benchRow(nil, 0)
			var k []byte
			paired(b, func(i int) {
				k = rawKey(k, int64(i))
				if err := e.b.Put(e.ctx, e.raw, k, val); err != nil {
					b.Fatal(err)
				}
			}, func(i int) {
				vals[0] = row.Int64(int64(i))
				if _, err := insert(vals); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("paired/"+rb.name+"-get", func(b *testing.B) {
			e := newBenchEnv(b, h)
			e.preloadRaw(b)
			preloadRows(b, rb.insert(e))
			get := rb.get(e)
			var k []byte
			paired(b, func(i int) {
				k = rawKey(k, spread(i))
				if _, err := e.b.Get(e.ctx, e.raw, k); err != nil {
					b.Fatal(err)
				}
			}, func(i int) {
				if _, err := get(row.Int64(spread(i))); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	b.Run("paired/user-scan", func(b *testing.B) {
		e := newBenchEnv(b, h)
		e.preloadRaw(b)
		preloadRows(b, func(rows ...[]row.Value) (int64, error) { return e.user.Insert(e.ctx, benchUser, rows...) })
		prefix := keys.AppendString(nil, benchUser)
		var k []byte
		paired(b, func(i int) {
			k = rawKey(k, spread(i)%(benchRows-benchPage))
			it, err := e.b.Scan(e.ctx, e.raw, store.ScanOptions{Prefix: prefix, Start: k, Limit: benchPage})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for it.Next() {
				n++
			}
			if err := it.Close(); err != nil || n != benchPage {
				b.Fatal(n, err)
			}
		}, func(i int) {
			page, err := e.user.Scan(e.ctx, benchUser, tables.ScanOptions{Start: row.Int64(spread(i) % (benchRows - benchPage)), Limit: benchPage})
			if err != nil || len(page.Rows) != benchPage {
				b.Fatal(len(page.Rows), err)
			}
		})
	})
	b.Run("paired/stream-append", func(b *testing.B) {
		e := newBenchEnv(b, h)
		val := e.rawValue(b)
		vals := benchRow(nil, 0)
		k := make([]byte, 0, 8)
		paired(b, func(i int) {
			k = keys.AppendUint64(k[:0], uint64(i))
			if err := e.b.Put(e.ctx, e.raw, k, val); err != nil {
				b.Fatal(err)
			}
		}, func(i int) {
			vals[0] = row.Int64(int64(i))
			if _, err := e.stream.Append(e.ctx, vals); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// pairedBatch is how many raw operations, then as many store operations
// (or the other way round, alternately), the paired benchmarks time at once.
const pairedBatch = 32

// paired runs b.N raw operations and b.N store operations, interleaved in
// batches of pairedBatch and alternating which kind goes first, and reports
// each kind's mean wall-clock time and the ratio raw/store (x-raw). On Linux
// it also reports the CPU time the benchmark's thread spent on each kind and
// their ratio (x-raw-cpu): time the thread spends preempted by other
// processes is not counted, so that ratio holds on a busy machine.
func paired(b *testing.B, raw, core func(i int)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	var rawWall, coreWall, rawCPU, coreCPU time.Duration
	_, cpuOK := threadCPU()
	run := func(f func(int), from, to int, wall, cpu *time.Duration) {
		c0, _ := threadCPU()
		t0 := time.Now()
		for i := from; i < to; i++ {
			f(i)
		}
		*wall += time.Since(t0)
		c1, _ := threadCPU()
		*cpu += c1 - c0
	}
	b.ResetTimer()
	for from, n := 0, 0; from < b.N; from, n = from+pairedBatch, n+1 {
		to := min(from+pairedBatch, b.N)
		if n%2 == 0 {
			run(raw, from, to, &rawWall, &rawCPU)
			run(core, from, to, &coreWall, &coreCPU)
		} else {
			run(core, from, to, &coreWall, &coreCPU)
			run(raw, from, to, &rawWall, &rawCPU)
		}
	}
	if b.N == 0 || coreWall == 0 {
		return
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(per(rawWall), "raw-ns/op")
	b.ReportMetric(per(coreWall), "core-ns/op")
	b.ReportMetric(float64(rawWall)/float64(coreWall), "x-raw")
	if cpuOK && coreCPU > 0 {
		b.ReportMetric(per(rawCPU), "raw-cpu-ns/op")
		b.ReportMetric(per(coreCPU), "core-cpu-ns/op")
		b.ReportMetric(float64(rawCPU)/float64(coreCPU), "x-raw-cpu")
	}
}

// writeEach measures write, called once per iteration with a benchmark row
// whose first column counts up from 0.
func writeEach(b *testing.B, write func(vals []row.Value) (int64, error)) {
	vals := benchRow(nil, 0)
	b.ReportAllocs()
	id := int64(0)
	for b.Loop() {
		vals[0] = row.Int64(id)
		id++
		if _, err := write(vals); err != nil {
			b.Fatal(err)
		}
	}
}
