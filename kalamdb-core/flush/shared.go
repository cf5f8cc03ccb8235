package flush

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// On a backend several servers share (store.Capabilities.MultiProcess), a
// table's segment list is the manifest in the backend, and each server's
// list is a cache of it (ADR-018). Two more records of layout.Manifests,
// beside the segment records of a table, keep that cache honest:
//
//   - the manifest version, a counter that every commit changing the
//     table's segment records (a flush, a compaction) raises in its batch,
//     and that a drop deletes. A server compares it with the version its
//     list was read at before it trusts the list: a read reads it after
//     the buffer (tables.SharedSource.Sync), a scan again when it ends, and
//     a write puts a check of it in its batch (tables.SharedSource.Pin);
//   - the next segment id, taken by compare-and-swap, so that two servers
//     (one of them working under a lease that expired) never write the
//     same file name.
//
// Their keys are the table's prefix followed by two 0x00 bytes, which no
// encoded user id starts with (keys.AppendString escapes 0x00 as 0x00
// 0xFF and ends with 0x00 0x01), so they sort before the table's segment
// records and never decode as one.
const (
	stateVersion = 'v'
	stateNextID  = 'n'
)

func stateKey(tableID uint64, kind byte) []byte {
	return append(manifestTablePrefix(tableID), 0, 0, kind)
}

func versionKey(tableID uint64) []byte { return stateKey(tableID, stateVersion) }

func nextIDKey(tableID uint64) []byte { return stateKey(tableID, stateNextID) }

// isStateKey reports whether key, of layout.Manifests, is one of the state
// records above rather than a segment record.
func isStateKey(key []byte) bool {
	return len(key) == 11 && key[8] == 0 && key[9] == 0
}

// IsSegmentRecord reports whether key, a key of layout.Manifests, is the
// record of a segment (DecodeManifestRecord decodes it) rather than one of
// the records that keep a table's segment list in step across servers.
func IsSegmentRecord(key []byte) bool { return !isStateKey(key) }

func encodeCounter(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeCounter(key, raw []byte) (uint64, error) {
	if len(raw) != 8 {
		return 0, fmt.Errorf("flush: manifest record %x holds %d bytes, not a counter", key, len(raw))
	}
	return binary.BigEndian.Uint64(raw), nil
}

// getOptional reads key of layout.Manifests; nil when it is absent.
func (m *Manager) getOptional(ctx context.Context, key []byte) ([]byte, error) {
	raw, err := m.b.Get(ctx, layout.Manifests, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return raw, err
}

// loadTableManifest reads the segment records of one table, in key order
// (by user, then segment id).
func loadTableManifest(ctx context.Context, b store.StorageBackend, tableID uint64) ([]*Segment, error) {
	it, err := b.Scan(ctx, layout.Manifests, store.ScanOptions{Prefix: manifestTablePrefix(tableID)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*Segment
	for it.Next() {
		if isStateKey(it.Key()) {
			continue
		}
		s, err := decodeSegment(it.Key(), it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, it.Close()
}

// sync brings tr's segment list in line with the manifest in the backend,
// when other servers share it: it reads the manifest version, and when it
// is not the one the list was read at, reads the table's records again.
// Segments the new list still holds keep what was learnt of their files.
// The list is the manifest's alone: a segment this server listed for a
// commit whose outcome it does not know is dropped when the manifest does
// not record it (its versions are still buffered, as a commit's purge
// follows the commit). It does nothing on a backend of one process.
func (tr *tier) sync(ctx context.Context) error {
	if !tr.m.shared {
		return nil
	}
	// A write that fails its check from now on asks again.
	tr.stale.Store(false)
	id := tr.table().ID
	raw, err := tr.m.getOptional(ctx, versionKey(id))
	if err != nil {
		tr.stale.Store(true)
		return fmt.Errorf("flush: %s: reading the manifest version: %w", tr.table().FullName(), err)
	}
	current := func() bool {
		tr.mu.RLock()
		defer tr.mu.RUnlock()
		return tr.dropped || (tr.synced && bytes.Equal(raw, tr.version))
	}
	if current() {
		return nil
	}
	// One read of the records at a time; one that read them at raw or
	// later meanwhile serves this one too (raw was read before it).
	tr.syncMu.Lock()
	defer tr.syncMu.Unlock()
	if current() {
		return nil
	}
	recs, err := loadTableManifest(ctx, tr.m.b, id)
	if err != nil {
		tr.stale.Store(true)
		return fmt.Errorf("flush: %s: reading the manifest: %w", tr.table().FullName(), err)
	}
	type segKey struct {
		user string
		id   uint64
	}
	tr.mu.Lock()
	old := map[segKey]*segFile{}
	for _, segs := range tr.users {
		for _, f := range segs {
			old[segKey{f.User, f.ID}] = f
		}
	}
	users := map[string][]*segFile{}
	for _, s := range recs {
		k := segKey{s.User, s.ID}
		f := old[k]
		if f != nil {
			delete(old, k)
			f.PendingPurge = s.PendingPurge
		} else {
			f = &segFile{Segment: *s, listed: true}
			f.refs.Store(1)
		}
		users[s.User] = append(users[s.User], f)
		if s.ID >= tr.nextID {
			tr.nextID = s.ID + 1
		}
	}
	tr.users = users
	var gone []*segFile
	for _, f := range old {
		f.listed = false
		gone = append(gone, f)
	}
	tr.version, tr.synced = raw, true
	tr.mu.Unlock()
	for _, f := range gone {
		tr.release(f)
	}
	return nil
}

// Sync implements tables.SharedSource.
func (tr *tier) Sync(ctx context.Context) error { return tr.sync(ctx) }

// Pin implements tables.SharedSource: the check of the manifest version
// that the list lookups read is at. The list is read again first when a
// write failed its check since (Invalidate), or was never read.
func (tr *tier) Pin(ctx context.Context) (store.Operation, error) {
	tr.mu.RLock()
	synced := tr.synced
	tr.mu.RUnlock()
	if !synced || tr.stale.Load() {
		if err := tr.sync(ctx); err != nil {
			return store.Operation{}, err
		}
	}
	tr.mu.RLock()
	v := tr.version
	tr.mu.RUnlock()
	key := versionKey(tr.table().ID)
	if v == nil {
		return store.CheckAbsentOp(layout.Manifests, key), nil
	}
	return store.CheckValueOp(layout.Manifests, key, v), nil
}

// Invalidate implements tables.SharedSource.
func (tr *tier) Invalidate() { tr.stale.Store(true) }

// versionCheck is a VersionIter of a scan over a list read at a manifest
// version: its Close reads the version again and fails with
// tables.ErrSourceChanged when a commit moved it meanwhile, since the
// scan of the buffer beside it may then have missed versions that moved
// from the buffer into a segment the list does not hold.
type versionCheck struct {
	tables.VersionIter
	ctx     context.Context
	tr      *tier
	version []byte
	closed  bool
	err     error
}

// Remaining implements tables.Remainder when the scan does.
func (v *versionCheck) Remaining() int {
	if r, ok := v.VersionIter.(tables.Remainder); ok {
		return r.Remaining()
	}
	return 0
}

func (v *versionCheck) Close() error {
	if v.closed {
		return v.err
	}
	v.closed = true
	if v.err = v.VersionIter.Close(); v.err != nil {
		return v.err
	}
	raw, err := v.tr.m.getOptional(v.ctx, versionKey(v.tr.table().ID))
	switch {
	case err != nil:
		v.err = fmt.Errorf("flush: %s: reading the manifest version: %w", v.tr.table().FullName(), err)
	case !bytes.Equal(raw, v.version):
		v.err = fmt.Errorf("flush: %s: %w", v.tr.table().FullName(), tables.ErrSourceChanged)
	}
	return v.err
}

// syncForWork reads tr's manifest again before a flush or compaction,
// under the table's lease, and notes the version its commits raise.
func (m *Manager) syncForWork(ctx context.Context, tr *tier) error {
	if !m.shared {
		return nil
	}
	tr.Invalidate()
	if err := tr.sync(ctx); err != nil {
		return err
	}
	tr.mu.RLock()
	tr.workVersion = tr.version
	tr.mu.RUnlock()
	return nil
}

// versionOps returns the operations a commit of tr's work adds to its
// first batch on a shared backend: a check that the manifest version is
// the one this worker knows (a drop deletes it), and its raise; and the
// value raised to, which the caller keeps (keepVersion) once the batch has
// applied.
func (m *Manager) versionOps(tr *tier) ([]store.Operation, []byte, error) {
	if !m.shared {
		return nil, nil, nil
	}
	key := versionKey(tr.table().ID)
	var n uint64
	check := store.CheckAbsentOp(layout.Manifests, key)
	if tr.workVersion != nil {
		var err error
		if n, err = decodeCounter(key, tr.workVersion); err != nil {
			return nil, nil, err
		}
		check = store.CheckValueOp(layout.Manifests, key, tr.workVersion)
	}
	next := encodeCounter(n + 1)
	return []store.Operation{check, store.PutOp(layout.Manifests, key, next)}, next, nil
}

// versionOpsBytes bounds what versionOps adds to a batch.
const versionOpsBytes = 64

// allocID returns a new segment id of tr: from the table's counter in the
// backend, by compare-and-swap, when the backend is shared.
func (m *Manager) allocID(ctx context.Context, tr *tier) (uint64, error) {
	if !m.shared {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		id := tr.nextID
		tr.nextID++
		return id, nil
	}
	key := nextIDKey(tr.table().ID)
	for attempt := 0; ; attempt++ {
		raw, err := m.getOptional(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("flush: %s: reading the next segment id: %w", tr.table().FullName(), err)
		}
		tr.mu.RLock()
		id := tr.nextID
		tr.mu.RUnlock()
		check := store.CheckAbsentOp(layout.Manifests, key)
		if raw != nil {
			n, err := decodeCounter(key, raw)
			if err != nil {
				return 0, err
			}
			id = max(id, n)
			check = store.CheckValueOp(layout.Manifests, key, raw)
		}
		err = m.b.Batch(ctx, []store.Operation{check, store.PutOp(layout.Manifests, key, encodeCounter(id+1))})
		if err == nil {
			tr.mu.Lock()
			tr.nextID = max(tr.nextID, id+1)
			tr.mu.Unlock()
			return id, nil
		}
		if !errors.Is(err, store.ErrConditionFailed) || attempt >= 100 {
			return 0, fmt.Errorf("flush: %s: taking a segment id: %w", tr.table().FullName(), err)
		}
	}
}
