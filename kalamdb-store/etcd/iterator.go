package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Scan reads the range in pages of scan_chunk keys, all at one revision:
// the first page is read in a transaction that checks the partition's
// registry entry, and its revision is the one every later page reads
// (WithRev). So the iterator sees the partition exactly as it was then
// (Capabilities.SnapshotScans), even across a drop; should the cluster
// compact that revision away before the last page, the iterator fails
// with an error rather than read a later state.
func (e *engine) Scan(ctx context.Context, p store.Partition, r store.Range) (store.Iterator, error) {
	it := &iterator{e: e, ctx: ctx, p: p, reverse: r.Reverse, limit: r.Limit}
	var first *clientv3.TxnResponse
	var err error
	first, err = e.onPartition(ctx, "scan", p, func(id int64) clientv3.Op {
		it.strip = e.l.dataPrefixLen()
		it.lower, it.upper = e.l.span(id, r)
		return clientv3.OpGet(it.lower, it.options()...)
	})
	if err != nil {
		return nil, err
	}
	it.rev = first.Header.Revision
	it.take(first.Responses[0].GetResponseRange().Kvs, first.Responses[0].GetResponseRange().More)
	return it, nil
}

// iterator walks a partition's range page by page at revision rev.
type iterator struct {
	e       *engine
	ctx     context.Context
	p       store.Partition
	reverse bool
	limit   int // the scan's limit; 0 for none
	strip   int // the data prefix's length

	lower, upper string // the etcd keys not read yet: [lower, upper)
	rev          int64  // the revision every page reads
	done         bool   // no keys left to read

	page     []*mvccpb.KeyValue
	pos      int // index of the current pair in page; -1 before the first
	returned int
	err      error
}

// size returns how many keys the next page reads.
func (it *iterator) size() int64 {
	n := it.e.chunk
	if it.limit > 0 {
		n = min(n, it.limit-it.returned)
	}
	return int64(max(n, 1))
}

// options are the read options of the next page.
func (it *iterator) options() []clientv3.OpOption {
	opts := []clientv3.OpOption{clientv3.WithRange(it.upper), clientv3.WithLimit(it.size())}
	if it.reverse {
		opts = append(opts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	}
	if it.rev != 0 {
		opts = append(opts, clientv3.WithRev(it.rev))
	}
	return opts
}

// take makes kvs the current page and narrows the range to what comes
// after it; more is etcd's word that the range holds more keys.
func (it *iterator) take(kvs []*mvccpb.KeyValue, more bool) {
	it.page, it.pos = kvs, -1
	if len(kvs) == 0 || !more {
		it.done = true
		return
	}
	last := string(kvs[len(kvs)-1].Key)
	if it.reverse {
		it.upper = last
	} else {
		it.lower = last + "\x00"
	}
}

func (it *iterator) Next() bool {
	if it.err != nil {
		return false
	}
	if it.pos+1 < len(it.page) {
		it.pos++
		it.returned++
		return true
	}
	if it.done || (it.limit > 0 && it.returned >= it.limit) {
		it.page, it.pos = nil, -1
		return false
	}
	var resp *clientv3.GetResponse
	err := it.e.call(it.ctx, func(ctx context.Context) (err error) {
		resp, err = it.e.client.Get(ctx, it.lower, it.options()...)
		if err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return fmt.Errorf("kalamdb-store/etcd: scan of %q at %s: its revision %d was compacted while the scan was open; scan again: %w",
					it.p.Name(), it.e.eps, it.rev, err)
			}
			return it.e.fail(ctx, fmt.Sprintf("scan of %q", it.p.Name()), err)
		}
		return nil
	})
	if err != nil {
		it.err, it.page, it.pos = err, nil, -1
		return false
	}
	it.take(resp.Kvs, resp.More)
	return it.Next()
}

func (it *iterator) Key() []byte {
	if it.pos < 0 || it.pos >= len(it.page) {
		return nil
	}
	return it.page[it.pos].Key[it.strip:]
}

func (it *iterator) Value() []byte {
	if it.pos < 0 || it.pos >= len(it.page) {
		return nil
	}
	if v := it.page[it.pos].Value; v != nil {
		return v
	}
	return []byte{}
}

func (it *iterator) Err() error { return it.err }

func (it *iterator) Close() error {
	it.page, it.pos, it.done = nil, -1, true
	return it.err
}
