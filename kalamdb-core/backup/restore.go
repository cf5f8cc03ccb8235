package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
)

// Target is the database a restore writes.
type Target struct {
	// Backend is the target's storage backend.
	Backend store.StorageBackend
	// Segments returns the store the target's segments go to. Restore
	// calls it once the partitions are written, since where a database's
	// segments live may depend on them (the server keeps its instance id
	// in the backend). It may be nil when the backup holds no segments.
	Segments func(ctx context.Context, b store.StorageBackend) (segment.Store, error)
}

// Report is what a restore wrote and verified.
type Report struct {
	// Index is the backup's index.
	Index *Index
	// Keys, Partitions and Segments count what was restored, and Bytes
	// the bytes of keys, values and segments.
	Keys, Bytes          int64
	Partitions, Segments int
}

// Restore writes the backup at from into the target, then verifies it.
// It first reads the whole backup and checks every record and digest
// against its index, and refuses a damaged backup (a *CorruptError naming
// the file and offset) before writing anything. It refuses a target that
// holds any key, saying what it found, unless opts.Force, which drops
// every partition of the target first. While it writes, the target holds
// RestoreMarker, so that a restore cut short is seen (by Restore, Backup
// and the server) and not taken for a database. It ends by comparing
// every key and value of the target with the backup and every segment's
// digest.
func Restore(ctx context.Context, from string, t Target, opts Options) (*Report, error) {
	src, idx, err := openChecked(ctx, from, opts)
	if err != nil {
		return nil, err
	}
	defer src.close()
	if err := prepare(ctx, t.Backend, opts.Force); err != nil {
		return nil, err
	}
	rep := &Report{Index: idx}
	var segStore segment.Store
	segments := func() (segment.Store, error) {
		if segStore != nil {
			return segStore, nil
		}
		if t.Segments == nil {
			return nil, errors.New("restore: the backup holds segments but the target has no segment store")
		}
		st, err := t.Segments(ctx, t.Backend)
		if err != nil {
			return nil, fmt.Errorf("restore: opening the target's segment store: %w", err)
		}
		segStore = st
		return st, nil
	}
	if err := apply(ctx, src, idx, t.Backend, segments, opts, rep); err != nil {
		return nil, fmt.Errorf("%w (the target holds partition %s until a restore finishes: run the restore again with force)", err, RestoreMarker)
	}
	if err := verify(ctx, src, idx, t.Backend, segments, opts); err != nil {
		return nil, fmt.Errorf("%w (the target holds partition %s until a restore finishes: run the restore again with force)", err, RestoreMarker)
	}
	if err := t.Backend.DropPartition(ctx, RestoreMarker); err != nil {
		return nil, fmt.Errorf("restore: dropping %s after a verified restore: %w", RestoreMarker, err)
	}
	return rep, nil
}

// Check reads the whole backup at from and checks every record and
// digest against its index; it returns the index.
func Check(ctx context.Context, from string, opts Options) (*Index, error) {
	src, idx, err := openChecked(ctx, from, opts)
	if err != nil {
		return nil, err
	}
	return idx, src.close()
}

// openChecked opens the backup at from, reads its index and checks every
// file against it.
func openChecked(ctx context.Context, from string, opts Options) (source, *Index, error) {
	src, err := openSource(ctx, from, opts.ObjectStores)
	if err != nil {
		return nil, nil, err
	}
	idx, err := src.index(ctx)
	if err == nil {
		err = check(ctx, src, idx, opts)
	}
	if err != nil {
		_ = src.close()
		return nil, nil, err
	}
	return src, idx, nil
}

// Totals returns the keys of every partition and the bytes of every file
// the index lists.
func (idx *Index) Totals() (keys, bytes int64) {
	for _, p := range idx.Partitions {
		keys += p.Keys
		bytes += p.Bytes
	}
	for _, s := range idx.Segments {
		bytes += s.Bytes
	}
	return keys, bytes
}

// check reads every file of the backup and checks it against idx.
func check(ctx context.Context, src source, idx *Index, opts Options) error {
	keys, size := idx.Totals()
	prog := newProgress(opts.Progress, "check", keys, size)
	parts, segs := byFile(idx)
	return src.walk(ctx, idx.files(), func(name string, r io.Reader) error {
		prog.file(name)
		if p, ok := parts[name]; ok {
			kr, err := newKVReader(name, r)
			if err != nil {
				return err
			}
			var prev []byte
			err = kr.each(func(key, val []byte) error {
				if prev != nil && bytes.Compare(prev, key) >= 0 {
					return kr.corrupt(kr.off, "keys out of order")
				}
				prev = append(prev[:0], key...)
				prog.add(1, int64(len(key)+len(val)))
				return nil
			})
			if err != nil {
				return err
			}
			return checkDigest(name, kr.keys, p.Keys, kr, p.SHA256, p.Bytes)
		}
		s := segs[name]
		d := newDigestWriter(io.Discard)
		n, err := io.Copy(d, r)
		if err != nil {
			return err
		}
		prog.add(0, n)
		if n != s.Bytes || d.sum() != s.SHA256 {
			return &CorruptError{File: name, Offset: min(n, s.Bytes), Msg: fmt.Sprintf("%d bytes with SHA-256 %s; the index records %d bytes with %s", n, d.sum(), s.Bytes, s.SHA256)}
		}
		return nil
	})
}

func checkDigest(name string, keys, wantKeys int64, kr *kvReader, wantSum string, wantBytes int64) error {
	sum, n := kr.sum()
	if keys != wantKeys {
		return &CorruptError{File: name, Offset: n, Msg: fmt.Sprintf("%d records; the index records %d", keys, wantKeys)}
	}
	if sum != wantSum || n != wantBytes {
		return &CorruptError{File: name, Offset: min(n, wantBytes), Msg: fmt.Sprintf("%d bytes with SHA-256 %s; the index records %d bytes with %s", n, sum, wantBytes, wantSum)}
	}
	return nil
}

func byFile(idx *Index) (map[string]PartitionEntry, map[string]SegmentEntry) {
	parts := map[string]PartitionEntry{}
	for _, p := range idx.Partitions {
		parts[p.File] = p
	}
	segs := map[string]SegmentEntry{}
	for _, s := range idx.Segments {
		segs[s.File] = s
	}
	return parts, segs
}

// prepare checks that b is empty (or empties it, with force) and creates
// the restore marker.
func prepare(ctx context.Context, b store.StorageBackend, force bool) error {
	parts, err := b.ListPartitions(ctx)
	if err != nil {
		return fmt.Errorf("restore: listing the target's partitions: %w", err)
	}
	var found []string
	for _, p := range parts {
		if p == RestoreMarker {
			found = append(found, fmt.Sprintf("an unfinished restore (partition %s)", p))
			continue
		}
		n, err := store.Count(ctx, b, p, store.ScanOptions{})
		if err != nil {
			return fmt.Errorf("restore: reading the target's partition %s: %w", p, err)
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("partition %s with %d keys", p, n))
		}
	}
	if len(found) > 0 && !force {
		more := ""
		if len(found) > 5 {
			more = fmt.Sprintf(" and %d more", len(found)-5)
			found = found[:5]
		}
		return fmt.Errorf("restore: %w: it holds %s%s; restore into an empty database, or force the restore to replace everything it holds", errNotEmpty, strings.Join(found, ", "), more)
	}
	if force {
		// The marker first, so that a restore cut short while it empties
		// the target is seen too.
		if err := b.CreatePartition(ctx, RestoreMarker); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		for _, p := range parts {
			if p == RestoreMarker {
				continue
			}
			if err := b.DropPartition(ctx, p); err != nil && !errors.Is(err, store.ErrPartitionNotFound) {
				return fmt.Errorf("restore: emptying the target: dropping %s: %w", p, err)
			}
		}
		return nil
	}
	for _, p := range parts {
		// Empty partitions (a server that started once creates its own):
		// dropped, so that the target ends with the backup's partitions.
		if err := b.DropPartition(ctx, p); err != nil && !errors.Is(err, store.ErrPartitionNotFound) {
			return fmt.Errorf("restore: dropping the empty partition %s: %w", p, err)
		}
	}
	return b.CreatePartition(ctx, RestoreMarker)
}

// apply writes the backup into b.
func apply(ctx context.Context, src source, idx *Index, b store.StorageBackend, segments func() (segment.Store, error), opts Options, rep *Report) error {
	keys, size := idx.Totals()
	prog := newProgress(opts.Progress, "restore", keys, size)
	parts, segs := byFile(idx)
	caps := b.Capabilities()
	maxOps, maxBytes := opts.BatchOps, opts.BatchBytes
	if maxOps <= 0 {
		maxOps = 1000
	}
	if maxBytes <= 0 {
		maxBytes = 4 << 20
	}
	if caps.MaxBatchOps > 0 && caps.MaxBatchOps < maxOps {
		maxOps = caps.MaxBatchOps
	}
	if caps.MaxBatchBytes > 0 && caps.MaxBatchBytes < maxBytes {
		maxBytes = caps.MaxBatchBytes
	}
	return src.walk(ctx, idx.files(), func(name string, r io.Reader) error {
		prog.file(name)
		if pe, ok := parts[name]; ok {
			p := store.MustPartition(pe.Name) // parseIndex checked the name
			if err := b.CreatePartition(ctx, p); err != nil {
				return fmt.Errorf("restore: creating partition %s: %w", p, err)
			}
			kr, err := newKVReader(name, r)
			if err != nil {
				return err
			}
			var ops []store.Operation
			var arena []byte
			n := 0
			flushOps := func() error {
				if len(ops) == 0 {
					return nil
				}
				if err := b.Batch(ctx, ops); err != nil {
					return fmt.Errorf("restore: writing partition %s: %w", p, err)
				}
				ops, arena, n = ops[:0], make([]byte, 0, n), 0
				return nil
			}
			err = kr.each(func(key, val []byte) error {
				sz := len(key) + len(val)
				if len(ops) > 0 && (len(ops) >= maxOps || n+sz > maxBytes) {
					if err := flushOps(); err != nil {
						return err
					}
				}
				// One buffer holds the keys and values of a batch: a
				// slice taken before the buffer grew keeps the old one.
				at := len(arena)
				arena = append(arena, key...)
				arena = append(arena, val...)
				kv := arena[at:len(arena):len(arena)]
				ops = append(ops, store.PutOp(p, kv[:len(key):len(key)], kv[len(key):]))
				n += sz
				rep.Keys++
				rep.Bytes += int64(sz)
				prog.add(1, int64(sz))
				return nil
			})
			if err != nil {
				return err
			}
			if err := flushOps(); err != nil {
				return err
			}
			rep.Partitions++
			return nil
		}
		s := segs[name]
		st, err := segments()
		if err != nil {
			return err
		}
		up, err := st.Create(ctx, s.Path)
		if err != nil {
			return fmt.Errorf("restore: writing segment %s to %s: %w", s.Path, st, err)
		}
		d := newDigestWriter(up)
		n, err := io.Copy(d, r)
		if err == nil && (n != s.Bytes || d.sum() != s.SHA256) {
			err = &CorruptError{File: name, Offset: min(n, s.Bytes), Msg: fmt.Sprintf("%d bytes with SHA-256 %s; the index records %d bytes with %s", n, d.sum(), s.Bytes, s.SHA256)}
		}
		if err != nil {
			up.Abort()
			return err
		}
		if err := up.Commit(); err != nil {
			return fmt.Errorf("restore: writing segment %s to %s: %w", s.Path, st, err)
		}
		rep.Segments++
		rep.Bytes += n
		prog.add(0, n)
		return nil
	})
}

// verify compares the target with the backup: the same partitions, every
// key and value, every segment's digest.
func verify(ctx context.Context, src source, idx *Index, b store.StorageBackend, segments func() (segment.Store, error), opts Options) error {
	keys, size := idx.Totals()
	prog := newProgress(opts.Progress, "verify", keys, size)
	got, err := b.ListPartitions(ctx)
	if err != nil {
		return fmt.Errorf("verify: listing the partitions: %w", err)
	}
	want := map[string]bool{RestoreMarker.Name(): true}
	for _, p := range idx.Partitions {
		want[p.Name] = true
	}
	for _, p := range got {
		if !want[p.Name()] {
			return fmt.Errorf("verify: the target has partition %s, which the backup does not", p)
		}
		delete(want, p.Name())
	}
	for name := range want {
		if name != RestoreMarker.Name() {
			return fmt.Errorf("verify: the target lacks partition %s", name)
		}
	}
	parts, segs := byFile(idx)
	return src.walk(ctx, idx.files(), func(name string, r io.Reader) error {
		prog.file(name)
		if pe, ok := parts[name]; ok {
			return comparePartition(ctx, b, store.MustPartition(pe.Name), name, r, prog)
		}
		s := segs[name]
		st, err := segments()
		if err != nil {
			return err
		}
		obj, err := st.Open(ctx, s.Path, -1)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("verify: segment %s is missing from %s", s.Path, st)
			}
			return fmt.Errorf("verify: reading segment %s from %s: %w", s.Path, st, err)
		}
		defer obj.Close()
		d := newDigestWriter(io.Discard)
		n, err := io.Copy(d, io.NewSectionReader(obj, 0, obj.Size()))
		if err != nil {
			return fmt.Errorf("verify: reading segment %s from %s: %w", s.Path, st, err)
		}
		if n != s.Bytes || d.sum() != s.SHA256 {
			return fmt.Errorf("verify: segment %s in %s is %d bytes with SHA-256 %s; the backup has %d bytes with %s", s.Path, st, n, d.sum(), s.Bytes, s.SHA256)
		}
		prog.add(0, n)
		return nil
	})
}

// comparePartition walks partition p of b and its backup file together.
func comparePartition(ctx context.Context, b store.StorageBackend, p store.Partition, name string, r io.Reader, prog *progress) error {
	kr, err := newKVReader(name, r)
	if err != nil {
		return err
	}
	it, err := b.Scan(ctx, p, store.ScanOptions{Bulk: true})
	if err != nil {
		return fmt.Errorf("verify: reading partition %s: %w", p, err)
	}
	defer it.Close()
	for {
		ok, err := kr.next()
		if err != nil {
			return err
		}
		has := it.Next()
		switch {
		case !ok && !has:
			if err := it.Close(); err != nil {
				return fmt.Errorf("verify: reading partition %s: %w", p, err)
			}
			return nil
		case !ok:
			return fmt.Errorf("verify: partition %s holds key %x, which the backup does not", p, it.Key())
		case !has:
			if err := it.Err(); err != nil {
				return fmt.Errorf("verify: reading partition %s: %w", p, err)
			}
			return fmt.Errorf("verify: partition %s lacks key %x of the backup", p, kr.key)
		case !bytes.Equal(kr.key, it.Key()):
			return fmt.Errorf("verify: partition %s has key %x where the backup has %x", p, it.Key(), kr.key)
		case !bytes.Equal(kr.val, it.Value()):
			return fmt.Errorf("verify: partition %s, key %x: the value differs from the backup's", p, kr.key)
		}
		prog.add(1, int64(len(kr.key)+len(kr.val)))
	}
}
