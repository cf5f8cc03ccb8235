package flush

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
)

// manifestFormat is the version of the segment records.
const manifestFormat = 1

// Segment describes one committed segment: the record the per-table
// manifest keeps for it. A segment is committed exactly when its record is
// in the manifest; a file without a record is an orphan that recovery
// removes.
type Segment struct {
	Format    int    `json:"format"`
	TableID   uint64 `json:"table_id"`
	Namespace string `json:"namespace"`
	Table     string `json:"table"`
	// ID is the segment's number within its table, increasing with every
	// flush: for a given key, a later segment holds a newer version.
	ID uint64 `json:"id"`
	// User owns the rows of a user-table segment; "" for a shared table.
	User string `json:"user,omitempty"`
	// Path is the file, relative to the Parquet directory.
	Path string `json:"path"`
	// Rows counts the versions in the file, Tombstones the deleted ones.
	Rows       int64 `json:"rows"`
	Tombstones int64 `json:"tombstones"`
	// MinKey and MaxKey bound the keys of the file's versions (full backend
	// keys, the user prefix included).
	MinKey []byte `json:"min_key"`
	MaxKey []byte `json:"max_key"`
	// MinSeq and MaxSeq bound the _seq of the file's versions.
	MinSeq    int64 `json:"min_seq"`
	MaxSeq    int64 `json:"max_seq"`
	RowGroups int   `json:"row_groups"`
	// Bytes is the segment's length (0 in records written before it was
	// kept: the store is then asked).
	Bytes   int64     `json:"bytes,omitempty"`
	Created time.Time `json:"created"`
	// PendingPurge marks a segment whose commit the storage backend's batch
	// limits cut into several batches, and whose flushed versions may still
	// be in the buffer too: until a settle removes them (Manager.settle),
	// no flush or compaction of its table runs.
	PendingPurge bool `json:"pending_purge,omitempty"`
}

// Manifest keys in layout.Manifests: the table id, the user (encoded, ""
// for shared tables) and the segment id, so that one user's segments are
// one prefix scan and a table's are another.
func manifestTablePrefix(tableID uint64) []byte { return keys.AppendUint64(nil, tableID) }

func manifestUserPrefix(tableID uint64, user string) []byte {
	return keys.AppendString(manifestTablePrefix(tableID), user)
}

func manifestKey(s *Segment) []byte {
	return keys.AppendUint64(manifestUserPrefix(s.TableID, s.User), s.ID)
}

func encodeSegment(s *Segment) ([]byte, error) {
	s.Format = manifestFormat
	return json.Marshal(s)
}

func decodeSegment(key, value []byte) (*Segment, error) {
	s := &Segment{}
	if err := json.Unmarshal(value, s); err != nil {
		return nil, fmt.Errorf("%w: manifest record %x: %v", core.ErrCorrupt, key, err)
	}
	if s.Format != manifestFormat {
		return nil, fmt.Errorf("%w: manifest record %x has format %d", core.ErrCorrupt, key, s.Format)
	}
	if want := manifestKey(s); string(want) != string(key) {
		return nil, fmt.Errorf("%w: manifest record %x describes segment %d of table %d, user %q", core.ErrCorrupt, key, s.ID, s.TableID, s.User)
	}
	return s, nil
}

// loadManifests reads every segment record, by table id.
func loadManifests(ctx context.Context, b store.StorageBackend) (map[uint64][]*Segment, error) {
	it, err := b.Scan(ctx, layout.Manifests, store.ScanOptions{})
	if err != nil {
		return nil, fmt.Errorf("flush: reading the manifests: %w", err)
	}
	defer it.Close()
	out := map[uint64][]*Segment{}
	for it.Next() {
		if isStateKey(it.Key()) {
			continue
		}
		s, err := decodeSegment(it.Key(), it.Value())
		if err != nil {
			return nil, err
		}
		out[s.TableID] = append(out[s.TableID], s)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("flush: reading the manifests: %w", err)
	}
	return out, nil
}

// DecodeManifestRecord decodes one segment record of layout.Manifests (its
// key and value, for which IsSegmentRecord holds), as a backup reads them to
// find the segments a database holds. A record that is not one of this
// version's fails with core.ErrCorrupt.
func DecodeManifestRecord(key, value []byte) (Segment, error) {
	s, err := decodeSegment(key, value)
	if err != nil {
		return Segment{}, err
	}
	return *s, nil
}
