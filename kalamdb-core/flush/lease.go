package flush

import (
	"context"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
)

// LeaseName is the name of the lease under which table t is flushed and
// compacted when Options.Leases is set: the table's lease,
// lease.TableName.
func LeaseName(t *catalog.Table) string { return lease.TableName(t.ID) }

// takeLease takes the lease of tr for a flush or compaction, when
// Options.Leases is set, and keeps it renewed every third of its TTL on
// the Manager's clock while the work runs; release stops the renewals and
// gives the lease back. The caller holds tr.flushMu until it has called
// release.
func (m *Manager) takeLease(ctx context.Context, tr *tier) (release func(), err error) {
	if m.opts.Leases == nil {
		return func() {}, nil
	}
	l, err := m.opts.Leases.Acquire(ctx, LeaseName(tr.table()))
	if err != nil {
		return nil, fmt.Errorf("flush: %s: %w", tr.table().FullName(), err)
	}
	tr.lease = l
	stop := l.Keep(context.WithoutCancel(ctx), m.clock)
	return func() {
		stop()
		tr.lease = nil
		// A lease taken over meanwhile is the new holder's: Release
		// leaves it alone, and a failure only lets it expire.
		_ = l.Release(context.WithoutCancel(ctx))
	}, nil
}

// fencedBatch applies ops, a commit of tr's work, in one batch that also
// checks the lease of tr when one is held: a worker whose lease was taken
// over applies nothing (store.ErrConditionFailed). A worker that knows its
// lease lost (a renewal found it taken over) or about to expire sends
// nothing, and fails with an error wrapping store.ErrConditionFailed too
// (lease.Lease.Commit).
func (m *Manager) fencedBatch(ctx context.Context, tr *tier, ops []store.Operation) error {
	if tr.lease == nil {
		return m.b.Batch(ctx, ops)
	}
	return tr.lease.Commit(func(check store.Operation) error {
		return m.b.Batch(ctx, append([]store.Operation{check}, ops...))
	})
}

// leaseCheckBytes bounds what a lease check adds to a batch: its key and
// the lease record it compares.
const leaseCheckBytes = 256

// caps returns the backend's capabilities as the commits of tr may use
// them: with a lease held, one operation and leaseCheckBytes fewer per
// batch, which the lease's check takes (fencedBatch); on a shared backend,
// two more for the manifest version (versionOps).
func (m *Manager) caps(tr *tier) store.Capabilities {
	c := m.b.Capabilities()
	ops, size := 0, 0
	if tr.lease != nil {
		ops, size = 1, leaseCheckBytes
	}
	if m.shared {
		// The check and the raise of the manifest version (versionOps).
		ops, size = ops+2, size+versionOpsBytes
	}
	if c.MaxBatchOps > 0 {
		c.MaxBatchOps = max(c.MaxBatchOps-ops, 1)
	}
	if c.MaxBatchBytes > 0 {
		c.MaxBatchBytes = max(c.MaxBatchBytes-size, 1)
	}
	return c
}
