package flush

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// recover loads the manifests and brings the files in line with them (see
// Open).
func (m *Manager) recover(ctx context.Context) error {
	recs, err := loadManifests(ctx, m.b)
	if err != nil {
		return err
	}
	if m.shared {
		// Another server may have created a table and flushed it since
		// this one read the catalog: its records are no orphans.
		if _, err := m.db.Catalog().Refresh(ctx); err != nil {
			return fmt.Errorf("flush: recovery: %w", err)
		}
	}
	ts, err := m.db.Catalog().Tables("")
	if err != nil {
		return err
	}
	live := map[uint64]*catalog.Table{}
	for _, t := range ts {
		if t.Type != catalog.StreamTable {
			live[t.ID] = t
		}
	}
	var orphans []*Segment
	recorded := map[string]*Segment{}
	for id, segs := range recs {
		t := live[id]
		if t == nil {
			orphans = append(orphans, segs...)
			continue
		}
		tr := m.tier(t)
		for _, s := range segs {
			recorded[s.Path] = s
			tr.addRecorded(&segFile{Segment: *s})
		}
	}
	if len(orphans) > 0 {
		// The files it cannot remove are unrecorded now: the sweep below
		// meets them again and reports them.
		if _, err := m.removeSegments(ctx, orphans, orphans); err != nil {
			return fmt.Errorf("flush: recovery: %w", err)
		}
	}
	seen := map[string]bool{}
	if err := m.sweep(ctx, recorded, seen); err != nil {
		return fmt.Errorf("flush: recovery: %w", err)
	}
	var missing []string
	for p := range recorded {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 && m.shared {
		// Another server may have dropped the table or compacted the
		// segment (its file then goes by the garbage rule, or at once
		// with GCGrace 0) since the manifests were read.
		if missing, err = m.stillRecorded(ctx, missing); err != nil {
			return fmt.Errorf("flush: recovery: %w", err)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: flush: %d committed segment file(s) are missing, first %s", core.ErrCorrupt, len(missing), missing[0])
	}
	return nil
}

// sweep lists the store and removes the garbage: every temporary file and
// every segment that no manifest records, once older than the grace
// period (a younger one may be an upload about to commit); it notes those
// it cannot remove in leftovers and marks the recorded segments it sees.
func (m *Manager) sweep(ctx context.Context, recorded map[string]*Segment, seen map[string]bool) error {
	now := time.Now()
	return m.store.List(ctx, "", func(o segment.ObjectInfo) error {
		if recorded[o.Name] != nil {
			seen[o.Name] = true
			return nil
		}
		name := path.Base(o.Name)
		_, _, isSeg := segment.ParseFileName(name)
		if !isSeg && !(segment.IsTemp(name) && strings.HasPrefix(name, "seg-")) {
			return nil // not ours
		}
		if m.opts.GCGrace > 0 && !o.ModTime.IsZero() && now.Sub(o.ModTime) < m.opts.GCGrace {
			m.young++
			return nil
		}
		m.cache.Forget(o.Name)
		if err := m.store.Remove(ctx, o.Name); err != nil && !segment.IsNotExist(err) {
			m.leftovers = append(m.leftovers, fmt.Errorf("flush: recovery: removing %s: %w", o.Name, err))
		}
		return nil
	})
}

// stillRecorded returns the paths of paths that a manifest record names,
// read now.
func (m *Manager) stillRecorded(ctx context.Context, paths []string) ([]string, error) {
	recs, err := loadManifests(ctx, m.b)
	if err != nil {
		return nil, err
	}
	now := map[string]bool{}
	for _, segs := range recs {
		for _, s := range segs {
			now[s.Path] = true
		}
	}
	var out []string
	for _, p := range paths {
		if now[p] {
			out = append(out, p)
		}
	}
	return out, nil
}
