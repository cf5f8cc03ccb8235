package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
)

func TestPartitionNames(t *testing.T) {
	for _, ok := range []string{"a", "Z", "user_table:app.messages", "a-b.c_d:9", strings.Repeat("x", store.MaxPartitionNameLen)} {
		p, err := store.NewPartition(ok)
		require.NoError(t, err, ok)
		require.Equal(t, ok, p.Name())
		require.Equal(t, ok, p.String())
		require.False(t, p.IsZero())
	}
	for _, bad := range []string{"", " ", "a b", "a/b", "a\x00", "é", "{tag}", strings.Repeat("x", store.MaxPartitionNameLen+1)} {
		_, err := store.NewPartition(bad)
		require.ErrorIs(t, err, store.ErrInvalidArgument, "%q", bad)
	}
	_, err := store.NewPartition("a/b")
	require.ErrorContains(t, err, `'/'`, "the error names the offending byte")
	require.Panics(t, func() { store.MustPartition("a b") })
	require.True(t, store.Partition{}.IsZero())
}

func TestOperationValidate(t *testing.T) {
	p := store.MustPartition("p")
	require.NoError(t, store.PutOp(p, []byte("k"), nil).Validate())
	require.NoError(t, store.DeleteOp(p, []byte("k")).Validate())
	require.Equal(t, "put", store.OpPut.String())
	require.NoError(t, store.DeleteRangeOp(p, []byte("a"), []byte("a\x00")).Validate())
	require.Equal(t, "delete", store.OpDelete.String())
	require.Equal(t, "delete-range", store.OpDeleteRange.String())
	require.Equal(t, "OpKind(9)", store.OpKind(9).String())
	for name, op := range map[string]store.Operation{
		"zero kind":            {Partition: p, Key: []byte("k")},
		"zero partition":       store.PutOp(store.Partition{}, []byte("k"), nil),
		"empty key":            store.DeleteOp(p, nil),
		"huge key":             store.DeleteOp(p, make([]byte, store.MaxKeySize+1)),
		"range without start":  store.DeleteRangeOp(p, nil, []byte("b")),
		"range without end":    store.DeleteRangeOp(p, []byte("a"), nil),
		"range with huge end":  store.DeleteRangeOp(p, []byte("a"), make([]byte, store.MaxKeySize+1)),
		"empty range":          store.DeleteRangeOp(p, []byte("a"), []byte("a")),
		"inverted range":       store.DeleteRangeOp(p, []byte("b"), []byte("a")),
		"range zero partition": store.DeleteRangeOp(store.Partition{}, []byte("a"), []byte("b")),
	} {
		require.ErrorIs(t, op.Validate(), store.ErrInvalidArgument, name)
	}
}

// TestKeyLimit: keys of 1 to 4,096 bytes (ADR-012); a longer key, scan
// prefix or scan start is refused with an error that gives its size and the
// limit, and nothing is written.
func TestKeyLimit(t *testing.T) {
	require.Equal(t, 4096, store.MaxKeySize)
	require.NoError(t, store.ValidateKey(make([]byte, 4096)))
	err := store.ValidateKey(make([]byte, 4097))
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.EqualError(t, err, "kalamdb-store: invalid argument: key is 4097 bytes, the limit is 4096 (store.MaxKeySize)")

	ctx := context.Background()
	b := memory.New()
	defer b.Close()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	top := []byte(strings.Repeat("\xff", store.MaxKeySize))
	require.NoError(t, b.Put(ctx, p, top, []byte("v")))
	err = b.Put(ctx, p, append(top, 0), []byte("v"))
	assert.ErrorContains(t, err, "key is 4097 bytes, the limit is 4096")
	_, err = b.Scan(ctx, p, store.ScanOptions{Prefix: append(top, 0)})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorContains(t, err, "scan prefix is 4097 bytes, longer than any key (the limit is 4096, store.MaxKeySize)")
	_, err = b.Scan(ctx, p, store.ScanOptions{Start: append(top, 0), Reverse: true})
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorContains(t, err, "scan start is 4097 bytes, longer than any key (the limit is 4096, store.MaxKeySize)")
	it, err := b.Scan(ctx, p, store.ScanOptions{Prefix: top, Start: top})
	require.NoError(t, err)
	require.True(t, it.Next())
	assert.Equal(t, top, it.Key())
	require.False(t, it.Next())
	require.NoError(t, it.Close())
}

func TestToRange(t *testing.T) {
	cases := []struct {
		name         string
		o            store.ScanOptions
		lower, upper []byte
		empty        bool
	}{
		{"all", store.ScanOptions{}, nil, nil, false},
		{"prefix", store.ScanOptions{Prefix: []byte("ab")}, []byte("ab"), []byte("ac"), false},
		{"prefix ff", store.ScanOptions{Prefix: []byte("a\xff")}, []byte("a\xff"), []byte("b"), false},
		{"prefix all ff", store.ScanOptions{Prefix: []byte("\xff\xff")}, []byte("\xff\xff"), nil, false},
		{"start", store.ScanOptions{Start: []byte("m")}, []byte("m"), nil, false},
		{"start exclusive", store.ScanOptions{Start: []byte("m"), ExclusiveStart: true}, []byte("m\x00"), nil, false},
		{"reverse start", store.ScanOptions{Start: []byte("m"), Reverse: true}, nil, []byte("m\x00"), false},
		{"reverse start exclusive", store.ScanOptions{Start: []byte("m"), Reverse: true, ExclusiveStart: true}, nil, []byte("m"), false},
		{"start inside prefix", store.ScanOptions{Prefix: []byte("a"), Start: []byte("ab")}, []byte("ab"), []byte("b"), false},
		{"start before prefix", store.ScanOptions{Prefix: []byte("b"), Start: []byte("a")}, []byte("b"), []byte("c"), false},
		{"start after prefix", store.ScanOptions{Prefix: []byte("a"), Start: []byte("b")}, nil, nil, true},
		{"reverse start before prefix", store.ScanOptions{Prefix: []byte("b"), Start: []byte("a"), Reverse: true}, nil, nil, true},
	}
	for _, c := range cases {
		r, empty := c.o.ToRange()
		require.Equal(t, c.empty, empty, c.name)
		if !empty {
			require.Equal(t, c.lower, r.Lower, c.name+" lower")
			require.Equal(t, c.upper, r.Upper, c.name+" upper")
			require.Equal(t, c.o.Reverse, r.Reverse)
		}
	}
	require.Nil(t, store.PrefixSuccessor(nil))
	require.Equal(t, []byte{0x01}, store.PrefixSuccessor([]byte{0x00}))
	require.Equal(t, []byte("b"), store.PrefixSuccessor([]byte("a\xff\xff")))
	r := store.Range{Lower: []byte("b"), Upper: []byte("d")}
	require.True(t, r.Contains([]byte("b")))
	require.True(t, r.Contains([]byte("c\xff")))
	require.False(t, r.Contains([]byte("d")))
	require.False(t, r.Contains([]byte("a")))
}

func TestToRangeCopiesInput(t *testing.T) {
	prefix := []byte("ab")
	r, _ := store.ScanOptions{Prefix: prefix}.ToRange()
	prefix[0] = 'z'
	require.Equal(t, []byte("ab"), r.Lower)
}

func TestRegistry(t *testing.T) {
	reg := store.NewRegistry()
	memory.Register(reg)
	require.Equal(t, []string{"memory"}, reg.Names())
	name, err := reg.Resolve("in-memory")
	require.NoError(t, err)
	require.Equal(t, "memory", name)

	require.Panics(t, func() { memory.Register(reg) }, "duplicate registration")
	require.Panics(t, func() { reg.Register("", memory.Open) })
	require.Panics(t, func() { reg.Register("x", nil) })
	require.Panics(t, func() { reg.Alias("memory", "memory") }, "alias over a name")
	require.Panics(t, func() { reg.Alias("y", "nope") }, "alias of an unknown backend")

	reg.Register("zzz", memory.Open)
	_, err = reg.Open(context.Background(), "rocks", nil)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.ErrorContains(t, err, `unknown storage backend "rocks"; known backends: memory, zzz`)

	_, err = reg.Open(context.Background(), "memory", store.ConfigMap{"pth": "/tmp"})
	require.ErrorIs(t, err, store.ErrInvalidArgument, "a factory decodes its section strictly")
	require.ErrorContains(t, err, "pth")
	require.ErrorContains(t, err, `opening storage backend "memory"`)

	factoryErr := errors.New("engine exploded")
	reg.Register("broken", func(context.Context, store.Config) (store.StorageBackend, error) { return nil, factoryErr })
	_, err = reg.Open(context.Background(), "broken", nil)
	require.ErrorIs(t, err, factoryErr, "factory errors are wrapped")
}

func TestConfigMapDecode(t *testing.T) {
	type cfg struct {
		Path     string `toml:"path"`
		MaxFiles int    `toml:"max_open_files"`
		Sync     bool   `toml:"sync_writes"`
	}
	c := cfg{Path: "default", MaxFiles: 100}
	require.NoError(t, store.ConfigMap(nil).Decode(&c))
	require.Equal(t, cfg{Path: "default", MaxFiles: 100}, c, "an empty section keeps defaults")

	require.NoError(t, store.ConfigMap{"path": "/data", "sync_writes": true}.Decode(&c))
	require.Equal(t, cfg{Path: "/data", MaxFiles: 100, Sync: true}, c)

	err := store.ConfigMap{"path": "/x", "max_open_file": 5}.Decode(&c)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.ErrorContains(t, err, "max_open_file")

	err = store.ConfigMap{"max_open_files": "many"}.Decode(&c)
	require.ErrorIs(t, err, store.ErrInvalidArgument)
	require.ErrorContains(t, err, "max_open_files")
}

// The wrapper closes leaked iterators and reports them; Close waits for
// calls in flight.
func TestCloseReportsLeaks(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	p := store.MustPartition("p")
	require.NoError(t, b.CreatePartition(ctx, p))
	require.NoError(t, b.Put(ctx, p, []byte("k"), []byte("v")))
	it1, err := b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	it2, err := b.Scan(ctx, p, store.ScanOptions{})
	require.NoError(t, err)
	require.NoError(t, it2.Close())
	err = b.Close()
	require.ErrorIs(t, err, store.ErrLeakedIterators)
	assert.ErrorContains(t, err, "1 iterator(s)")
	require.False(t, it1.Next())
	require.ErrorIs(t, it1.Close(), store.ErrClosed)
}

// An iterator closed by its goroutine while the backend closes is closed
// exactly once, without a data race.
func TestIteratorCloseRacesBackendClose(t *testing.T) {
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		b := memory.New()
		p := store.MustPartition("p")
		require.NoError(t, b.CreatePartition(ctx, p))
		it, err := b.Scan(ctx, p, store.ScanOptions{})
		require.NoError(t, err)
		done := make(chan error)
		go func() { done <- it.Close() }()
		berr := b.Close()
		ierr := <-done
		if berr != nil {
			require.ErrorIs(t, berr, store.ErrLeakedIterators)
			require.ErrorIs(t, ierr, store.ErrClosed, "the backend closed it first")
		} else {
			require.NoError(t, ierr)
		}
	}
}

func TestCount(t *testing.T) {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()
	p := store.MustPartition("count")
	require.NoError(t, b.CreatePartition(ctx, p))
	for _, k := range []string{"a1", "a2", "a3", "b1"} {
		require.NoError(t, b.Put(ctx, p, []byte(k), nil))
	}
	for opts, want := range map[*store.ScanOptions]int64{
		{}:                                4,
		{Prefix: []byte("a")}:             3,
		{Prefix: []byte("a"), Limit: 2}:   2,
		{Start: []byte("a3"), Limit: 100}: 2,
	} {
		n, err := store.Count(ctx, b, p, *opts)
		require.NoError(t, err)
		assert.Equal(t, want, n, "%+v", *opts)
	}
	_, err := store.Count(ctx, b, store.MustPartition("missing"), store.ScanOptions{})
	assert.ErrorIs(t, err, store.ErrPartitionNotFound)
}
