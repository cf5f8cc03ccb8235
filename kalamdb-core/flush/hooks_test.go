package flush

import (
	"context"
	"time"
)

// CompactDue runs, for a test, the compaction that a round of the
// scheduler runs after its flushes on table ns.name.
func (m *Manager) CompactDue(ctx context.Context, ns, name string) (CompactResult, error) {
	t, err := m.db.Catalog().Table(ns, name)
	if err != nil {
		return CompactResult{}, err
	}
	return m.compactDue(ctx, t, TriggerManual)
}

// SetLockAllAbove changes, for a test, the number of keys above which a
// commit locks the whole table (and may skip re-reading the buffer), and
// returns the function that restores it.
func SetLockAllAbove(n int) (restore func()) {
	old := lockAllAbove
	lockAllAbove = n
	return func() { lockAllAbove = old }
}

// CollectGarbageAt is CollectGarbage as if the wall clock read now.
func (m *Manager) CollectGarbageAt(ctx context.Context, now time.Time) (int, error) {
	return m.collectGarbage(ctx, now)
}
