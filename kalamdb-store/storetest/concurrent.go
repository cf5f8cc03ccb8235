package storetest

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// testConcurrentReadersWriters runs writers (puts, deletes, batches) and
// readers (gets, scans) at once; under -race this also checks the backend's
// locking. Every writer owns its keys, so the final state is exact.
func testConcurrentReadersWriters(t *testing.T, e *env) {
	p := e.part(t, "data")
	const writers, perWriter, readers = 4, 150, 3
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	stop := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				k := []byte(fmt.Sprintf("w%d/%04d", w, i))
				var err error
				switch i % 3 {
				case 0, 1:
					err = e.b.Put(e.ctx, p, k, []byte(fmt.Sprintf("v%d", i)))
				case 2:
					err = e.b.Batch(e.ctx, []store.Operation{
						store.PutOp(p, k, []byte(fmt.Sprintf("v%d", i))),
						store.DeleteOp(p, []byte(fmt.Sprintf("w%d/%04d", w, i-1))),
					})
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d op %d: %w", w, i, err)
					return
				}
			}
		}(w)
	}
	var rwg sync.WaitGroup
	for r := 0; r < readers; r++ {
		rwg.Add(1)
		go func(r int) {
			defer rwg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := e.b.Get(e.ctx, p, []byte(fmt.Sprintf("w%d/%04d", r%writers, n%perWriter))); err != nil && !isNotFound(err) {
					errs <- fmt.Errorf("reader %d get: %w", r, err)
					return
				}
				it, err := e.b.Scan(e.ctx, p, store.ScanOptions{Prefix: []byte(fmt.Sprintf("w%d/", r%writers)), Reverse: n%2 == 1})
				if err != nil {
					errs <- fmt.Errorf("reader %d scan: %w", r, err)
					return
				}
				var last []byte
				for it.Next() {
					k := it.Key()
					if last != nil && (string(k) == string(last) || (string(k) < string(last)) != (n%2 == 1)) {
						errs <- fmt.Errorf("reader %d: scan order broken at %q after %q", r, k, last)
					}
					last = append(last[:0], k...)
				}
				if err := it.Close(); err != nil {
					errs <- fmt.Errorf("reader %d iterate: %w", r, err)
					return
				}
			}
		}(r)
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for w := 0; w < writers; w++ {
		want := map[string]string{}
		for i := 0; i < perWriter; i++ {
			want[fmt.Sprintf("w%d/%04d", w, i)] = fmt.Sprintf("v%d", i)
			if i%3 == 2 {
				delete(want, fmt.Sprintf("w%d/%04d", w, i-1))
			}
		}
		got := collect(t, e.b, p, store.ScanOptions{Prefix: []byte(fmt.Sprintf("w%d/", w))})
		require.Equal(t, reference(want, store.ScanOptions{}), got, "writer %d's keys", w)
	}
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, store.ErrNotFound) }

// testConcurrentBatchVisibility checks that readers never observe half a
// batch: each batch moves a token from one key to another inside one
// partition, so every snapshot scan sees exactly one token.
func testConcurrentBatchVisibility(t *testing.T, e *env) {
	if !e.b.Capabilities().SnapshotScans {
		t.Skip("backend does not claim snapshot scans; a scan may see the effects of a batch partially ordered by key")
	}
	p := e.part(t, "tokens")
	const slots = 8
	e.put(t, p, "slot0", "token")
	done := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 0; i < 300; i++ {
			from, to := fmt.Sprintf("slot%d", i%slots), fmt.Sprintf("slot%d", (i+1)%slots)
			if err := e.b.Batch(e.ctx, []store.Operation{
				store.DeleteOp(p, []byte(from)),
				store.PutOp(p, []byte(to), []byte("token")),
			}); err != nil {
				errs <- err
				return
			}
		}
	}()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				it, err := e.b.Scan(e.ctx, p, store.ScanOptions{})
				if err != nil {
					errs <- err
					return
				}
				n := 0
				for it.Next() {
					n++
				}
				if err := it.Close(); err != nil {
					errs <- err
					return
				}
				if n != 1 {
					errs <- fmt.Errorf("a scan saw %d tokens: a batch was half applied", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, []kv{{fmt.Sprintf("slot%d", 300%slots), "token"}}, collect(t, e.b, p, store.ScanOptions{}))
}

// testConcurrentPartitions creates, writes and drops partitions from many
// goroutines; each goroutine owns its partitions.
func testConcurrentPartitions(t *testing.T, e *env) {
	const workers, rounds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				p := store.MustPartition(fmt.Sprintf("p%d-%d", w, r))
				steps := []func() error{
					func() error { return e.b.CreatePartition(e.ctx, p) },
					func() error { return e.b.Put(e.ctx, p, []byte("k"), []byte("v")) },
					func() error {
						v, err := e.b.Get(e.ctx, p, []byte("k"))
						if err == nil && string(v) != "v" {
							return fmt.Errorf("%s: read %q", p, v)
						}
						return err
					},
				}
				if r%2 == 0 {
					steps = append(steps, func() error { return e.b.DropPartition(e.ctx, p) })
				}
				for _, step := range steps {
					if err := step(); err != nil {
						errs <- fmt.Errorf("worker %d round %d: %w", w, r, err)
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var want []string
	for w := 0; w < workers; w++ {
		for r := 1; r < rounds; r += 2 {
			want = append(want, fmt.Sprintf("p%d-%d", w, r))
		}
	}
	sort.Strings(want)
	require.Equal(t, want, partitionNames(t, e.b))
}

// testWritesRacingDrop writes into a partition from several goroutines
// while it is dropped, then creates it again. Every write either succeeded
// before the drop (and went with it) or failed with ErrPartitionNotFound;
// none lands in the partition created afterwards.
func testWritesRacingDrop(t *testing.T, e *env) {
	const writers, writes = 4, 50
	p := store.MustPartition("raced")
	for round := 0; round < 20; round++ {
		require.NoError(t, e.b.CreatePartition(e.ctx, p))
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, writers*writes)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				for i := 0; i < writes; i++ {
					k := []byte(fmt.Sprintf("w%d-%d", w, i))
					var err error
					if i%2 == 0 {
						err = e.b.Put(e.ctx, p, k, []byte("v"))
					} else {
						err = e.b.Batch(e.ctx, []store.Operation{store.PutOp(p, k, []byte("v"))})
					}
					if err != nil {
						errs <- err
					}
				}
			}(w)
		}
		close(start)
		require.NoError(t, e.b.DropPartition(e.ctx, p))
		wg.Wait()
		close(errs)
		for err := range errs {
			require.ErrorIs(t, err, store.ErrPartitionNotFound)
		}
		require.NoError(t, e.b.CreatePartition(e.ctx, p))
		require.Empty(t, collect(t, e.b, p, store.ScanOptions{}), "round %d: a write reached the dropped partition's successor", round)
		require.NoError(t, e.b.DropPartition(e.ctx, p))
	}
}
