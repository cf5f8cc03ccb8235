package flush

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// garbage remembers, between collections, since when each object of the
// segment store has been seen unrecorded (see CollectGarbage).
type garbage struct {
	mu    sync.Mutex
	since map[string]time.Time
	last  time.Time // of the last collection, by the Manager's clock
}

// CollectGarbage removes the objects of the segment store that no manifest
// records, as Open does, on a store other servers share while they run:
// an object is removed once it has been seen unrecorded by collections
// Options.GCGrace apart and is itself older than that. The files of
// segments that a compaction or a drop on any server unlisted go so, while
// a server that still reads one finishes its read (ADR-018). It returns
// how many objects it removed, and the first failure to remove one. With a
// GCGrace that is negative (no grace) it removes nothing: Open does.
//
// On a backend several servers share, the scheduler (Start) calls it
// every half GCGrace.
func (m *Manager) CollectGarbage(ctx context.Context) (int, error) {
	return m.collectGarbage(ctx, time.Now())
}

func (m *Manager) collectGarbage(ctx context.Context, now time.Time) (int, error) {
	grace := m.opts.GCGrace
	if grace <= 0 {
		return 0, nil
	}
	recs, err := loadManifests(ctx, m.b)
	if err != nil {
		return 0, err
	}
	recorded := map[string]bool{}
	for _, segs := range recs {
		for _, s := range segs {
			recorded[s.Path] = true
		}
	}
	m.gc.mu.Lock()
	defer m.gc.mu.Unlock()
	if m.gc.since == nil {
		m.gc.since = map[string]time.Time{}
	}
	seen := map[string]bool{}
	removed := 0
	var first error
	err = m.store.List(ctx, "", func(o segment.ObjectInfo) error {
		if recorded[o.Name] {
			return nil
		}
		name := path.Base(o.Name)
		_, _, isSeg := segment.ParseFileName(name)
		if !isSeg && !(segment.IsTemp(name) && strings.HasPrefix(name, "seg-")) {
			return nil // not ours
		}
		seen[o.Name] = true
		since, ok := m.gc.since[o.Name]
		if !ok {
			m.gc.since[o.Name] = now
			return nil
		}
		if now.Sub(since) < grace || (!o.ModTime.IsZero() && now.Sub(o.ModTime) < grace) {
			return nil
		}
		m.cache.Forget(o.Name)
		if err := m.store.Remove(ctx, o.Name); err != nil && !segment.IsNotExist(err) {
			if first == nil {
				first = fmt.Errorf("flush: removing garbage %s: %w", o.Name, err)
			}
			return nil
		}
		delete(m.gc.since, o.Name)
		removed++
		return nil
	})
	for name := range m.gc.since {
		if !seen[name] {
			delete(m.gc.since, name)
		}
	}
	if err != nil {
		return removed, fmt.Errorf("flush: listing the segment store: %w", err)
	}
	return removed, first
}

// collectDue runs CollectGarbage from the scheduler on a shared backend,
// every half GCGrace of the Manager's clock.
func (m *Manager) collectDue(ctx context.Context) {
	if !m.shared || m.opts.GCGrace <= 0 {
		return
	}
	now := m.clock.Now()
	m.gc.mu.Lock()
	due := m.gc.last.IsZero() || now.Sub(m.gc.last) >= m.opts.GCGrace/2
	if due {
		m.gc.last = now
	}
	m.gc.mu.Unlock()
	if due {
		// A failure leaves garbage for the next collection.
		_, _ = m.CollectGarbage(ctx)
	}
}
