// Package tablestest is the test suite and the benchmarks of the table
// stores, runnable on any StorageBackend: kalamdb-core runs them on the
// memory backend, and the root module runs them on RocksDB.
//
//	func TestTables(t *testing.T) {
//		tablestest.Run(t, tablestest.Harness{Name: "memory", New: func(testing.TB) (store.StorageBackend, func() (store.StorageBackend, error)) {
//			return memory.New(), nil
//		}})
//	}
package tablestest

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/clock"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// Harness describes the backend the suite runs on.
type Harness struct {
	// Name names the backend in messages.
	Name string
	// New returns a fresh, empty backend, and for a durable backend a
	// function that opens the same storage again after the suite has closed
	// the first one (nil otherwise: restarts then reopen the table layer on
	// the same backend). The suite closes the backends it gets.
	New func(t testing.TB) (b store.StorageBackend, reopen func() (store.StorageBackend, error))
}

// t0 is the fake clock's start.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// env is one backend with a DB on it and the standard tables.
type env struct {
	t      testing.TB
	ctx    context.Context
	h      Harness
	b      store.StorageBackend
	reopen func() (store.StorageBackend, error)
	db     *tables.DB
	clock  *clock.Fake
	// cold, when not nil, is the cold tier of every user and shared table
	// (tables.Options.ColdTier).
	cold *memColdTier
}

const ns = "app"

// Standard table names.
const (
	userTable   = "messages"
	sharedTable = "settings"
	streamTable = "events"
	docsTable   = "docs" // user table with a string primary key
)

// columns is the schema of the standard user and shared tables: one column
// of every type, the primary key first.
func columns() []catalog.Column {
	return []catalog.Column{
		{Name: "id", Type: row.TypeInt64},
		{Name: "body", Type: row.TypeString, Nullable: true},
		{Name: "score", Type: row.TypeFloat64, Nullable: true},
		{Name: "flag", Type: row.TypeBool, Nullable: true},
		{Name: "at", Type: row.TypeTimestamp, Nullable: true},
		{Name: "blob", Type: row.TypeBytes, Nullable: true},
		{Name: "small", Type: row.TypeInt32},
	}
}

const (
	colID = iota
	colBody
	colScore
	colFlag
	colAt
	colBlob
	colSmall
)

const streamTTL = time.Hour
const streamMax = 50

// yielding wraps a backend so that every Get yields the processor before
// it returns: check-then-act races that the key locks must prevent become
// likely instead of rare.
type yielding struct{ store.StorageBackend }

func (y yielding) Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error) {
	v, err := y.StorageBackend.Get(ctx, p, key)
	runtime.Gosched()
	return v, err
}

func newEnv(t testing.TB, h Harness) *env { return newEnvWith(t, h, envOptions{}) }

// envOptions change the env newEnvWith builds.
type envOptions struct {
	// wrap, when not nil, wraps the backend.
	wrap func(store.StorageBackend) store.StorageBackend
	// cold gives every user and shared table an in-memory cold tier
	// (env.cold).
	cold bool
}

// newEnvWith is newEnv with opts.
func newEnvWith(t testing.TB, h Harness, opts envOptions) *env {
	t.Helper()
	b, reopen := h.New(t)
	if opts.wrap != nil {
		b = opts.wrap(b)
	}
	e := &env{t: t, ctx: context.Background(), h: h, b: b, reopen: reopen, clock: clock.NewFake(t0)}
	if opts.cold {
		e.cold = newMemColdTier()
	}
	t.Cleanup(func() {
		if e.db != nil {
			_ = e.db.Close()
		}
		_ = e.b.Close()
	})
	e.open()
	_, err := e.db.Catalog().CreateNamespace(e.ctx, ns)
	require.NoError(t, err)
	for _, def := range []catalog.Table{
		{Namespace: ns, Name: userTable, Type: catalog.UserTable, PrimaryKey: "id", Columns: columns()},
		{Namespace: ns, Name: sharedTable, Type: catalog.SharedTable, PrimaryKey: "id", Columns: columns()},
		{Namespace: ns, Name: docsTable, Type: catalog.UserTable, PrimaryKey: "name", Columns: []catalog.Column{
			{Name: "name", Type: row.TypeString}, {Name: "n", Type: row.TypeInt64}}},
		{Namespace: ns, Name: streamTable, Type: catalog.StreamTable,
			Columns: []catalog.Column{{Name: "kind", Type: row.TypeString}, {Name: "n", Type: row.TypeInt64}},
			Stream:  catalog.StreamOptions{TTL: streamTTL, MaxBuffer: streamMax}},
	} {
		_, err := e.db.Catalog().CreateTable(e.ctx, def)
		require.NoError(t, err, def.Name)
	}
	return e
}

func (e *env) open() {
	e.t.Helper()
	opts := tables.Options{Clock: e.clock, SeqBlock: 16}
	if e.cold != nil {
		opts.ColdTier = e.cold
	}
	db, err := tables.Open(e.ctx, e.b, opts)
	require.NoError(e.t, err)
	e.db = db
}

// restart closes the table layer (and the backend, when it can be
// reopened) and opens it again.
func (e *env) restart() {
	e.t.Helper()
	require.NoError(e.t, e.db.Close())
	if e.reopen != nil {
		require.NoError(e.t, e.b.Close())
		b, err := e.reopen()
		require.NoError(e.t, err, "reopening %s", e.h.Name)
		e.b = b
	}
	e.open()
}

func (e *env) user() *tables.UserTableStore {
	e.t.Helper()
	s, err := e.db.User(e.ctx, ns, userTable)
	require.NoError(e.t, err)
	return s
}

func (e *env) shared() *tables.SharedTableStore {
	e.t.Helper()
	s, err := e.db.Shared(e.ctx, ns, sharedTable)
	require.NoError(e.t, err)
	return s
}

func (e *env) stream() *tables.StreamTableStore {
	e.t.Helper()
	s, err := e.db.Stream(e.ctx, ns, streamTable)
	require.NoError(e.t, err)
	return s
}

// rowStore is the API common to the user store (bound to one user) and the
// shared store, so that one test runs on both.
type rowStore interface {
	Insert(ctx context.Context, rows ...[]row.Value) (int64, error)
	Get(ctx context.Context, pk row.Value) (row.Row, error)
	Update(ctx context.Context, pk row.Value, set map[string]row.Value) (row.Row, error)
	Delete(ctx context.Context, pk row.Value) error
	Scan(ctx context.Context, opts tables.ScanOptions) (tables.Page, error)
	Count(ctx context.Context) (int64, error)
	Buffer() *tables.Buffer
	user() string
}

type userView struct {
	s *tables.UserTableStore
	u string
}

func (v userView) Insert(ctx context.Context, rows ...[]row.Value) (int64, error) {
	return v.s.Insert(ctx, v.u, rows...)
}
func (v userView) Get(ctx context.Context, pk row.Value) (row.Row, error) {
	return v.s.Get(ctx, v.u, pk)
}
func (v userView) Update(ctx context.Context, pk row.Value, set map[string]row.Value) (row.Row, error) {
	return v.s.Update(ctx, v.u, pk, set)
}
func (v userView) Delete(ctx context.Context, pk row.Value) error { return v.s.Delete(ctx, v.u, pk) }
func (v userView) Scan(ctx context.Context, opts tables.ScanOptions) (tables.Page, error) {
	return v.s.Scan(ctx, v.u, opts)
}
func (v userView) Count(ctx context.Context) (int64, error) { return v.s.Count(ctx, v.u) }
func (v userView) Buffer() *tables.Buffer                   { return v.s.Buffer() }
func (v userView) user() string                             { return v.u }

type sharedView struct{ *tables.SharedTableStore }

func (sharedView) user() string { return "" }

// kinds returns the user view (user "alice") and the shared view.
func (e *env) kinds() map[string]func() rowStore {
	return map[string]func() rowStore{
		"user":   func() rowStore { return userView{s: e.user(), u: "alice"} },
		"shared": func() rowStore { return sharedView{e.shared()} },
	}
}

// sample returns a row of the standard schema for id.
func sample(id int64) []row.Value {
	return []row.Value{
		row.Int64(id), row.String("body " + itoa(id)), row.Float64(float64(id) / 4), row.Bool(id%2 == 0),
		row.TimestampMicros(t0.UnixMicro() + id), row.Bytes([]byte{byte(id), 0, 0xFF}), row.Int32(int32(id % 1000)),
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
