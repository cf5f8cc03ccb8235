package flush

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

func parent(p string) string { return path.Dir(p) }

// recover loads the manifests and brings the files in line with them (see
// Open).
func (m *Manager) recover(ctx context.Context) error {
	recs, err := loadManifests(ctx, m.b)
	if err != nil {
		return err
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
			tr.add(&segFile{Segment: *s})
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
	dirs := map[string]bool{}
	if err := m.sweep(".", recorded, seen, dirs); err != nil {
		return fmt.Errorf("flush: recovery: %w", err)
	}
	removeEmptyDirs(m.fs, dirs)
	var missing []string
	for p := range recorded {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: flush: %d committed segment file(s) are missing, first %s", core.ErrCorrupt, len(missing), missing[0])
	}
	return nil
}

// sweep walks dir and removes every temporary file and every segment file
// that no manifest records (noting those it cannot remove in leftovers);
// it marks the recorded files it sees.
func (m *Manager) sweep(dir string, recorded map[string]*Segment, seen, dirs map[string]bool) error {
	entries, err := m.fs.ReadDir(dir)
	if segment.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, e := range entries {
		p := e.Name()
		if dir != "." {
			p = dir + "/" + p
		}
		if e.IsDir() {
			dirs[p] = true
			if err := m.sweep(p, recorded, seen, dirs); err != nil {
				return err
			}
			continue
		}
		name := e.Name()
		ours := strings.HasSuffix(name, segment.TempExt) && strings.HasPrefix(name, "seg-")
		if _, _, ok := segment.ParseFileName(name); ok {
			if recorded[p] != nil {
				seen[p] = true
				continue
			}
			ours = true
		}
		if ours {
			m.cache.Forget(p)
			if err := m.fs.Remove(p); err != nil && !segment.IsNotExist(err) {
				m.leftovers = append(m.leftovers, fmt.Errorf("flush: recovery: removing %s: %w", p, err))
			}
		}
	}
	return nil
}

// removeEmptyDirs removes the directories of dirs that are empty, deepest
// first; a directory that is not empty stays.
func removeEmptyDirs(fsys segment.FS, dirs map[string]bool) {
	list := make([]string, 0, len(dirs))
	for d := range dirs {
		list = append(list, d)
	}
	sort.Slice(list, func(i, j int) bool { return strings.Count(list[i], "/") > strings.Count(list[j], "/") })
	for _, d := range list {
		if entries, err := fsys.ReadDir(d); err == nil && len(entries) == 0 {
			_ = fsys.Remove(d)
		}
	}
}
