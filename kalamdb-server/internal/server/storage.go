package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"

	"gocloud.dev/blob"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/backup"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/backends"
	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

// Storage is a database opened without serving it, for the commands that
// copy one (backup, restore, migrate): its storage backend, and where its
// segments live.
type Storage struct {
	// Backend is the storage backend; Name its canonical name.
	Backend store.StorageBackend
	Name    string
	cfg     *config.Config
	bucket  *blob.Bucket
}

// OpenStorage checks cfg and opens its storage backend. An embedded
// engine in use by a running server is refused by the engine (the
// database is in use); a server backend (Redis, etcd) is not, and copying
// it while servers write is the online backup's work.
func OpenStorage(ctx context.Context, cfg *config.Config, set *backends.Set) (*Storage, error) {
	canonical, err := Check(cfg, set)
	if err != nil {
		return nil, err
	}
	b, err := set.Registry().Open(ctx, canonical, backendSection(cfg, set, canonical))
	if err != nil {
		return nil, err
	}
	return &Storage{Backend: b, Name: canonical, cfg: cfg}, nil
}

// Where describes where the database is, for messages: the backend and
// the segments' location.
func (s *Storage) Where() string {
	return fmt.Sprintf("storage backend %q, segments %s", s.Name, s.cfg.Segments().Redacted)
}

// Segments returns the store of the database's segments: under the
// database's instance id in storage.parquet_dir, or in the object store of
// storage.segments_url (as the server opens them, without the disk cache).
// A database without an instance id has never flushed: nil then, unless
// create, which stores a new id as the server would.
func (s *Storage) Segments(ctx context.Context, create bool) (segment.Store, error) {
	id, err := storedInstanceID(ctx, s.Backend)
	if err != nil {
		return nil, err
	}
	if id == "" {
		if !create {
			return nil, nil
		}
		srv := &Server{backend: s.Backend}
		if id, err = srv.instanceID(ctx); err != nil {
			return nil, err
		}
	}
	seg := s.cfg.Segments()
	if !seg.Remote() {
		dir := filepath.Join(seg.Dir, id)
		return segment.FSStore(segment.DirFS(dir), dir), nil
	}
	if s.bucket == nil {
		b, err := blob.OpenBucket(ctx, seg.URL)
		if err != nil {
			return nil, fmt.Errorf("storage.segments_url: opening %s: %w", seg.Redacted, err)
		}
		s.bucket = b
	}
	st := objstore.New(blob.PrefixedBucket(s.bucket, id+"/"), seg.Redacted+" (prefix "+id+"/)", objstore.Options{})
	if err := st.Check(ctx); err != nil {
		return nil, fmt.Errorf("storage.segments_url: the object store cannot be reached: %w", err)
	}
	return st, nil
}

// storedInstanceID returns the instance id of the database in b, as
// instanceID gives it but without creating one: the id a database created
// before the catalog kept one has in metaPartition, else the catalog's
// database id; "" when there is neither (a database that never served).
func storedInstanceID(ctx context.Context, b store.StorageBackend) (string, error) {
	v, err := b.Get(ctx, metaPartition, instanceKey)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPartitionNotFound) {
		v, err = b.Get(ctx, layout.Catalog, layout.DatabaseIDKey())
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrPartitionNotFound) {
			return "", nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("reading the instance id: %w", err)
	}
	if _, herr := hex.DecodeString(string(v)); herr != nil || len(v) != 32 {
		return "", fmt.Errorf("the instance id stored in the backend is %q, not 32 hex digits: the backend's data is damaged", v)
	}
	return string(v), nil
}

// Close closes the backend and the object store's bucket.
func (s *Storage) Close() error {
	err := s.Backend.Close()
	if s.bucket != nil {
		err = errors.Join(err, s.bucket.Close())
	}
	return err
}

// ObjectStores opens the object-store URL of a backup's location with the
// object stores the server links (those of storage.segments_url); it fits
// backup.Options.ObjectStores.
func ObjectStores(ctx context.Context, url string) (segment.Store, func() error, error) {
	st, b, err := objstore.Open(ctx, url, objstore.Options{})
	if err != nil {
		return nil, nil, err
	}
	return st, b.Close, nil
}

// checkNoRestore refuses a database that holds an unfinished restore.
func checkNoRestore(ctx context.Context, b store.StorageBackend) error {
	ok, err := b.PartitionExists(ctx, backup.RestoreMarker)
	if err != nil {
		return fmt.Errorf("checking for an unfinished restore: %w", err)
	}
	if ok {
		return fmt.Errorf("the database holds an unfinished restore (partition %s): it is not whole; run 'kalamdb-server restore --force' again to finish it", backup.RestoreMarker)
	}
	return nil
}

// Backup writes an online backup of the running server's database to dest
// (a directory, a .tar.gz file or an object-store URL; see package
// backup). Writes are paused while the backup opens one snapshot of every
// partition (for the whole copy on a backend without snapshot scans), and
// segment removals (compactions, drops) are deferred until the segments
// are copied.
func (s *Server) Backup(ctx context.Context, dest string) (*backup.Index, error) {
	s.log.Info("online backup started", "to", dest, "backend", s.name)
	idx, err := backup.Backup(ctx, backup.Source{
		Backend: s.gate, Name: s.name, Segments: s.segHold,
		Pause: s.gate.Pause, HoldSegments: s.segHold.Hold,
	}, dest, backup.Options{ObjectStores: ObjectStores, Progress: func(p backup.Progress) {
		s.log.Debug("online backup", "file", p.File, "keys", p.Keys, "bytes", p.Bytes)
	}})
	if err != nil {
		s.log.Error("online backup failed", "to", dest, "err", err)
		return nil, err
	}
	keys, bytes := idx.Totals()
	s.log.Info("online backup done", "to", dest, "partitions", len(idx.Partitions), "keys", keys, "segments", len(idx.Segments), "bytes", bytes)
	return idx, nil
}
