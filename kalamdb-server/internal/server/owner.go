package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// A Parquet directory belongs to exactly one database. Its segments are
// recorded in the manifests of the backend that flushed them, and opening
// the cold tier removes every segment file that the backend's manifests do
// not record (the leftovers of an interrupted flush). Pointing a second
// database at the same directory, by switching storage.backend without
// changing storage.parquet_dir for example, would delete the first one's
// flushed rows. So the server gives each database an instance id, kept in
// the backend, writes it into the Parquet directory it uses, and refuses a
// directory that names another instance.

// metaPartition holds the server's own records in the backend.
var metaPartition = store.MustPartition("server:meta")

var instanceKey = []byte("instance_id")

// ownerFile is the marker that binds a Parquet directory to an instance.
const ownerFile = ".kalamdb-owner"

type ownerRecord struct {
	Instance string `json:"instance"`
	Backend  string `json:"backend"`
}

// instanceID returns the id of the database in the backend, creating it on
// first use.
func (s *Server) instanceID(ctx context.Context) (string, error) {
	if err := s.backend.CreatePartition(ctx, metaPartition); err != nil {
		return "", fmt.Errorf("creating %s: %w", metaPartition, err)
	}
	v, err := s.backend.Get(ctx, metaPartition, instanceKey)
	if err == nil {
		return string(v), nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("reading the instance id: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := s.backend.Put(ctx, metaPartition, instanceKey, []byte(id)); err != nil {
		return "", fmt.Errorf("storing the instance id: %w", err)
	}
	return id, nil
}

// parquetDir returns the Parquet directory to use. A durable backend uses
// storage.parquet_dir, claimed for its instance; a non-durable one (memory)
// gets a fresh temporary directory, removed at shutdown, since its
// manifests die with it.
func (s *Server) parquetDir(ctx context.Context, durable bool) (string, error) {
	if !durable {
		dir, err := os.MkdirTemp("", "kalamdb-parquet-")
		if err != nil {
			return "", fmt.Errorf("creating a temporary Parquet directory: %w", err)
		}
		s.tempParquet = dir
		s.log.Warn("non-durable backend: flushed Parquet segments go to a temporary directory, removed at shutdown (storage.parquet_dir is not used)", "dir", dir)
		return dir, nil
	}
	dir := s.cfg.Storage.ParquetDir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("storage.parquet_dir: %w", err)
	}
	id, err := s.instanceID(ctx)
	if err != nil {
		return "", err
	}
	marker := filepath.Join(dir, ownerFile)
	data, err := os.ReadFile(marker)
	switch {
	case err == nil:
		var rec ownerRecord
		if jerr := json.Unmarshal(data, &rec); jerr != nil || rec.Instance == "" {
			return "", fmt.Errorf("storage.parquet_dir %s: %s is unreadable; it should name the database that owns the directory", dir, marker)
		}
		if rec.Instance != id {
			return "", fmt.Errorf("storage.parquet_dir %s belongs to another database (a %s backend, instance %s); this %s backend is instance %s: give each database its own parquet_dir, or its flushed rows would be deleted",
				dir, rec.Backend, rec.Instance, s.name, id)
		}
		return dir, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("storage.parquet_dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("storage.parquet_dir: %w", err)
	}
	for _, e := range entries {
		if e.Name() == ownerFile+".tmp" {
			continue // a claim interrupted by a crash
		}
		return "", fmt.Errorf("storage.parquet_dir %s is not empty and has no %s naming its database: it may hold another database's segments, which opening would delete; use an empty directory",
			dir, ownerFile)
	}
	data, _ = json.Marshal(ownerRecord{Instance: id, Backend: s.name})
	if err := writeFileSynced(marker, data); err != nil {
		return "", fmt.Errorf("storage.parquet_dir: claiming %s: %w", dir, err)
	}
	return dir, nil
}

// writeFileSynced writes name atomically and durably: a synced temporary
// file renamed over it, then the directory synced.
func writeFileSynced(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
