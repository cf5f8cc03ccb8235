package etcd

import (
	"encoding/binary"
	"slices"
	"sort"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Layout, for the prefix P (see the package documentation):
//
//	P/format        the layout version, formatVersion
//	P/r/<name>      the registry entry of a partition; its etcd create
//	                revision is the partition's id
//	P/d/<id><key>   a key of partition id: id as 8 bytes big-endian
//
// The create revision of a registry entry is handed out by etcd, once: a
// partition dropped and created again under the same name gets a new id,
// and so an empty key range, whatever is left of the old one.
const formatVersion = "kalamdb-etcd/1"

// layout builds the etcd keys of one prefix.
type layout struct {
	format   string // P/format
	registry string // P/r/
	data     string // P/d/
}

func newLayout(prefix string) layout {
	return layout{format: prefix + "/format", registry: prefix + "/r/", data: prefix + "/d/"}
}

// entry returns the registry key of partition name.
func (l layout) entry(name string) string { return l.registry + name }

// idLen is the length of the id in a data key.
const idLen = 8

// dataPrefixLen is the length of the part of a data key before the key.
func (l layout) dataPrefixLen() int { return len(l.data) + idLen }

// appendPrefix appends the data prefix of partition id to dst.
func (l layout) appendPrefix(dst []byte, id int64) []byte {
	dst = append(dst, l.data...)
	return binary.BigEndian.AppendUint64(dst, uint64(id))
}

// key returns the etcd key of key in partition id.
func (l layout) key(id int64, key []byte) string {
	b := make([]byte, 0, l.dataPrefixLen()+len(key))
	return string(append(l.appendPrefix(b, id), key...))
}

// span returns the etcd interval of partition id's keys in r: nil bounds
// of r are the partition's own.
func (l layout) span(id int64, r store.Range) (lower, upper string) {
	pfx := l.appendPrefix(nil, id)
	lower = string(append(pfx[:len(pfx):len(pfx)], r.Lower...))
	if r.Upper != nil {
		upper = string(append(pfx[:len(pfx):len(pfx)], r.Upper...))
	} else {
		upper = string(l.appendPrefix(nil, id+1))
	}
	return lower, upper
}

// limits returns the batch limits of c: a batch of n operations becomes a
// transaction of at most 2n compares (a check and its partition's registry
// entry), 2n writes (a put inside a range delete earlier in the batch
// splits the range in two) and 2n reads in its failure branch (each
// partition's entry and each checked key), so n is half of max_txn_ops;
// and of max_request_bytes, what is not reserved for the layout's bytes of
// each operation (the data prefix of its keys, its registry entry twice,
// one more copy of a key of the longest size and the framing) is left for
// the batch's keys and values.
func limits(c Config) store.Capabilities {
	l := newLayout(c.Prefix)
	ops := c.MaxTxnOps / 2
	dp := l.dataPrefixLen()
	entry := len(l.registry) + store.MaxPartitionNameLen
	const framing = 48 // field tags and lengths of one operation, compare or read, generously
	perOp := 2*(dp+framing) + 2*(entry+framing) + 2*(dp+store.MaxKeySize+1+framing)
	const header = 4 << 10 // the request's own envelope
	return store.Capabilities{
		SnapshotScans: true,
		Durable:       true,
		MultiProcess:  true,
		MaxBatchOps:   ops,
		MaxBatchBytes: c.MaxRequestBytes - header - ops*perOp,
	}
}

// plan is a batch's writes as etcd takes them in one transaction: etcd
// refuses a transaction that writes a key twice, or puts a key inside a
// range it deletes, so the batch's operations are reduced to their net
// effect on the state before the batch: one final put or delete per key,
// and disjoint deleted ranges that leave out the keys put after them.
type plan struct {
	puts    []kvPair    // the final value of each key put
	deletes []string    // keys deleted, outside every range
	ranges  [][2]string // disjoint [start, end) intervals deleted, by start
}

type kvPair struct{ key, value string }

// compile returns the plan of ops (checks write nothing), whose keys are
// the etcd keys key(op) and, for a range delete, key(op) and end(op). Puts
// and deletes come in the order of their last operation in the batch.
func compile(ops []store.Operation, key func(i int) string, end func(i int) string) plan {
	// last[k] is the index of the last put or delete of k; a range delete
	// after it makes it a delete (the range's own).
	last := make(map[string]int, len(ops))
	var ranges [][2]string
	order := make([]string, 0, len(ops)) // keys in order of first write
	for i := range ops {
		switch ops[i].Kind {
		case store.OpPut, store.OpDelete:
			k := key(i)
			if _, ok := last[k]; !ok {
				order = append(order, k)
			}
			last[k] = i
		case store.OpDeleteRange:
			s, e := key(i), end(i)
			for k, j := range last {
				if j >= 0 && k >= s && k < e {
					last[k] = -1 // deleted by the range: a put before it is gone
				}
			}
			ranges = append(ranges, [2]string{s, e})
		}
	}
	ranges = merge(ranges)
	p := plan{puts: make([]kvPair, 0, len(order))}
	for _, k := range order {
		j := last[k]
		switch {
		case j >= 0 && ops[j].Kind == store.OpPut:
			p.puts = append(p.puts, kvPair{k, string(ops[j].Value)})
		case !covered(ranges, k):
			p.deletes = append(p.deletes, k)
		}
	}
	if len(ranges) == 0 {
		return p
	}
	// Cut each range around the keys put inside it (which were put after
	// it: one put before it is deleted by it, above).
	inside := make([]string, 0, len(p.puts))
	for _, kv := range p.puts {
		if covered(ranges, kv.key) {
			inside = append(inside, kv.key)
		}
	}
	slices.Sort(inside)
	j := 0
	for _, r := range ranges {
		start := r[0]
		for ; j < len(inside) && inside[j] < r[1]; j++ {
			k := inside[j]
			if k < r[0] {
				continue
			}
			if start < k {
				p.ranges = append(p.ranges, [2]string{start, k})
			}
			start = k + "\x00"
		}
		if start < r[1] {
			p.ranges = append(p.ranges, [2]string{start, r[1]})
		}
	}
	return p
}

// merge returns the union of ranges as disjoint intervals sorted by start.
func merge(ranges [][2]string) [][2]string {
	if len(ranges) < 2 {
		return ranges
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
	out := ranges[:1]
	for _, r := range ranges[1:] {
		last := &out[len(out)-1]
		if r[0] <= last[1] {
			if r[1] > last[1] {
				last[1] = r[1]
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// covered reports whether k lies in one of the disjoint sorted ranges.
func covered(ranges [][2]string, k string) bool {
	i := sort.Search(len(ranges), func(i int) bool { return ranges[i][1] > k })
	return i < len(ranges) && ranges[i][0] <= k
}
