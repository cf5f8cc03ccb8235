package store_test

import (
	"context"
	"errors"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
)

// A StorageBackend is used through the interface alone; which engine sits
// behind it is a configuration choice.
func Example() {
	ctx := context.Background()
	var b store.StorageBackend = memory.New()
	defer b.Close()

	users := store.MustPartition("users")
	if err := b.CreatePartition(ctx, users); err != nil {
		panic(err)
	}
	if err := b.Put(ctx, users, []byte("u1"), []byte("Ada")); err != nil {
		panic(err)
	}
	v, err := b.Get(ctx, users, []byte("u1"))
	fmt.Println(string(v), err)

	_, err = b.Get(ctx, users, []byte("u2"))
	fmt.Println(errors.Is(err, store.ErrNotFound))

	_, err = b.Get(ctx, store.MustPartition("nope"), []byte("u1"))
	fmt.Println(errors.Is(err, store.ErrPartitionNotFound))
	// Output:
	// Ada <nil>
	// true
	// true
}

// The iterator loop: Next, Key/Value (valid until the next Next), then Err,
// and always Close.
func ExampleIterator() {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()
	p := store.MustPartition("events")
	_ = b.CreatePartition(ctx, p)
	for _, k := range []string{"2024/01", "2024/02", "2025/01", "2025/02"} {
		_ = b.Put(ctx, p, []byte(k), []byte("e"+k))
	}

	it, err := b.Scan(ctx, p, store.ScanOptions{Prefix: []byte("2025/"), Reverse: true})
	if err != nil {
		panic(err)
	}
	defer it.Close()
	for it.Next() {
		fmt.Printf("%s=%s\n", it.Key(), it.Value())
	}
	if err := it.Err(); err != nil {
		panic(err)
	}
	// Output:
	// 2025/02=e2025/02
	// 2025/01=e2025/01
}

// Paging: pass the last key of a page as Start with ExclusiveStart.
func ExampleScanOptions_paging() {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()
	p := store.MustPartition("items")
	_ = b.CreatePartition(ctx, p)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		_ = b.Put(ctx, p, []byte(k), nil)
	}
	var after []byte
	for {
		it, _ := b.Scan(ctx, p, store.ScanOptions{Start: after, ExclusiveStart: after != nil, Limit: 2})
		var page []string
		for it.Next() {
			page = append(page, string(it.Key()))
		}
		_ = it.Close()
		if len(page) == 0 {
			break
		}
		fmt.Println(page)
		after = []byte(page[len(page)-1])
	}
	// Output:
	// [a b]
	// [c d]
	// [e]
}

// A batch is atomic across partitions: one bad operation and nothing is
// applied.
func ExampleStorageBackend_batch() {
	ctx := context.Background()
	b := memory.New()
	defer b.Close()
	rows, index := store.MustPartition("rows"), store.MustPartition("index")
	_ = b.CreatePartition(ctx, rows)
	_ = b.CreatePartition(ctx, index)

	err := b.Batch(ctx, []store.Operation{
		store.PutOp(rows, []byte("row1"), []byte(`{"name":"Ada"}`)),
		store.PutOp(index, []byte("Ada"), []byte("row1")),
	})
	fmt.Println("first batch:", err)

	err = b.Batch(ctx, []store.Operation{
		store.PutOp(rows, []byte("row2"), []byte(`{"name":"Bob"}`)),
		store.PutOp(store.MustPartition("missing"), []byte("Bob"), []byte("row2")),
	})
	fmt.Println("second batch refused:", errors.Is(err, store.ErrPartitionNotFound))
	_, err = b.Get(ctx, rows, []byte("row2"))
	fmt.Println("row2 written:", !errors.Is(err, store.ErrNotFound))
	// Output:
	// first batch: <nil>
	// second batch refused: true
	// row2 written: false
}

// A Registry opens backends by the name a configuration file gives.
func ExampleRegistry() {
	reg := store.NewRegistry()
	memory.Register(reg)

	b, err := reg.Open(context.Background(), "in-memory", store.ConfigMap{})
	fmt.Println(err, b.Capabilities().Durable)
	_ = b.Close()

	_, err = reg.Open(context.Background(), "sled", nil)
	fmt.Println(err)
	// Output:
	// <nil> false
	// kalamdb-store: invalid argument: unknown storage backend "sled"; known backends: memory
}

// A Gated engine keeps its partitions in a PartitionMap: data calls look
// them up without a lock, partition changes add or remove one entry (and a
// DropPartition goes through Drop, with the gate New hands the engine).
func ExamplePartitionMap() {
	var parts store.PartitionMap[int] // e.g. a partition's id in the engine
	parts.Set("users", 1)
	parts.Set("orders", 2)

	before := parts.Snapshot() // a copy
	parts.Delete("users")

	_, ok := parts.Get("users")
	list, _ := parts.Partitions()
	fmt.Println(list, ok, len(before))
	// Output: [orders] false 2
}
