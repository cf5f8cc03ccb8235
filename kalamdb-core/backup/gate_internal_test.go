package backup

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
)

// probe reports, at every Scan and at the end of every iteration, whether
// a write could pass the gate then.
type probe struct {
	store.StorageBackend
	gate     *Gate
	snapshot bool
	scans    []bool // per Scan: writes held back when it was called
	ends     []bool // per iterator: writes held back when it ended
}

func (p *probe) held() bool {
	if p.gate.mu.TryRLock() {
		p.gate.mu.RUnlock()
		return false
	}
	return true
}

func (p *probe) Capabilities() store.Capabilities {
	c := p.StorageBackend.Capabilities()
	c.SnapshotScans = p.snapshot
	return c
}

func (p *probe) Scan(ctx context.Context, part store.Partition, opts store.ScanOptions) (store.Iterator, error) {
	p.scans = append(p.scans, p.held())
	it, err := p.StorageBackend.Scan(ctx, part, opts)
	if err != nil {
		return nil, err
	}
	return &probeIter{Iterator: it, p: p}, nil
}

type probeIter struct {
	store.Iterator
	p    *probe
	done bool
}

func (i *probeIter) Next() bool {
	ok := i.Iterator.Next()
	if !ok && !i.done {
		i.done = true
		i.p.ends = append(i.p.ends, i.p.held())
	}
	return ok
}

// Writes are held back while the backup opens its snapshots, and only
// then, on a backend with snapshot scans; for the whole copy without.
func TestBackupPausesWritesAsLongAsItNeeds(t *testing.T) {
	ctx := context.Background()
	for _, snapshot := range []bool{true, false} {
		mem := memory.New()
		for _, name := range []string{"a", "b", "c"} {
			p := store.MustPartition(name)
			require.NoError(t, mem.CreatePartition(ctx, p))
			require.NoError(t, mem.Put(ctx, p, []byte("k"), []byte("v")))
		}
		gate := NewGate(mem)
		pr := &probe{StorageBackend: gate, gate: gate, snapshot: snapshot}
		_, err := Backup(ctx, Source{Backend: pr, Name: "memory", Pause: gate.Pause}, filepath.Join(t.TempDir(), "b"), Options{})
		require.NoError(t, err)
		require.Equal(t, []bool{true, true, true}, pr.scans, "every snapshot opened while writes are held (snapshot scans %v)", snapshot)
		require.Equal(t, []bool{!snapshot, !snapshot, !snapshot}, pr.ends, "writes held during the copy only without snapshot scans")
		require.False(t, pr.held(), "writes go on after the backup")
	}
}
