package tablestest

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

func testInsertGet(t *testing.T, e *env, s rowStore) {
	first, err := s.Insert(e.ctx, sample(1))
	require.NoError(t, err)
	assert.Positive(t, first)
	e.clock.Advance(time.Second)
	second, err := s.Insert(e.ctx, sample(2))
	require.NoError(t, err)
	assert.Greater(t, second, first, "_seq increases")

	r, err := s.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)
	assertValues(t, sample(1), r.Values)
	assert.Equal(t, first, r.Seq)
	assert.Equal(t, t0.UnixMicro(), r.Updated)
	assert.False(t, r.Deleted)
	r, err = s.Get(e.ctx, row.Int64(2))
	require.NoError(t, err)
	assert.Equal(t, t0.Add(time.Second).UnixMicro(), r.Updated)

	_, err = s.Get(e.ctx, row.Int64(3))
	assert.ErrorIs(t, err, core.ErrRowNotFound)
	assert.ErrorContains(t, err, "id=3")
	_, err = s.Get(e.ctx, row.String("1"))
	requireColumnError(t, err, core.ErrInvalidRow, "id")
	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
}

// The first and last instants a timestamp column takes (row.CheckTimestamp).
var (
	minTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

func testEveryType(t *testing.T, e *env, s rowStore) {
	rows := [][]row.Value{
		{row.Int64(math.MinInt64), row.String(""), row.Float64(math.Copysign(0, -1)), row.Bool(false),
			row.Timestamp(minTime), row.Bytes(nil), row.Int32(math.MinInt32)},
		{row.Int64(0), row.String("a\x00b:ü"), row.Float64(math.NaN()), row.Bool(true),
			row.TimestampMicros(0), row.Bytes([]byte{0, 0, 0xFF}), row.Int32(0)},
		{row.Int64(math.MaxInt64), row.Null(), row.Null(), row.Null(), row.Null(), row.Null(), row.Int32(math.MaxInt32)},
		{row.Int64(-1), row.String(string(make([]byte, 5000))), row.Float64(math.Inf(1)), row.Bool(true),
			row.Timestamp(maxTime), row.Bytes(make([]byte, 70_000)), row.Int32(-1)},
	}
	_, err := s.Insert(e.ctx, rows...)
	require.NoError(t, err)
	for _, want := range rows {
		got, err := s.Get(e.ctx, want[colID])
		require.NoError(t, err)
		assertValues(t, want, got.Values, "get %v", want[colID])
	}
	page, err := s.Scan(e.ctx, tables.ScanOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int64{math.MinInt64, -1, 0, math.MaxInt64}, ids(page.Rows), "primary-key order")
	for _, got := range page.Rows {
		i := slices.IndexFunc(rows, func(r []row.Value) bool { return r[colID].Equal(got.Values[colID]) })
		assertValues(t, rows[i], got.Values, "scan %v", got.Values[colID])
	}
}

func testDuplicateKey(t *testing.T, e *env, s rowStore) {
	_, err := s.Insert(e.ctx, sample(1))
	require.NoError(t, err)
	_, err = s.Insert(e.ctx, sample(1))
	assert.ErrorIs(t, err, core.ErrDuplicateKey)
	assert.ErrorContains(t, err, "id=1")
	r, err := s.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)
	assertValues(t, sample(1), r.Values, "the original row is untouched")

	if u := s.user(); u != "" {
		// Another user may use the same primary key.
		other := userView{s: e.user(), u: u + "-other"}
		_, err := other.Insert(e.ctx, sample(1))
		require.NoError(t, err)
	}
}

func testInsertManyAtomic(t *testing.T, e *env, s rowStore) {
	first, err := s.Insert(e.ctx, sample(1), sample(2), sample(3))
	require.NoError(t, err)
	for i := int64(1); i <= 3; i++ {
		r, err := s.Get(e.ctx, row.Int64(i))
		require.NoError(t, err)
		assert.Equal(t, first+i-1, r.Seq, "consecutive _seq in the order given")
	}

	// A row that collides with a stored one: nothing of the batch lands.
	_, err = s.Insert(e.ctx, sample(10), sample(11), sample(2), sample(12))
	assert.ErrorIs(t, err, core.ErrDuplicateKey)
	assert.ErrorContains(t, err, "row 2")
	// Twice in one insert.
	_, err = s.Insert(e.ctx, sample(20), sample(21), sample(20))
	assert.ErrorIs(t, err, core.ErrDuplicateKey)
	assert.ErrorContains(t, err, "twice in one insert")
	// An invalid row in the middle.
	bad := sample(31)
	bad[colSmall] = row.Null()
	_, err = s.Insert(e.ctx, sample(30), bad, sample(32))
	requireColumnError(t, err, core.ErrInvalidRow, "small")
	assert.ErrorContains(t, err, "row 1")

	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(3), n, "failed inserts left nothing behind")
	page, err := s.Scan(e.ctx, tables.ScanOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3}, ids(page.Rows))

	_, err = s.Insert(e.ctx)
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
}

func testInvalidRows(t *testing.T, e *env, s rowStore) {
	r := sample(1)
	_, err := s.Insert(e.ctx, r[:3])
	assert.ErrorIs(t, err, core.ErrInvalidRow)
	assert.ErrorContains(t, err, "has 7 columns, the row has 3 values")

	r = sample(1)
	r[colScore] = row.String("high")
	_, err = s.Insert(e.ctx, r)
	requireColumnError(t, err, core.ErrInvalidRow, "score")

	r = sample(1)
	r[colBody] = row.String("\xff\xfe")
	_, err = s.Insert(e.ctx, r)
	requireColumnError(t, err, core.ErrInvalidRow, "body")

	r = sample(1)
	r[colID] = row.Null()
	_, err = s.Insert(e.ctx, r)
	requireColumnError(t, err, core.ErrInvalidRow, "id")

	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, n)

	// ValuesFromMap is how a server builds rows; its errors name the column.
	tbl := e.user().Table()
	_, err = tbl.ValuesFromMap(map[string]any{"id": 1, "small": 2, "colour": "red"})
	requireColumnError(t, err, core.ErrInvalidRow, "colour")
	vals, err := tbl.ValuesFromMap(map[string]any{"id": 5, "small": 2, "body": "hi"})
	require.NoError(t, err)
	_, err = s.Insert(e.ctx, vals)
	require.NoError(t, err)
}

func testUpdate(t *testing.T, e *env, s rowStore) {
	_, err := s.Insert(e.ctx, sample(1))
	require.NoError(t, err)
	before, err := s.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)

	e.clock.Advance(time.Minute)
	got, err := s.Update(e.ctx, row.Int64(1), map[string]row.Value{"body": row.String("edited"), "flag": row.Null()})
	require.NoError(t, err)
	want := sample(1)
	want[colBody], want[colFlag] = row.String("edited"), row.Null()
	assertValues(t, want, got.Values)
	assert.Greater(t, got.Seq, before.Seq)
	assert.Equal(t, t0.Add(time.Minute).UnixMicro(), got.Updated)
	stored, err := s.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)
	assert.Equal(t, got.Seq, stored.Seq)
	assertValues(t, want, stored.Values)

	_, err = s.Update(e.ctx, row.Int64(2), map[string]row.Value{"body": row.String("x")})
	assert.ErrorIs(t, err, core.ErrRowNotFound)
	_, err = s.Update(e.ctx, row.Int64(1), map[string]row.Value{"id": row.Int64(9)})
	requireColumnError(t, err, core.ErrInvalidRow, "id")
	_, err = s.Update(e.ctx, row.Int64(1), map[string]row.Value{"small": row.Null()})
	requireColumnError(t, err, core.ErrInvalidRow, "small")
	_, err = s.Update(e.ctx, row.Int64(1), map[string]row.Value{"nope": row.Int64(1)})
	requireColumnError(t, err, core.ErrInvalidRow, "nope")
	_, err = s.Update(e.ctx, row.Int64(1), map[string]row.Value{"score": row.Bool(true)})
	requireColumnError(t, err, core.ErrInvalidRow, "score")
	_, err = s.Update(e.ctx, row.Int64(1), nil)
	assert.ErrorIs(t, err, core.ErrInvalidRow)
	after, err := s.Get(e.ctx, row.Int64(1))
	require.NoError(t, err)
	assert.Equal(t, got.Seq, after.Seq, "failed updates wrote nothing")
}

func testSoftDelete(t *testing.T, e *env, s rowStore) {
	_, err := s.Insert(e.ctx, sample(1), sample(2), sample(3))
	require.NoError(t, err)
	live, err := s.Get(e.ctx, row.Int64(2))
	require.NoError(t, err)

	require.NoError(t, s.Delete(e.ctx, row.Int64(2)))
	_, err = s.Get(e.ctx, row.Int64(2))
	assert.ErrorIs(t, err, core.ErrRowNotFound)
	assert.ErrorIs(t, s.Delete(e.ctx, row.Int64(2)), core.ErrRowNotFound, "deleting twice")
	assert.ErrorIs(t, s.Delete(e.ctx, row.Int64(9)), core.ErrRowNotFound)
	_, err = s.Update(e.ctx, row.Int64(2), map[string]row.Value{"body": row.String("x")})
	assert.ErrorIs(t, err, core.ErrRowNotFound, "a deleted row cannot be updated")
	page, err := s.Scan(e.ctx, tables.ScanOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 3}, ids(page.Rows))
	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)

	// The tombstone is kept in the buffer, with a new _seq and the last values.
	tomb := bufferVersion(t, e, s, row.Int64(2))
	assert.True(t, tomb.Deleted)
	assert.Greater(t, tomb.Seq, live.Seq)
	assertValues(t, sample(2), tomb.Values)

	// The key can be used again.
	_, err = s.Insert(e.ctx, sample(2))
	require.NoError(t, err)
	again, err := s.Get(e.ctx, row.Int64(2))
	require.NoError(t, err)
	assert.Greater(t, again.Seq, tomb.Seq)
}

// bufferVersion returns the buffered version of pk, tombstones included.
func bufferVersion(t *testing.T, e *env, s rowStore, pk row.Value) row.Row {
	t.Helper()
	buf := s.Buffer()
	it, err := buf.Versions(e.ctx, s.user())
	require.NoError(t, err)
	defer it.Close()
	for it.Next() {
		_, k, err := buf.DecodeKey(it.Key())
		require.NoError(t, err)
		if k.Equal(pk) {
			var r row.Row
			require.NoError(t, it.Row(&r))
			assert.Equal(t, it.Seq(), r.Seq)
			assert.Equal(t, it.Deleted(), r.Deleted)
			assert.Equal(t, r, bufferEntry(t, e, s, it.Key()), "Entries holds the version Versions decodes")
			return r
		}
	}
	require.NoError(t, it.Err())
	t.Fatalf("no buffered version of %v", pk)
	return row.Row{}
}

// bufferEntry returns the version stored under key, read through
// Buffer.Entries and decoded with Buffer.Types.
func bufferEntry(t *testing.T, e *env, s rowStore, key []byte) row.Row {
	t.Helper()
	buf := s.Buffer()
	it, err := buf.Entries(e.ctx, s.user())
	require.NoError(t, err)
	defer it.Close()
	for it.Next() {
		if bytes.Equal(it.Key(), key) {
			var r row.Row
			require.NoError(t, row.Decode(it.Value(), buf.Types(), &r))
			return r
		}
	}
	require.NoError(t, it.Err())
	t.Fatalf("no buffer entry %x", key)
	return row.Row{}
}

func testScanPaging(t *testing.T, e *env, s rowStore) {
	rng := rand.New(rand.NewPCG(1, 2))
	var want []int64
	for _, i := range rng.Perm(37) {
		id := int64(i*3 - 40) // negatives too
		want = append(want, id)
		_, err := s.Insert(e.ctx, sample(id))
		require.NoError(t, err)
	}
	slices.Sort(want)
	for _, size := range []int{1, 5, 10, 36, 37, 38, 100} {
		assert.Equal(t, want, ids(scanAll(t, e, s, size)), "page size %d", size)
	}

	page, err := s.Scan(e.ctx, tables.ScanOptions{Limit: 37})
	require.NoError(t, err)
	assert.False(t, page.More, "a limit equal to the row count leaves nothing more")

	page, err = s.Scan(e.ctx, tables.ScanOptions{Start: row.Int64(want[4]), Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, want[4:6], ids(page.Rows), "Start is inclusive")
	assert.True(t, page.More)
	assert.True(t, page.Next.Equal(row.Int64(want[5])))
	page, err = s.Scan(e.ctx, tables.ScanOptions{After: row.Int64(want[4]), Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, want[5:7], ids(page.Rows), "After is exclusive")
	page, err = s.Scan(e.ctx, tables.ScanOptions{After: row.Int64(want[4] + 1), Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, want[5:6], ids(page.Rows), "After need not be a stored key")
	page, err = s.Scan(e.ctx, tables.ScanOptions{After: row.Int64(math.MaxInt64)})
	require.NoError(t, err)
	assert.Empty(t, page.Rows)
	assert.False(t, page.More)

	// Deleted rows are skipped, also at page boundaries.
	for _, i := range []int{0, 1, 5, 6, 36} {
		require.NoError(t, s.Delete(e.ctx, row.Int64(want[i])))
	}
	var remaining []int64
	for i, id := range want {
		if !slices.Contains([]int{0, 1, 5, 6, 36}, i) {
			remaining = append(remaining, id)
		}
	}
	for _, size := range []int{1, 4, 5, 32, 33} {
		assert.Equal(t, remaining, ids(scanAll(t, e, s, size)), "page size %d after deletes", size)
	}
	page, err = s.Scan(e.ctx, tables.ScanOptions{Limit: len(remaining)})
	require.NoError(t, err)
	assert.False(t, page.More, "trailing tombstones are not more rows")

	for _, bad := range []tables.ScanOptions{
		{Limit: -1},
		{Limit: tables.MaxLimit + 1},
		{Start: row.Int64(1), After: row.Int64(2)},
	} {
		_, err := s.Scan(e.ctx, bad)
		assert.ErrorIs(t, err, core.ErrInvalidArgument, "%+v", bad)
	}
	_, err = s.Scan(e.ctx, tables.ScanOptions{After: row.String("x")})
	requireColumnError(t, err, core.ErrInvalidRow, "id")
}

// testConcurrentInsertSameKey races goroutines to insert the same keys:
// exactly one insert of each key wins, the others get ErrDuplicateKey.
func testConcurrentInsertSameKey(t *testing.T, e *env, s rowStore) {
	const workers, keys = 8, 60
	wins := make([]int, keys)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			for k := range keys {
				vals := sample(int64(k))
				vals[colSmall] = row.Int32(int32(w))
				_, err := s.Insert(e.ctx, vals)
				if err == nil {
					mu.Lock()
					wins[k]++
					mu.Unlock()
					continue
				}
				assert.ErrorIs(t, err, core.ErrDuplicateKey)
			}
		})
	}
	close(start)
	wg.Wait()
	for k, n := range wins {
		assert.Equal(t, 1, n, "key %d inserted %d times", k, n)
	}
	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(keys), n)
}

// testConcurrentMixed runs inserters, updaters, deleters and readers on one
// table at once and checks the counts and the last writes at the end.
func testConcurrentMixed(t *testing.T, e *env, s rowStore) {
	const writers, perWriter, hot = 4, 40, 8
	// Hot rows that every writer updates.
	for k := range hot {
		_, err := s.Insert(e.ctx, sample(int64(1_000_000+k)))
		require.NoError(t, err)
	}
	type result struct {
		seq  int64
		body string
	}
	var mu sync.Mutex
	lastWrite := map[int64]result{} // hot key -> update with the highest _seq
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := int64(w*perWriter + i)
				_, err := s.Insert(e.ctx, sample(id))
				if !assert.NoError(t, err) {
					return
				}
				if i%4 == 3 {
					assert.NoError(t, s.Delete(e.ctx, row.Int64(id)))
				}
				hk := int64(1_000_000 + (w+i)%hot)
				body := "w" + itoa(int64(w)) + "i" + itoa(int64(i))
				got, err := s.Update(e.ctx, row.Int64(hk), map[string]row.Value{"body": row.String(body)})
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				if got.Seq > lastWrite[hk].seq {
					lastWrite[hk] = result{got.Seq, body}
				}
				mu.Unlock()
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				page, err := s.Scan(e.ctx, tables.ScanOptions{Limit: 50})
				if !assert.NoError(t, err) {
					return
				}
				got := ids(page.Rows)
				assert.True(t, slices.IsSorted(got), "scan order")
				assert.Len(t, slices.Compact(slices.Clone(got)), len(got), "no duplicates")
				for _, k := range []int64{1_000_000, 1_000_003} {
					_, err := s.Get(e.ctx, row.Int64(k))
					assert.NoError(t, err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	deleted := writers * perWriter / 4
	assert.Equal(t, int64(writers*perWriter-deleted+hot), n)
	for hk, want := range lastWrite {
		r, err := s.Get(e.ctx, row.Int64(hk))
		require.NoError(t, err)
		assert.Equal(t, want.seq, r.Seq, "hot row %d: the update with the highest _seq is the stored one", hk)
		assert.Equal(t, want.body, r.Values[colBody].Str())
	}
	// _seq is unique across the table.
	all := scanAll(t, e, s, 1000)
	seen := map[int64]bool{}
	for _, r := range all {
		assert.False(t, seen[r.Seq], "duplicate _seq %d", r.Seq)
		seen[r.Seq] = true
	}
}

// testDeleteIfUnchanged is the flush's last step: remove exactly the
// versions that were copied, and keep the ones written meanwhile.
func testDeleteIfUnchanged(t *testing.T, e *env, s rowStore) {
	_, err := s.Insert(e.ctx, sample(1), sample(2), sample(3), sample(4))
	require.NoError(t, err)
	buf := s.Buffer()
	it, err := buf.Versions(e.ctx, s.user())
	require.NoError(t, err)
	var refs []tables.VersionRef
	for it.Next() {
		refs = append(refs, tables.VersionRef{Key: append([]byte(nil), it.Key()...), Seq: it.Seq()})
	}
	require.NoError(t, it.Close())
	require.Len(t, refs, 4)

	// Written while the "flush" ran.
	_, err = s.Update(e.ctx, row.Int64(2), map[string]row.Value{"body": row.String("newer")})
	require.NoError(t, err)
	require.NoError(t, s.Delete(e.ctx, row.Int64(3)))

	n, err := buf.DeleteIfUnchanged(e.ctx, refs)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "rows 1 and 4 were unchanged")
	n, err = buf.DeleteIfUnchanged(e.ctx, refs)
	require.NoError(t, err)
	assert.Zero(t, n, "a second run finds nothing to delete")

	_, err = s.Get(e.ctx, row.Int64(1))
	assert.ErrorIs(t, err, core.ErrRowNotFound, "gone from the buffer (it would live in the cold tier)")
	r, err := s.Get(e.ctx, row.Int64(2))
	require.NoError(t, err)
	assert.Equal(t, "newer", r.Values[colBody].Str())
	assert.True(t, bufferVersion(t, e, s, row.Int64(3)).Deleted, "the tombstone stays")

	_, err = buf.DeleteIfUnchanged(e.ctx, nil)
	assert.NoError(t, err)
	unlock := buf.LockKeys([][]byte{refs[0].Key, refs[1].Key})
	unlock()
}

// testScanBytes: with MaxBytes a page ends once its rows encode to that
// many bytes, holds at least one row however large, and paging with Next
// returns every row once.
func testScanBytes(t *testing.T, e *env, s rowStore) {
	sizes := []int{100, 5000, 100, 100, 20_000, 100, 100, 100, 3000, 100}
	for i, n := range sizes {
		r := sample(int64(i))
		r[colBody] = row.String(strings.Repeat("x", n))
		_, err := s.Insert(e.ctx, r)
		require.NoError(t, err)
	}
	const budget = 4000
	var got []int64
	var after row.Value
	for pages := 0; ; pages++ {
		require.Less(t, pages, len(sizes)+1, "paging ends")
		page, err := s.Scan(e.ctx, tables.ScanOptions{After: after, MaxBytes: budget})
		require.NoError(t, err)
		require.NotEmpty(t, page.Rows, "a page holds at least one row")
		size := 0
		for i, r := range page.Rows {
			if i == len(page.Rows)-1 {
				break
			}
			size += row.EncodedLen(&r)
		}
		assert.Less(t, size, budget, "only the last row of a page may take it over the bound")
		got = append(got, ids(page.Rows)...)
		if !page.More {
			break
		}
		after = page.Next
	}
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, got)
	page, err := s.Scan(e.ctx, tables.ScanOptions{Start: row.Int64(4), MaxBytes: 1})
	require.NoError(t, err)
	assert.Equal(t, []int64{4}, ids(page.Rows), "a row larger than the bound comes alone")
	assert.True(t, page.More)
	_, err = s.Scan(e.ctx, tables.ScanOptions{MaxBytes: -1})
	assert.ErrorIs(t, err, core.ErrInvalidArgument)
}

// testInsertWithinBatchLimits: an insert is all or nothing, so one that
// the backend cannot apply at once (Capabilities.MaxBatchOps) is refused
// whole with core.ErrInvalidArgument that says what to do, and one at the
// limit applies; without limits, 5,000 rows go in one insert.
func testInsertWithinBatchLimits(t *testing.T, e *env, s rowStore) {
	rows := func(from, n int) [][]row.Value {
		out := make([][]row.Value, n)
		for i := range out {
			out[i] = sample(int64(from + i))
		}
		return out
	}
	maxOps := e.b.Capabilities().MaxBatchOps
	if maxOps == 0 {
		_, err := s.Insert(e.ctx, rows(0, 5000)...)
		require.NoError(t, err)
		n, err := s.Count(e.ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(5000), n)
		return
	}
	_, err := s.Insert(e.ctx, rows(0, maxOps+1)...)
	require.ErrorIs(t, err, core.ErrInvalidArgument)
	assert.ErrorContains(t, err, "insert fewer rows at a time")
	assert.ErrorContains(t, err, "MaxBatchOps")
	n, err := s.Count(e.ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing of a refused insert is stored")
	_, err = s.Insert(e.ctx, rows(0, maxOps)...)
	require.NoError(t, err)
	n, err = s.Count(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(maxOps), n)
}
