package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/layout"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// RestoreMarker is the partition a restore creates before it writes
// anything and drops once the restored database is verified: a database
// that has it holds an unfinished restore, which backups and the server
// refuse, and which only a forced restore replaces.
var RestoreMarker = store.MustPartition("kalamdb.restore")

// Source is the database a backup reads.
type Source struct {
	// Backend is the database's storage backend.
	Backend store.StorageBackend
	// Name names the backend in the index ("rocksdb").
	Name string
	// Segments is the store of the database's segments; nil when the
	// manifests record none (Backup fails if they do).
	Segments segment.Store
	// Pause, when set, holds back every write to Backend until the
	// returned function is called (Gate.Pause): an online backup. Backup
	// calls it before it lists the partitions and resumes the writes once
	// it holds one snapshot of every partition, or, on a backend without
	// snapshot scans, once every partition is copied. Without Pause the
	// database must not change while the backup runs (it is stopped).
	Pause func(ctx context.Context) (resume func(), err error)
	// HoldSegments, when set, keeps every segment the manifests record
	// from being removed (flushes and compactions held back) until the
	// returned function is called; Backup calls it before Pause and
	// releases it once the segments are copied.
	HoldSegments func(ctx context.Context) (release func(), err error)
}

// Progress is what a backup or restore reports as it goes.
type Progress struct {
	// Phase is "backup", "check", "restore" or "verify".
	Phase string
	// File is the backup file being read or written.
	File string
	// Keys and Bytes are what the phase has done so far; TotalKeys and
	// TotalBytes what it will do in all, when known (else 0).
	Keys, TotalKeys   int64
	Bytes, TotalBytes int64
	// Started is when the phase started.
	Started time.Time
}

// Options tune Backup, Restore and Migrate.
type Options struct {
	// Progress, when set, is called at every file and every few thousand
	// keys.
	Progress func(Progress)
	// Force lets Restore replace what the target holds (every partition
	// is dropped first); without it a target that holds any key is
	// refused.
	Force bool
	// BatchOps and BatchBytes bound the batches Restore writes, within the
	// target's own limits; 0 means 1000 operations and 4 MiB.
	BatchOps, BatchBytes int
	// TempDir is where Migrate keeps its intermediate backup; "" means
	// os.TempDir().
	TempDir string
	// ObjectStores opens the object-store URLs given as a backup's
	// location; nil takes none.
	ObjectStores ObjectStores
}

// progress throttles Options.Progress.
type progress struct {
	fn    func(Progress)
	p     Progress
	every int64
	next  int64
}

func newProgress(fn func(Progress), phase string, totalKeys, totalBytes int64) *progress {
	return &progress{fn: fn, p: Progress{Phase: phase, TotalKeys: totalKeys, TotalBytes: totalBytes, Started: time.Now()}, every: 50000}
}

func (p *progress) file(name string) {
	p.p.File = name
	p.report()
}

func (p *progress) add(keys, bytes int64) {
	p.p.Keys += keys
	p.p.Bytes += bytes
	if p.p.Keys >= p.next {
		p.next = p.p.Keys + p.every
		p.report()
	}
}

func (p *progress) report() {
	if p.fn != nil {
		p.fn(p.p)
	}
}

// skipped reports whether a partition is left out of backups: the restore
// marker only.
func skipped(p store.Partition) bool { return p == RestoreMarker }

// Backup writes a backup of src to dest: a directory (created, or empty), a
// new .tar.gz file, or an object-store URL (the forms of
// storage.segments_url). It returns the backup's index. A backup that
// fails leaves no index, so that it is never taken for a whole one.
func Backup(ctx context.Context, src Source, dest string, opts Options) (*Index, error) {
	sk, err := openSink(ctx, dest, opts.ObjectStores)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	idx, err := write(ctx, src, sk, opts)
	if err != nil {
		sk.abort()
		return nil, err
	}
	if err := sk.close(); err != nil {
		return nil, err
	}
	return idx, nil
}

func hasScheme(loc string) bool {
	for i, c := range loc {
		if c == ':' {
			return i > 1 && len(loc) > i+2 && loc[i+1:i+3] == "//"
		}
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return false
}

// write copies src into sk.
func write(ctx context.Context, src Source, sk sink, opts Options) (_ *Index, err error) {
	caps := src.Backend.Capabilities()
	idx := &Index{Format: FormatName, Version: Version, Created: time.Now().UTC(), Backend: src.Name}
	if src.HoldSegments != nil {
		release, err := src.HoldSegments(ctx)
		if err != nil {
			return nil, fmt.Errorf("backup: holding back flushes and compactions: %w", err)
		}
		defer release()
	}
	resume := func() {}
	if src.Pause != nil {
		r, err := src.Pause(ctx)
		if err != nil {
			return nil, fmt.Errorf("backup: pausing writes: %w", err)
		}
		paused := true
		resume = func() {
			if paused {
				paused = false
				r()
			}
		}
		defer resume()
	}
	parts, err := src.Backend.ListPartitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: listing the partitions: %w", err)
	}
	for _, p := range parts {
		if p == RestoreMarker {
			return nil, fmt.Errorf("backup: the database holds an unfinished restore (partition %s): finish it with a forced restore before backing it up", p)
		}
	}
	// On a backend with snapshot scans, one iterator per partition opened
	// while writes are paused is one state of the whole database; the
	// writes resume once they are all open.
	iters := make([]store.Iterator, len(parts))
	defer func() {
		for _, it := range iters {
			if it != nil {
				_ = it.Close()
			}
		}
	}()
	switch {
	case caps.SnapshotScans:
		for i, p := range parts {
			if iters[i], err = src.Backend.Scan(ctx, p, store.ScanOptions{Bulk: true}); err != nil {
				return nil, fmt.Errorf("backup: reading partition %s: %w", p, err)
			}
		}
		resume()
		idx.Consistency = "one snapshot of every partition, opened together"
		if src.Pause != nil {
			idx.Consistency += " while writes were paused"
		}
	case src.Pause != nil:
		idx.Consistency = "writes paused while every partition was copied"
	default:
		idx.Consistency = "offline: the database did not change while it was copied"
	}
	if src.Pause == nil && caps.SnapshotScans {
		idx.Consistency = "offline: one snapshot of every partition, opened together"
	}

	prog := newProgress(opts.Progress, "backup", 0, 0)
	tables := map[uint64]*TableCount{}
	var segs []SegmentEntry
	seen := map[string]bool{}
	for i, p := range parts {
		file := fmt.Sprintf("%s%05d.kvs", PartitionDir, i+1)
		prog.file(file)
		it := iters[i]
		if it == nil {
			if it, err = src.Backend.Scan(ctx, p, store.ScanOptions{Bulk: true}); err != nil {
				return nil, fmt.Errorf("backup: reading partition %s: %w", p, err)
			}
			iters[i] = it
		}
		entry := PartitionEntry{Name: p.Name(), File: file}
		err := sk.put(ctx, file, -1, func(w io.Writer) error {
			kw, err := newKVWriter(w)
			if err != nil {
				return err
			}
			for it.Next() {
				k, v := it.Key(), it.Value()
				if err := kw.put(k, v); err != nil {
					return fmt.Errorf("backup: writing %s: %w", file, err)
				}
				prog.add(1, int64(len(k)+len(v)))
				if p == layout.Manifests && flush.IsSegmentRecord(k) {
					s, err := flush.DecodeManifestRecord(k, v)
					if err != nil {
						return fmt.Errorf("backup: %w", err)
					}
					if !seen[s.Path] {
						seen[s.Path] = true
						segs = append(segs, SegmentEntry{Path: s.Path, File: SegmentDir + s.Path, TableID: s.TableID, Rows: s.Rows, Bytes: s.Bytes})
					}
				}
			}
			if err := it.Close(); err != nil {
				return fmt.Errorf("backup: reading partition %s: %w", p, err)
			}
			if err := kw.finish(); err != nil {
				return fmt.Errorf("backup: writing %s: %w", file, err)
			}
			entry.Keys, entry.Bytes, entry.SHA256 = kw.keys, kw.d.n, kw.d.sum()
			return nil
		})
		if err != nil {
			return nil, err
		}
		if id, ns, name, ok := layout.ParseTablePartition(p); ok {
			tables[id] = &TableCount{Table: ns + "." + name, TableID: id, Partition: p.Name(), Buffered: entry.Keys}
		}
		idx.Partitions = append(idx.Partitions, entry)
	}
	resume()

	if len(segs) > 0 && src.Segments == nil {
		return nil, fmt.Errorf("backup: the manifests record %d segments but no segment store was given", len(segs))
	}
	for i := range segs {
		s := &segs[i]
		prog.file(s.File)
		if err := copySegment(ctx, src.Segments, s, sk, prog); err != nil {
			return nil, err
		}
		if t := tables[s.TableID]; t != nil {
			t.Segments++
			t.SegmentRows += s.Rows
		}
	}
	idx.Segments = segs
	for _, t := range tables {
		idx.Tables = append(idx.Tables, *t)
	}
	sort.Slice(idx.Tables, func(i, j int) bool { return idx.Tables[i].Table < idx.Tables[j].Table })
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	prog.file(IndexName)
	if err := sk.put(ctx, IndexName, int64(len(data)), func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}); err != nil {
		return nil, err
	}
	return idx, nil
}

// copySegment copies segment s from st into the backup, filling in its
// length and digest.
func copySegment(ctx context.Context, st segment.Store, s *SegmentEntry, sk sink, prog *progress) error {
	size := s.Bytes
	if size <= 0 {
		size = -1
	}
	obj, err := st.Open(ctx, s.Path, size)
	if err != nil {
		return fmt.Errorf("backup: segment %s, which the manifests record, cannot be read from %s: %w", s.Path, st, err)
	}
	defer obj.Close()
	s.Bytes = obj.Size()
	return sk.put(ctx, s.File, s.Bytes, func(w io.Writer) error {
		d := newDigestWriter(w)
		n, err := io.Copy(d, io.NewSectionReader(obj, 0, s.Bytes))
		if err != nil {
			return fmt.Errorf("backup: copying segment %s from %s: %w", s.Path, st, err)
		}
		if n != s.Bytes {
			return fmt.Errorf("backup: segment %s in %s is %d bytes, its record says %d", s.Path, st, n, s.Bytes)
		}
		s.SHA256 = d.sum()
		prog.add(0, n)
		return nil
	})
}

// parseIndex decodes and checks an index.
func parseIndex(data []byte) (*Index, error) {
	idx := &Index{}
	if err := json.Unmarshal(data, idx); err != nil {
		return nil, &CorruptError{File: IndexName, Msg: fmt.Sprintf("not valid JSON: %v", err)}
	}
	if idx.Format != FormatName {
		return nil, &CorruptError{File: IndexName, Msg: fmt.Sprintf("format %q, want %q", idx.Format, FormatName)}
	}
	if idx.Version != Version {
		return nil, fmt.Errorf("%s: format version %d; this program reads version %d", IndexName, idx.Version, Version)
	}
	files := map[string]bool{}
	for _, p := range idx.Partitions {
		if _, err := store.NewPartition(p.Name); err != nil {
			return nil, &CorruptError{File: IndexName, Msg: fmt.Sprintf("partition %q: %v", p.Name, err)}
		}
		files[p.File] = true
	}
	for _, s := range idx.Segments {
		if err := segment.CheckPath(s.Path); err != nil || s.File != SegmentDir+s.Path {
			return nil, &CorruptError{File: IndexName, Msg: fmt.Sprintf("segment %q: not a valid segment path", s.Path)}
		}
		if files[s.File] {
			return nil, &CorruptError{File: IndexName, Msg: fmt.Sprintf("file %q listed twice", s.File)}
		}
		files[s.File] = true
	}
	if len(files) != len(idx.Partitions)+len(idx.Segments) {
		return nil, &CorruptError{File: IndexName, Msg: "a file is listed twice"}
	}
	return idx, nil
}

// files returns the names of the files idx lists, partitions first.
func (idx *Index) files() []string {
	out := make([]string, 0, len(idx.Partitions)+len(idx.Segments))
	for _, p := range idx.Partitions {
		out = append(out, p.File)
	}
	for _, s := range idx.Segments {
		out = append(out, s.File)
	}
	return out
}

// errNotEmpty is wrapped by the error of a restore into a database that
// holds data.
var errNotEmpty = errors.New("the target database is not empty")
