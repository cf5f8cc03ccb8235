package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Migrate copies the database src into the target t (of any backend): a
// backup into a temporary directory under opts.TempDir, then a Restore of
// it, which verifies the target against it; the temporary backup is
// removed either way. It returns the restore's report.
func Migrate(ctx context.Context, src Source, t Target, opts Options) (*Report, error) {
	dir, err := os.MkdirTemp(opts.TempDir, "kalamdb-migrate-")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "backup")
	if _, err := Backup(ctx, src, tmp, opts); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	rep, err := Restore(ctx, tmp, t, opts)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return rep, nil
}

// Gate wraps a storage backend so that its writes can be paused for an
// online backup: Put, Delete, Batch, CreatePartition and DropPartition
// hold the gate shared, and Pause holds it alone. A write acknowledged
// before Pause returned is in what the backup reads; one that starts
// later waits until the backup resumes the writes; a batch is never half
// in. Reads are not held back.
type Gate struct {
	store.StorageBackend
	mu sync.RWMutex
}

// NewGate returns b behind a Gate.
func NewGate(b store.StorageBackend) *Gate { return &Gate{StorageBackend: b} }

// Pause waits for the writes in flight to finish, holds new ones back,
// and returns the function that lets them go; it fits Source.Pause.
func (g *Gate) Pause(ctx context.Context) (func(), error) {
	done := make(chan struct{})
	go func() {
		g.mu.Lock()
		close(done)
	}()
	select {
	case <-done:
		var once sync.Once
		return func() { once.Do(g.mu.Unlock) }, nil
	case <-ctx.Done():
		// Take the lock's eventual grant back in the background.
		go func() {
			<-done
			g.mu.Unlock()
		}()
		return nil, ctx.Err()
	}
}

// Put implements store.StorageBackend.
func (g *Gate) Put(ctx context.Context, p store.Partition, key, value []byte) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.StorageBackend.Put(ctx, p, key, value)
}

// Delete implements store.StorageBackend.
func (g *Gate) Delete(ctx context.Context, p store.Partition, key []byte) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.StorageBackend.Delete(ctx, p, key)
}

// Batch implements store.StorageBackend.
func (g *Gate) Batch(ctx context.Context, ops []store.Operation) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.StorageBackend.Batch(ctx, ops)
}

// CreatePartition implements store.StorageBackend.
func (g *Gate) CreatePartition(ctx context.Context, p store.Partition) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.StorageBackend.CreatePartition(ctx, p)
}

// DropPartition implements store.StorageBackend.
func (g *Gate) DropPartition(ctx context.Context, p store.Partition) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.StorageBackend.DropPartition(ctx, p)
}
