package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

func (e *engine) Scan(ctx context.Context, p store.Partition, r store.Range) (store.Iterator, error) {
	zset, hash := e.partKeys(p.Name())
	it := &iterator{
		e:       e,
		ctx:     ctx,
		p:       p,
		zset:    zset,
		hash:    hash,
		reverse: r.Reverse,
		limit:   r.Limit,
		min:     "-",
		max:     "+",
		pos:     -1,
	}
	if r.Lower != nil {
		it.min = "[" + string(r.Lower)
	}
	if r.Upper != nil {
		it.max = "(" + string(r.Upper)
	}
	if err := it.fetch(); err != nil {
		return nil, err
	}
	return it, nil
}

// iterator pages through a partition. Each round trip is one pipeline of
// read commands: the partition's generation, the values of the keys listed
// by the previous round trip (HMGET), the next chunk of keys (ZRANGEBYLEX,
// starting strictly after the last key listed so far) and the generation
// again. So no key is listed twice and the order holds whatever is written
// between round trips; a key deleted between being listed and having its
// value read is left out, as it was not present throughout.
//
// Generations are never reused, so finding the scan's generation both
// before and after the reads proves they all read the partition the scan
// started on, although other clients' commands may run between them. The
// pipeline is not a MULTI/EXEC transaction because a server at its
// maxmemory refuses every command queued in a transaction, reads included.
type iterator struct {
	e          *engine
	ctx        context.Context
	p          store.Partition
	zset, hash string
	reverse    bool
	limit      int // the scan's limit; 0 for none

	// min and max are the lex bounds of the keys not listed yet, in the
	// ZRANGEBYLEX syntax ("-", "+", "[key", "(key").
	min, max string
	listed   bool   // all keys of the range have been listed
	gen      string // the partition's generation, from the first round trip

	next     []string // listed keys whose values are still to be read
	ks, vs   [][]byte // the current chunk
	pos      int      // index of the current key in ks; -1 before the first
	returned int      // keys returned so far
	err      error
}

// fetch makes round trips until it has a chunk of keys with their values
// or the scan has nothing more. It fails with ErrPartitionNotFound when the
// partition does not exist on the first round trip, or no longer is the
// generation seen on the first one (it was dropped, or dropped and created
// again).
func (it *iterator) fetch() error {
	it.ks, it.vs, it.pos = it.ks[:0], it.vs[:0], -1
	for {
		list, count := !it.listed, it.e.chunk
		if it.limit > 0 {
			// Size the listing to what the limit still needs.
			if rest := it.limit - it.returned - len(it.next); rest <= 0 {
				list = false
			} else if rest < count {
				count = rest
			}
		}
		if len(it.next) == 0 && !list {
			return nil
		}
		pipe := it.e.client.Pipeline()
		genBefore := pipe.HGet(it.ctx, it.e.registry, it.p.Name())
		var valsCmd *goredis.SliceCmd
		if len(it.next) > 0 {
			valsCmd = pipe.HMGet(it.ctx, it.hash, it.next...)
		}
		var keysCmd *goredis.StringSliceCmd
		if list {
			by := &goredis.ZRangeBy{Min: it.min, Max: it.max, Count: int64(count)}
			if it.reverse {
				keysCmd = pipe.ZRevRangeByLex(it.ctx, it.zset, by)
			} else {
				keysCmd = pipe.ZRangeByLex(it.ctx, it.zset, by)
			}
		}
		genAfter := pipe.HGet(it.ctx, it.e.registry, it.p.Name())
		if _, err := pipe.Exec(it.ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return it.e.fail(it.ctx, "scan", err)
		}
		gen, err := generation(genBefore)
		if err != nil {
			return it.e.fail(it.ctx, "scan", err)
		}
		after, err := generation(genAfter)
		if err != nil {
			return it.e.fail(it.ctx, "scan", err)
		}
		if gen == "" || after != gen || (it.gen != "" && gen != it.gen) {
			if it.gen == "" && (gen == "" || after == "") {
				return notFound(it.p)
			}
			if it.gen == "" {
				// Dropped and created again within the first round trip:
				// the listing may have read either generation.
				continue
			}
			return fmt.Errorf("%w: %q was dropped during the scan", store.ErrPartitionNotFound, it.p.Name())
		}
		it.gen = gen
		if valsCmd != nil {
			vals, err := valsCmd.Result()
			if err != nil {
				return it.e.fail(it.ctx, "scan", err)
			}
			// Copy the chunk into one buffer, with one slice header per
			// key and per value.
			size, n := 0, 0
			for i, v := range vals {
				if s, ok := v.(string); ok {
					size += len(it.next[i]) + len(s)
					n++
				}
			}
			buf := make([]byte, 0, size)
			if cap(it.ks) < n {
				it.ks, it.vs = make([][]byte, 0, n), make([][]byte, 0, n)
			}
			for i, v := range vals {
				s, ok := v.(string)
				if !ok {
					continue // deleted since it was listed
				}
				start := len(buf)
				buf = append(buf, it.next[i]...)
				it.ks = append(it.ks, buf[start:len(buf):len(buf)])
				start = len(buf)
				buf = append(buf, s...)
				it.vs = append(it.vs, buf[start:len(buf):len(buf)])
			}
		}
		it.next = nil
		if keysCmd != nil {
			keys, err := keysCmd.Result()
			if err != nil {
				return it.e.fail(it.ctx, "scan", err)
			}
			if len(keys) < count {
				it.listed = true
			}
			if len(keys) > 0 {
				bound := "(" + keys[len(keys)-1]
				if it.reverse {
					it.max = bound
				} else {
					it.min = bound
				}
			}
			it.next = keys
		}
		if len(it.ks) > 0 {
			return nil
		}
	}
}

// generation returns the reply of an HGET of the registry: the generation,
// or "" when the partition does not exist.
func generation(c *goredis.StringCmd) (string, error) {
	g, err := c.Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	return g, err
}

func (it *iterator) Next() bool {
	if it.err != nil {
		return false
	}
	if it.pos+1 < len(it.ks) {
		it.pos++
		it.returned++
		return true
	}
	if err := it.fetch(); err != nil {
		it.err = err
		it.ks, it.vs, it.next = nil, nil, nil
		return false
	}
	if len(it.ks) == 0 {
		return false
	}
	it.pos = 0
	it.returned++
	return true
}

func (it *iterator) Key() []byte {
	if it.pos < 0 || it.pos >= len(it.ks) {
		return nil
	}
	return it.ks[it.pos]
}

func (it *iterator) Value() []byte {
	if it.pos < 0 || it.pos >= len(it.vs) {
		return nil
	}
	return it.vs[it.pos]
}

func (it *iterator) Err() error { return it.err }

func (it *iterator) Close() error {
	it.ks, it.vs, it.next, it.pos, it.listed = nil, nil, nil, -1, true
	return it.err
}
