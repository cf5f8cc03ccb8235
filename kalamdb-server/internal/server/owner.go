package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gocloud.dev/blob"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment/objstore"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/config"
)

// A Parquet directory belongs to exactly one database. Its segments are
// recorded in the manifests of the backend that flushed them, and opening
// the cold tier removes every segment file that the backend's manifests do
// not record (the leftovers of an interrupted flush). Two databases sharing
// one directory, after switching storage.backend without changing
// storage.parquet_dir for example, would delete each other's flushed rows.
// So each database gets an instance id, kept in its backend, and its
// segments live in <storage.parquet_dir>/<instance id>: databases never
// share a directory, and switching backends stays a one-line change.

// metaPartition holds the server's own records in the backend.
var metaPartition = store.MustPartition("server:meta")

var instanceKey = []byte("instance_id")

// instanceID returns the id of the database in the backend: the
// catalog's database id (catalog.EnsureDatabaseID), which every server
// sharing the backend reads. A database created before the catalog kept
// the id has it in metaPartition, where its Parquet directory was named
// from: that one stays, and becomes the catalog's when the catalog has
// none yet.
func (s *Server) instanceID(ctx context.Context) (string, error) {
	if err := s.backend.CreatePartition(ctx, metaPartition); err != nil {
		return "", fmt.Errorf("creating %s: %w", metaPartition, err)
	}
	old, err := s.backend.Get(ctx, metaPartition, instanceKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		old = nil
	case err != nil:
		return "", fmt.Errorf("reading the instance id: %w", err)
	default:
		if _, herr := hex.DecodeString(string(old)); herr != nil || len(old) != 32 {
			return "", fmt.Errorf("the instance id stored in %s is %q, not 32 hex digits: the backend's data is damaged", metaPartition, old)
		}
	}
	id, err := catalog.EnsureDatabaseID(ctx, s.backend, string(old))
	if err != nil {
		return "", err
	}
	if old != nil {
		return string(old), nil
	}
	return id, nil
}

// parquetDir returns the Parquet directory to use. A durable backend uses
// its instance's directory under storage.parquet_dir; a non-durable one
// (memory) gets a fresh temporary directory, removed at shutdown, since its
// manifests die with it.
func (s *Server) parquetDir(ctx context.Context, durable bool) (string, error) {
	if !durable {
		removeStaleTempDirs(s.log)
		dir, err := os.MkdirTemp("", tempParquetPattern)
		if err != nil {
			return "", fmt.Errorf("creating a temporary Parquet directory: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, tempOwnerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("creating a temporary Parquet directory: %w", err)
		}
		s.tempParquet = dir
		s.log.Warn("non-durable backend: flushed Parquet segments go to a temporary directory, removed at shutdown (storage.parquet_dir is not used)", "dir", dir)
		return dir, nil
	}
	id, err := s.instanceID(ctx)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.cfg.Storage.ParquetDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("storage.parquet_dir: %w", err)
	}
	readme := filepath.Join(s.cfg.Storage.ParquetDir, "README")
	if _, err := os.Stat(readme); errors.Is(err, os.ErrNotExist) {
		_ = writeFileSynced(readme, []byte(parquetReadme))
	}
	return dir, nil
}

// The temporary Parquet directories of non-durable backends are
// os.TempDir()/kalamdb-parquet-*, each with the owning process's pid in
// tempOwnerFile: a server killed with kill -9 cannot remove its own, so the
// next one to start removes those whose process is gone.
const (
	tempParquetPattern = "kalamdb-parquet-"
	tempOwnerFile      = "owner.pid"
)

// removeStaleTempDirs removes the temporary Parquet directories whose
// owning process no longer runs.
func removeStaleTempDirs(log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempParquetPattern+"*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, tempOwnerFile))
		if err != nil {
			continue // not one of ours, or being created
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || processRuns(pid) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("removing a temporary Parquet directory left by a server that is gone", "dir", dir, "err", err)
			continue
		}
		log.Info("removed a temporary Parquet directory left by a server that is gone", "dir", dir, "pid", pid)
	}
}

// processRuns reports whether a process with that pid exists (signal 0
// checks without sending anything).
func processRuns(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

const parquetReadme = `Flushed Parquet segments of KalamDB databases, one directory per database
(named after the instance id the database keeps in its storage backend).
A database reads and cleans up its own directory only. Do not edit or move
the files: each one is recorded in its database's manifests.
`

// writeFileSynced writes name atomically and durably: a synced temporary
// file renamed over it, then the directory synced.
func writeFileSynced(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
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

// openObjectStore opens the object store of storage.segments_url for this
// database: its segments live under the key prefix <instance id>/, as
// they live in <parquet_dir>/<instance id> on a directory, behind the
// local disk cache of storage.segment_cache. It checks that the bucket can
// be reached (one request) and logs which URL it uses, without
// credentials.
func (s *Server) openObjectStore(ctx context.Context, seg config.Segments) (segment.Store, error) {
	id, err := s.instanceID(ctx)
	if err != nil {
		return nil, err
	}
	b, err := blob.OpenBucket(ctx, seg.URL)
	if err != nil {
		return nil, fmt.Errorf("storage.segments_url: opening %s: %w", seg.Redacted, err)
	}
	desc := seg.Redacted + " (prefix " + id + "/)"
	cache, err := segment.OpenDiskCache(s.cfg.Storage.SegmentCache.Dir, s.cfg.Storage.SegmentCache.MaxBytes)
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("storage.segment_cache: %w", err)
	}
	var st *objstore.Store
	observe := s.metrics.ObjectStore(func() objstore.Stats { return st.Stats() }, cache.Stats)
	st = objstore.New(blob.PrefixedBucket(b, id+"/"), desc, objstore.Options{Observe: observe})
	if err := st.Check(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("storage.segments_url: the object store cannot be reached: %w", err)
	}
	s.objects, s.bucket, s.flushDir = st, b, desc
	s.log.Info("segments in an object store", "segments_url", seg.Redacted, "prefix", id+"/",
		"segment_cache", s.cfg.Storage.SegmentCache.Dir, "segment_cache_max_bytes", s.cfg.Storage.SegmentCache.MaxBytes)
	return cache.Wrap(st, seg.Redacted+"/"+id), nil
}

// objectStoreProblem describes, for /readyz, an object store whose latest
// request failed; "" when it works (or the segments are in a directory).
// Reads that need a segment not in the disk cache answer 503 meanwhile,
// and flushes fail and are retried with backoff.
func (s *Server) objectStoreProblem() string {
	if s.objects == nil {
		return ""
	}
	failing, since, _ := s.objects.Health()
	if !failing {
		return ""
	}
	return fmt.Sprintf("object store %s unreachable since %s: reads of segments not in the local cache answer 503 and flushes are retried with backoff; rows stay buffered in the storage backend",
		s.objects.String(), since.UTC().Format(time.RFC3339))
}
