package flush_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/faultstore"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/faultfs"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// env is a Manager over a fault-injecting backend and file system, both of
// which survive a reopen (the memory backend stands for durable storage:
// what a crash leaves applied stays applied).
type env struct {
	t     testing.TB
	ctx   context.Context
	inner store.StorageBackend
	bs    *faultstore.Backend
	root  string
	fsys  *faultfs.FS
	clock *clock.Fake
	opts  flush.Options
	m     *flush.Manager
	// noSnapshots hides the backend's snapshot scans from the Manager.
	noSnapshots bool
	// s3, when set, holds the segments instead of root (see withS3).
	s3 *remote
}

// noSnapshots is a backend that does not claim snapshot scans.
type noSnapshots struct{ store.StorageBackend }

func (noSnapshots) Capabilities() store.Capabilities { return store.Capabilities{} }

// innerLimits are the batch limits of the memory backend under the tests'
// Managers: none, unless a test sets them (see withBatchLimits).
var innerLimits memory.Config

// withBatchLimits makes the backends of the environments created until the
// returned function is called claim small batch limits, as a distributed
// engine does: commits then take several batches.
func withBatchLimits(ops, bytes int) (restore func()) {
	innerLimits = memory.Config{MaxBatchOps: ops, MaxBatchBytes: bytes}
	return func() { innerLimits = memory.Config{} }
}

func newEnv(t testing.TB, mod ...func(*flush.Options)) *env {
	t.Helper()
	inner, err := memory.OpenWith(innerLimits)
	require.NoError(t, err)
	e := &env{t: t, ctx: context.Background(), inner: inner, root: t.TempDir(),
		clock: clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	// One process writes the store: unrecorded files are garbage at once.
	e.opts = flush.Options{RowGroupRows: 64, GCGrace: -1, Tables: tables.Options{Clock: e.clock, SeqBlock: 16}}
	for _, f := range mod {
		f(&e.opts)
	}
	if onS3 {
		e.s3 = newRemote(t)
	}
	e.reopen()
	return e
}

// reopen opens a new Manager on the same storage, as after a restart.
func (e *env) reopen() {
	e.t.Helper()
	require.NoError(e.t, e.tryReopen())
}

func (e *env) tryReopen() error {
	if e.m != nil {
		e.m.Stop()
	}
	e.bs = faultstore.Wrap(e.inner)
	e.fsys = faultfs.New(segment.DirFS(e.root))
	opts := e.opts
	opts.FS = e.fsys
	if e.s3 != nil {
		opts.Store = e.s3.open(e.t)
	}
	var b store.StorageBackend = e.bs
	if e.noSnapshots {
		b = noSnapshots{b}
	}
	m, err := flush.Open(e.ctx, b, opts)
	e.m = m
	return err
}

const ns = "app"

func (e *env) createTable(name string, typ catalog.TableType, policy catalog.FlushPolicy) *catalog.Table {
	e.t.Helper()
	if _, err := e.m.DB().Catalog().Namespace(ns); err != nil {
		_, err := e.m.DB().Catalog().CreateNamespace(e.ctx, ns)
		require.NoError(e.t, err)
	}
	t, err := e.m.DB().Catalog().CreateTable(e.ctx, catalog.Table{
		Namespace: ns, Name: name, Type: typ, PrimaryKey: "id", Flush: policy,
		Columns: []catalog.Column{
			{Name: "id", Type: row.TypeInt64},
			{Name: "name", Type: row.TypeString},
			{Name: "score", Type: row.TypeFloat64, Nullable: true},
			{Name: "active", Type: row.TypeBool},
			{Name: "blob", Type: row.TypeBytes, Nullable: true},
			{Name: "at", Type: row.TypeTimestamp},
		},
	})
	require.NoError(e.t, err)
	return t
}

func vals(id int64, gen int) []row.Value {
	score := row.Float64(float64(id) + float64(gen)/10)
	if id%4 == 0 {
		score = row.Null()
	}
	return []row.Value{
		row.Int64(id), row.String(fmt.Sprintf("row-%d-gen-%d", id, gen)), score, row.Bool(id%2 == 0),
		row.Bytes([]byte{byte(id), byte(gen), 0}), row.TimestampMicros(id * 1000),
	}
}

// rows is the expected content of a table: user -> id -> generation.
type model map[string]map[int64]int

func (md model) set(user string, id int64, gen int) {
	if md[user] == nil {
		md[user] = map[int64]int{}
	}
	md[user][id] = gen
}

func (md model) del(user string, id int64) { delete(md[user], id) }

// store abstracts user and shared tables for the tests: user "" is the
// shared table.
type rowStore struct {
	u *tables.UserTableStore
	s *tables.SharedTableStore
}

func (e *env) store(name string) rowStore {
	e.t.Helper()
	t, err := e.m.DB().Catalog().Table(ns, name)
	require.NoError(e.t, err)
	if t.Type == catalog.UserTable {
		u, err := e.m.DB().User(e.ctx, ns, name)
		require.NoError(e.t, err)
		return rowStore{u: u}
	}
	s, err := e.m.DB().Shared(e.ctx, ns, name)
	require.NoError(e.t, err)
	return rowStore{s: s}
}

func (s rowStore) insert(ctx context.Context, user string, rows ...[]row.Value) error {
	if s.u != nil {
		_, err := s.u.Insert(ctx, user, rows...)
		return err
	}
	_, err := s.s.Insert(ctx, rows...)
	return err
}

func (s rowStore) get(ctx context.Context, user string, id int64) (row.Row, error) {
	if s.u != nil {
		return s.u.Get(ctx, user, row.Int64(id))
	}
	return s.s.Get(ctx, row.Int64(id))
}

func (s rowStore) update(ctx context.Context, user string, id int64, gen int) error {
	set := map[string]row.Value{"name": vals(id, gen)[1], "score": vals(id, gen)[2], "blob": vals(id, gen)[4]}
	var err error
	if s.u != nil {
		_, err = s.u.Update(ctx, user, row.Int64(id), set)
	} else {
		_, err = s.s.Update(ctx, row.Int64(id), set)
	}
	return err
}

func (s rowStore) delete(ctx context.Context, user string, id int64) error {
	if s.u != nil {
		return s.u.Delete(ctx, user, row.Int64(id))
	}
	return s.s.Delete(ctx, row.Int64(id))
}

func (s rowStore) scan(ctx context.Context, user string, opts tables.ScanOptions) (tables.Page, error) {
	if s.u != nil {
		return s.u.Scan(ctx, user, opts)
	}
	return s.s.Scan(ctx, opts)
}

func (s rowStore) count(ctx context.Context, user string) (int64, error) {
	if s.u != nil {
		return s.u.Count(ctx, user)
	}
	return s.s.Count(ctx)
}

func (s rowStore) buffer() *tables.Buffer {
	if s.u != nil {
		return s.u.Buffer()
	}
	return s.s.Buffer()
}

// scanAll pages through user's rows with the given page size.
func scanAll(t testing.TB, ctx context.Context, s rowStore, user string, pageSize int) []row.Row {
	t.Helper()
	var all []row.Row
	opts := tables.ScanOptions{Limit: pageSize}
	for range 100_000 {
		page, err := s.scan(ctx, user, opts)
		require.NoError(t, err)
		all = append(all, page.Rows...)
		if !page.More {
			return all
		}
		require.Len(t, page.Rows, pageSize, "a page with More is full")
		opts.After = page.Next
	}
	t.Fatal("scan did not end")
	return nil
}

// check compares every read path of the table with the model: scans with
// several page sizes, Count, and Get of every key (and of deleted ones).
func (e *env) check(name string, md model, users []string, gone map[string][]int64) {
	e.t.Helper()
	s := e.store(name)
	for _, u := range users {
		want := md[u]
		ids := make([]int64, 0, len(want))
		for id := range want {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, ps := range []int{1, 7, 1000} {
			got := scanAll(e.t, e.ctx, s, u, ps)
			require.Len(e.t, got, len(ids), "user %q page size %d", u, ps)
			for i, r := range got {
				require.Equal(e.t, ids[i], r.Values[0].Int64(), "user %q page size %d row %d", u, ps, i)
				requireValues(e.t, vals(ids[i], want[ids[i]]), r.Values, fmt.Sprintf("user %q id %d", u, ids[i]))
				require.False(e.t, r.Deleted)
			}
		}
		n, err := s.count(e.ctx, u)
		require.NoError(e.t, err)
		require.EqualValues(e.t, len(ids), n, "count of user %q", u)
		for _, id := range ids {
			r, err := s.get(e.ctx, u, id)
			require.NoError(e.t, err, "get user %q id %d", u, id)
			requireValues(e.t, vals(id, want[id]), r.Values, fmt.Sprintf("get user %q id %d", u, id))
		}
		for _, id := range gone[u] {
			if _, live := want[id]; live {
				continue
			}
			_, err := s.get(e.ctx, u, id)
			require.Error(e.t, err, "deleted user %q id %d", u, id)
		}
	}
}

func requireValues(t testing.TB, want, got []row.Value, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		require.True(t, want[i].Equal(got[i]), "%s column %d: want %v, got %v", what, i, want[i], got[i])
	}
}

// bufferLen counts the versions in a table's buffer.
func (e *env) bufferLen(name string) int {
	e.t.Helper()
	t, err := e.m.DB().Catalog().Table(ns, name)
	require.NoError(e.t, err)
	it, err := e.inner.Scan(e.ctx, t.Partition(), store.ScanOptions{})
	require.NoError(e.t, err)
	n := 0
	for it.Next() {
		n++
	}
	require.NoError(e.t, it.Close())
	return n
}
