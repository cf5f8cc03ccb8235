package tables

import (
	"context"
	"errors"
	"fmt"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/keys"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/row"
)

// Buffer is the maintenance view of a user or shared table's hot buffer:
// what the code that moves rows to a cold tier (flush) needs, and nothing a
// request handler should call.
//
// Every check-then-act on buffered keys goes through the store's key locks:
// the table store takes them for insert, update and delete, and
// DeleteIfUnchanged and LockKeys take the same ones, so a flush never
// deletes a version that a writer replaced meanwhile.
type Buffer struct{ rt *rowTable }

// VersionRef names one buffered version: the row's key and its _seq.
type VersionRef struct {
	Key []byte
	Seq int64
}

// Partition returns the backend partition that holds the buffer.
func (b *Buffer) Partition() store.Partition { return b.rt.part }

// Written returns how many row versions were written to the table's
// buffer (inserted rows, updates, deletions) since its store opened, less
// what flushes took (Flushed). At open it counts the versions already
// buffered, up to the flush row limit. It is what a flush policy compares
// with its row limit, without reading the buffer.
func (b *Buffer) Written() int64 { return b.rt.written.Load() }

// Flushed tells the buffer that a flush moved the n versions Written
// reported when it began: writes that came during the flush still count.
func (b *Buffer) Flushed(n int64) { b.rt.written.Add(-n) }

// Prefix returns the key prefix of user's rows: the encoded user id for a
// user table, empty for a shared table (user must then be "").
func (b *Buffer) Prefix(user string) ([]byte, error) {
	if !b.rt.perUser {
		if user != "" {
			return nil, fmt.Errorf("%w: shared table %s has no users", core.ErrInvalidArgument, b.rt.t.FullName())
		}
		return nil, nil
	}
	return b.rt.scopePrefix(nil, user)
}

// Versions iterates every buffered version of user's rows (of every row for
// a shared table, with user ""), tombstones included, in key order.
func (b *Buffer) Versions(ctx context.Context, user string) (VersionIter, error) {
	prefix, err := b.Prefix(user)
	if err != nil {
		return nil, err
	}
	it, err := b.rt.buffer.Scan(ctx, prefix, nil, false)
	return it, b.rt.wrap(err)
}

// Entries iterates the buffer entries of user's rows (of every row for a
// shared table, with user ""), tombstones included, in key order, as the
// backend holds them: each value is an encoded row version (package row;
// decode it with Types). It is Versions without the decoding, for a reader
// that decodes each version in place and is done with it before the next
// (such as a flush, which copies it into a segment).
func (b *Buffer) Entries(ctx context.Context, user string) (store.Iterator, error) {
	prefix, err := b.Prefix(user)
	if err != nil {
		return nil, err
	}
	it, err := b.rt.b.Scan(ctx, b.rt.part, store.ScanOptions{Prefix: prefix, Bulk: true})
	return it, b.rt.wrap(err)
}

// Types returns the table's column types, in column order: what package
// row decodes its versions with.
func (b *Buffer) Types() []row.Type { return b.rt.types }

// Users returns, in key order, the users of a user table that have rows in
// the buffer (live or deleted). It seeks from one user to the next, so it
// reads one key per user.
func (b *Buffer) Users(ctx context.Context) ([]string, error) {
	if !b.rt.perUser {
		return nil, fmt.Errorf("%w: shared table %s has no users", core.ErrInvalidArgument, b.rt.t.FullName())
	}
	var users []string
	var start []byte
	for {
		it, err := b.rt.b.Scan(ctx, b.rt.part, store.ScanOptions{Start: start, Limit: 1})
		if err != nil {
			return nil, b.rt.wrap(err)
		}
		if !it.Next() {
			return users, b.rt.wrap(it.Close())
		}
		k := append([]byte(nil), it.Key()...)
		if err := it.Close(); err != nil {
			return nil, b.rt.wrap(err)
		}
		user, _, err := keys.DecodeString(k)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: buffer key %x: %v", core.ErrCorrupt, b.rt.t.FullName(), k, err)
		}
		users = append(users, user)
		start = store.PrefixSuccessor(keys.AppendString(nil, user))
		if start == nil {
			return users, nil
		}
	}
}

// DecodeKey splits a buffer key into its user id ("" for a shared table)
// and primary-key value.
func (b *Buffer) DecodeKey(key []byte) (user string, pk row.Value, err error) {
	rest := key
	if b.rt.perUser {
		if user, rest, err = keys.DecodeString(key); err != nil {
			return "", row.Value{}, fmt.Errorf("%w: %s: buffer key %x: %v", core.ErrCorrupt, b.rt.t.FullName(), key, err)
		}
	}
	pk, rest, err = b.rt.t.DecodeKey(rest)
	if err != nil {
		return "", row.Value{}, err
	}
	if len(rest) != 0 {
		return "", row.Value{}, fmt.Errorf("%w: %s: buffer key %x has %d trailing bytes", core.ErrCorrupt, b.rt.t.FullName(), key, len(rest))
	}
	return user, pk, nil
}

// DeleteIfUnchanged removes, in batches that fit the storage backend's
// limits (one when it has none), each referenced version
// that is still the buffered version of its key (same _seq), and returns
// how many it removed. A key whose row was written again since (a newer
// _seq, or a tombstone) keeps its newer version; a key that is gone is
// skipped.
//
// On a buffer other processes write too (the backend is MultiProcess),
// this process's key locks do not hold their writes back: each delete then
// goes with a check that its key still holds the value read, a batch whose
// check failed applies nothing, and its keys are read and decided again.
func (b *Buffer) DeleteIfUnchanged(ctx context.Context, refs []VersionRef) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	ks := make([][]byte, len(refs))
	for i, r := range refs {
		ks[i] = r.Key
	}
	g := b.rt.locks.LockKeys(ks)
	defer g.Unlock()
	done := 0
	for attempt := 0; len(refs) > 0; attempt++ {
		ops, kept, err := b.unchanged(ctx, refs)
		if err != nil {
			return done, err
		}
		if !b.rt.shared {
			// Each delete stands alone (the versions are all flushed
			// already): batches that fit the backend's limits will do.
			for _, batch := range b.rt.b.Capabilities().Split(ops) {
				if err := b.rt.b.Batch(ctx, batch); err != nil {
					return done, b.rt.wrap(err)
				}
				done += len(batch)
			}
			return done, nil
		}
		var again []VersionRef
		for start := 0; start < len(ops); {
			end := pairsEnd(b.rt.b.Capabilities(), ops, start)
			err := b.rt.b.Batch(ctx, ops[start:end])
			if err == nil {
				done += (end - start) / 2
			} else if retry, cerr := b.rt.conflict(err, attempt); retry {
				// Another process wrote one of these keys: read them again.
				again = append(again, kept[start/2:end/2]...)
			} else {
				return done, cerr
			}
			start = end
		}
		refs = again
	}
	return done, nil
}

// unchanged reads the keys of refs and returns the deletes of those that
// still hold the referenced version, and those refs. On a shared buffer each
// delete follows a check of the value read (two operations per ref).
func (b *Buffer) unchanged(ctx context.Context, refs []VersionRef) (ops []store.Operation, kept []VersionRef, _ error) {
	for _, r := range refs {
		v, err := b.rt.b.Get(ctx, b.rt.part, r.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, b.rt.wrap(err)
		}
		s, err := row.PeekSeq(v)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: buffer key %x: %w", b.rt.t.FullName(), r.Key, err)
		}
		if s != r.Seq {
			continue
		}
		if b.rt.shared {
			ops = append(ops, store.CheckValueOp(b.rt.part, r.Key, v))
		}
		ops = append(ops, store.DeleteOp(b.rt.part, r.Key))
		kept = append(kept, r)
	}
	return ops, kept, nil
}

// pairsEnd returns the end of the batch of check-and-delete pairs that
// starts at ops[start]: as many whole pairs as the limits of c allow, at
// least one.
func pairsEnd(c store.Capabilities, ops []store.Operation, start int) int {
	end, size := start, 0
	for end < len(ops) {
		n := len(ops[end].Key) + len(ops[end].Value) + len(ops[end+1].Key)
		if end > start && ((c.MaxBatchOps > 0 && end-start+2 > c.MaxBatchOps) || (c.MaxBatchBytes > 0 && size+n > c.MaxBatchBytes)) {
			break
		}
		size += n
		end += 2
	}
	return end
}

// LockKeys takes the store's locks on keys, so that no insert, update,
// delete or DeleteIfUnchanged of those keys runs until unlock is called.
// Hold them briefly: writers of those keys wait.
func (b *Buffer) LockKeys(keys [][]byte) (unlock func()) {
	g := b.rt.locks.LockKeys(keys)
	return g.Unlock
}

// LockAll takes every key lock of the table, so that no insert, update,
// delete or DeleteIfUnchanged runs until unlock is called. Cheaper than
// LockKeys for many keys.
func (b *Buffer) LockAll() (unlock func()) {
	g := b.rt.locks.LockAll()
	return g.Unlock
}

// LastSeq returns the last _seq the table handed out. Every write takes a
// new _seq while it holds its key's lock, so two reads of LastSeq under
// LockAll that return the same value prove that no write happened between
// them.
func (b *Buffer) LastSeq() int64 { return b.rt.alloc.Last() }
