package difftest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/bbolt"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/etcd/etcdtest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/memory"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/pebble"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/redis/redistest"
	"github.com/kalamdb/kalamdb-go/kalamdb-store/rocksdb"
)

// opener opens one backend under test. open returns a fresh, empty backend
// whose storage lives under dir, and for a durable backend a function that
// opens the same storage again after it was closed (nil otherwise).
type opener struct {
	name string
	open func(t testing.TB, dir string) (store.StorageBackend, func() (store.StorageBackend, error))
}

// backends are compared, one after the other, with the memory backend.
// Add a backend with one entry.
var backends = []opener{
	{name: rocksdb.Name, open: func(t testing.TB, dir string) (store.StorageBackend, func() (store.StorageBackend, error)) {
		c := rocksdb.DefaultConfig()
		c.Path = filepath.Join(dir, "rocksdb")
		c.BlockCacheMB, c.WriteBufferMB, c.TotalWriteBufferMB = 1, 1, 2
		b, err := rocksdb.OpenWith(c)
		require.NoError(t, err)
		return b, func() (store.StorageBackend, error) { return rocksdb.OpenWith(c) }
	}},
	{name: pebble.Name, open: func(t testing.TB, dir string) (store.StorageBackend, func() (store.StorageBackend, error)) {
		c := pebble.DefaultConfig()
		c.Path = filepath.Join(dir, "pebble")
		c.SyncWrites, c.BlockCacheMB, c.MemTableMB = false, 1, 1
		b, err := pebble.OpenWith(c)
		require.NoError(t, err)
		return b, func() (store.StorageBackend, error) { return pebble.OpenWith(c) }
	}},
	{name: bbolt.Name, open: func(t testing.TB, dir string) (store.StorageBackend, func() (store.StorageBackend, error)) {
		c := bbolt.DefaultConfig()
		c.Path = filepath.Join(dir, "bbolt")
		c.SyncWrites, c.InitialMmapMB = false, 0 // the smallest map: writes remap under open iterators
		b, err := bbolt.OpenWith(c)
		require.NoError(t, err)
		return b, func() (store.StorageBackend, error) { return bbolt.OpenWith(c) }
	}},
	{name: etcd.Name, open: func(t testing.TB, _ string) (store.StorageBackend, func() (store.StorageBackend, error)) {
		// One three-member cluster per test process; a fresh prefix per run.
		c := etcd.DefaultConfig()
		c.Endpoints, c.Prefix = etcdtest.Shared(t).Endpoints(), etcdtest.FreshPrefix()
		c.ScanChunk = 2 // every scan of more than two keys reads several pages
		b, err := etcd.OpenWith(context.Background(), c)
		require.NoError(t, err)
		return b, func() (store.StorageBackend, error) { return etcd.OpenWith(context.Background(), c) }
	}},
	{name: redis.Name, open: func(t testing.TB, _ string) (store.StorageBackend, func() (store.StorageBackend, error)) {
		// One redis-server per test process; a fresh key prefix per run.
		c := redis.DefaultConfig()
		c.Addr, c.KeyPrefix = redistest.Shared(t).Addr, redistest.FreshPrefix()
		c.ScanChunk = 2 // every scan of more than two keys crosses round trips
		b, err := redis.OpenWith(context.Background(), c)
		require.NoError(t, err)
		return b, func() (store.StorageBackend, error) { return redis.OpenWith(context.Background(), c) }
	}},
}

// FuzzDifferential runs the operations decoded from its input on the model
// and on every backend of the list, and fails on the first answer that
// differs, printing the operations that led there.
func FuzzDifferential(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, o := range backends {
			runDiff(t, o, data)
		}
	})
}

// maxOps bounds the operations one input runs, so that an input is quick.
const maxOps = 120

// Opcodes; the decoder takes each opcode byte modulo numOps.
const (
	opPut = iota
	opDelete
	opGet
	opBatch
	opScan
	opIterAcross // open a scan, run more operations, then read it
	opCreate
	opDrop
	opList
	opExists
	opReopen
	numOps
)

// names is the pool of partition names; "default" is RocksDB's reserved
// column family name, "a.b" and "a" are prefixes of each other.
var names = []string{"a", "a.b", "default", "zz"}

// alphabet is the pool of key bytes: the extremes and neighbours, so that
// keys collide, share prefixes and sit on prefix-successor edges.
var alphabet = []byte{0x00, 0x01, 'a', 'b', 0xfe, 0xff}

// decoder reads the fuzz input; past its end every byte reads as 0.
type decoder struct{ data []byte }

func (d *decoder) byte() byte {
	if len(d.data) == 0 {
		return 0
	}
	b := d.data[0]
	d.data = d.data[1:]
	return b
}

func (d *decoder) done() bool { return len(d.data) == 0 }

func (d *decoder) partition() store.Partition {
	return store.MustPartition(names[int(d.byte())%len(names)])
}

// bytes returns 0 to max-1 bytes of the alphabet.
func (d *decoder) bytes(max int) []byte {
	n := int(d.byte()) % max
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[int(d.byte())%len(alphabet)]
	}
	return b
}

// key returns a key of 1 to 3 bytes; one key in 32 is empty (invalid).
func (d *decoder) key() []byte {
	if d.byte()%32 == 0 {
		return []byte{}
	}
	return append([]byte{alphabet[int(d.byte())%len(alphabet)]}, d.bytes(3)...)
}

// value returns a value unique to the step, or (one in eight) an empty one.
func (d *decoder) value(step, i int) []byte {
	if d.byte()%8 == 0 {
		return []byte{}
	}
	return []byte(fmt.Sprintf("v%d.%d", step, i))
}

func (d *decoder) scanOptions() store.ScanOptions {
	flags := d.byte()
	return store.ScanOptions{
		Prefix:         d.bytes(3),
		Start:          d.bytes(4),
		ExclusiveStart: flags&1 != 0,
		Reverse:        flags&2 != 0,
		Limit:          int(flags>>2) % 6,
	}
}

// batch decodes 1 to 6 operations: by the kind byte, a delete (0 mod 8), a
// range delete up to a second key (3 mod 8; often an invalid interval), a
// check that the key is absent (6 mod 8), a check of its value (7 mod 8),
// or a put. A value check compares with a value of the step, which no key
// holds, or (by the next byte, one in two) with matchModel, which step
// replaces with the value the model holds.
func (d *decoder) batch(step int) []store.Operation {
	ops := make([]store.Operation, 1+int(d.byte())%6)
	for i := range ops {
		p, k := d.partition(), d.key()
		switch d.byte() % 8 {
		case 0:
			ops[i] = store.DeleteOp(p, k)
		case 3:
			ops[i] = store.DeleteRangeOp(p, k, d.key())
		case 6:
			ops[i] = store.CheckAbsentOp(p, k)
		case 7:
			v := matchModel
			if d.byte()%2 == 1 {
				v = d.value(step, i)
			}
			ops[i] = store.CheckValueOp(p, k, v)
		default:
			ops[i] = store.PutOp(p, k, d.value(step, i))
		}
	}
	return ops
}

// matchModel is the value of a decoded value check that should hold: step
// replaces it with what the model holds under the key before the batch.
var matchModel = []byte("\xffmatch-the-model")

// fillChecks replaces each matchModel of ops with the model's value of the
// key, when it has one.
func (p *pair) fillChecks(ops []store.Operation) {
	for i := range ops {
		if ops[i].Kind == store.OpCheckValue && bytes.Equal(ops[i].Value, matchModel) {
			if v, err := p.model.Get(p.ctx, ops[i].Partition, ops[i].Key); err == nil {
				ops[i].Value = v
			}
		}
	}
}

// pair is the model and the backend under test, with the log of what ran.
type pair struct {
	t        testing.TB
	name     string
	model    store.StorageBackend
	b        store.StorageBackend
	reopen   func() (store.StorageBackend, error)
	snapshot bool
	log      []string
	ctx      context.Context
}

func runDiff(t testing.TB, o opener, data []byte) {
	dir := scratchDir(t)
	b, reopen := o.open(t, dir)
	p := &pair{
		t: t, name: o.name, model: memory.New(), b: b, ctx: context.Background(),
		snapshot: b.Capabilities().SnapshotScans,
	}
	if b.Capabilities().Durable {
		p.reopen = reopen
	}
	defer func() {
		require.NoError(t, p.model.Close())
		require.NoError(t, p.b.Close(), "%s: close after\n%s", p.name, p.trace())
	}()
	d := &decoder{data: data}
	for step := 0; step < maxOps && !d.done(); step++ {
		p.step(d, step, true)
	}
}

// scratchDir returns a fresh directory for one run, in memory (/dev/shm)
// where the system has it: a run opens a database and fsyncs, and the fuzzer
// runs thousands of them.
func scratchDir(t testing.TB) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "kalamdb-difftest-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func (p *pair) trace() string {
	const keep = 40
	l := p.log
	if len(l) > keep {
		l = append([]string{fmt.Sprintf("… %d earlier operations", len(l)-keep)}, l[len(l)-keep:]...)
	}
	return "  " + strings.Join(l, "\n  ")
}

func (p *pair) logf(format string, args ...any) {
	p.log = append(p.log, fmt.Sprintf(format, args...))
}

// fail stops the test, naming the backend and printing the trace.
func (p *pair) fail(format string, args ...any) {
	p.t.Helper()
	p.t.Fatalf("%s differs from the model: %s\nafter:\n%s", p.name, fmt.Sprintf(format, args...), p.trace())
}

// step decodes and runs one operation on both sides. nested is false inside
// opIterAcross, which does not nest.
func (p *pair) step(d *decoder, step int, nested bool) {
	switch int(d.byte()) % numOps {
	case opPut:
		part, k := d.partition(), d.key()
		v := d.value(step, 0)
		p.logf("put %s %q = %q", part, k, v)
		p.sameErr(p.model.Put(p.ctx, part, k, v), p.b.Put(p.ctx, part, k, v))
	case opDelete:
		part, k := d.partition(), d.key()
		p.logf("delete %s %q", part, k)
		p.sameErr(p.model.Delete(p.ctx, part, k), p.b.Delete(p.ctx, part, k))
	case opGet:
		part, k := d.partition(), d.key()
		p.logf("get %s %q", part, k)
		mv, merr := p.model.Get(p.ctx, part, k)
		bv, berr := p.b.Get(p.ctx, part, k)
		p.sameErr(merr, berr)
		if merr == nil && (!bytes.Equal(mv, bv) || bv == nil) {
			p.fail("get %s %q: model %q, backend %q", part, k, mv, bv)
		}
	case opBatch:
		ops := d.batch(step)
		p.fillChecks(ops)
		p.logf("batch %s", describe(ops))
		p.sameErr(p.model.Batch(p.ctx, ops), p.b.Batch(p.ctx, ops))
	case opScan:
		part, o := d.partition(), d.scanOptions()
		p.logf("scan %s %s", part, describeScan(o))
		mk, merr := scanAll(p.model, part, o)
		bk, berr := scanAll(p.b, part, o)
		p.sameErr(merr, berr)
		if mk != bk {
			p.fail("scan %s %s:\nmodel   %s\nbackend %s", part, describeScan(o), mk, bk)
		}
	case opIterAcross:
		part, o := d.partition(), d.scanOptions()
		if !nested || !p.snapshot {
			return
		}
		p.logf("open scan %s %s", part, describeScan(o))
		mi, merr := p.model.Scan(p.ctx, part, o)
		bi, berr := p.b.Scan(p.ctx, part, o)
		p.sameErr(merr, berr)
		if merr != nil {
			return
		}
		// Read a little, run up to three operations, read the rest.
		first := int(d.byte()) % 3
		var mk, bk strings.Builder
		for i := 0; i < first; i++ {
			readOne(mi, &mk)
			readOne(bi, &bk)
		}
		n := int(d.byte()) % 4
		for i := 0; i < n && !d.done(); i++ {
			p.step(d, step, false)
		}
		for readOne(mi, &mk) {
		}
		for readOne(bi, &bk) {
		}
		p.sameErr(mi.Close(), bi.Close())
		p.logf("read scan %s %s", part, describeScan(o))
		if mk.String() != bk.String() {
			p.fail("scan %s %s held across operations:\nmodel   %s\nbackend %s", part, describeScan(o), mk.String(), bk.String())
		}
	case opCreate:
		part := d.partition()
		p.logf("create %s", part)
		p.sameErr(p.model.CreatePartition(p.ctx, part), p.b.CreatePartition(p.ctx, part))
	case opDrop:
		part := d.partition()
		p.logf("drop %s", part)
		p.sameErr(p.model.DropPartition(p.ctx, part), p.b.DropPartition(p.ctx, part))
	case opList:
		p.logf("list")
		ml, merr := p.model.ListPartitions(p.ctx)
		bl, berr := p.b.ListPartitions(p.ctx)
		p.sameErr(merr, berr)
		if fmt.Sprint(ml) != fmt.Sprint(bl) {
			p.fail("list: model %v, backend %v", ml, bl)
		}
	case opExists:
		part := d.partition()
		p.logf("exists %s", part)
		mok, merr := p.model.PartitionExists(p.ctx, part)
		bok, berr := p.b.PartitionExists(p.ctx, part)
		p.sameErr(merr, berr)
		if mok != bok {
			p.fail("exists %s: model %v, backend %v", part, mok, bok)
		}
	case opReopen:
		if p.reopen == nil || !nested {
			return
		}
		p.logf("reopen")
		if err := p.b.Close(); err != nil {
			p.fail("close before reopen: %v", err)
		}
		nb, err := p.reopen()
		if err != nil {
			p.fail("reopen: %v", err)
		}
		p.b = nb
	}
}

// readOne appends the iterator's next pair (or its end and error class) to
// out and reports whether there was a pair.
func readOne(it store.Iterator, out *strings.Builder) bool {
	if it.Next() {
		fmt.Fprintf(out, "%q=%q ", it.Key(), it.Value())
		return true
	}
	fmt.Fprintf(out, "end(%s) ", class(it.Err()))
	return false
}

func scanAll(b store.StorageBackend, part store.Partition, o store.ScanOptions) (string, error) {
	it, err := b.Scan(context.Background(), part, o)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for readOne(it, &out) {
	}
	return out.String(), it.Close()
}

// class names the contract error an error is, for comparison.
func class(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "ErrNotFound"
	case errors.Is(err, store.ErrPartitionNotFound):
		return "ErrPartitionNotFound"
	case errors.Is(err, store.ErrInvalidArgument):
		return "ErrInvalidArgument"
	case errors.Is(err, store.ErrClosed):
		return "ErrClosed"
	case errors.Is(err, store.ErrUnsupported):
		return "ErrUnsupported"
	case errors.Is(err, store.ErrConditionFailed):
		// Which check failed, and what it found, are part of the answer.
		var ce *store.ConditionError
		if !errors.As(err, &ce) {
			return "ErrConditionFailed without a ConditionError"
		}
		return fmt.Sprintf("ErrConditionFailed(operation %d, exists %v)", ce.Index, ce.Exists)
	}
	return "unexpected error"
}

func (p *pair) sameErr(model, backend error) {
	p.t.Helper()
	mc, bc := class(model), class(backend)
	if mc != bc || bc == "unexpected error" || strings.HasSuffix(bc, "without a ConditionError") {
		p.fail("model returned %s (%v), backend %s (%v)", mc, model, bc, backend)
	}
}

func describe(ops []store.Operation) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		switch op.Kind {
		case store.OpPut:
			parts[i] = fmt.Sprintf("put %s %q=%q", op.Partition, op.Key, op.Value)
		case store.OpDeleteRange:
			parts[i] = fmt.Sprintf("delete-range %s [%q, %q)", op.Partition, op.Key, op.End)
		case store.OpCheckAbsent:
			parts[i] = fmt.Sprintf("check-absent %s %q", op.Partition, op.Key)
		case store.OpCheckValue:
			parts[i] = fmt.Sprintf("check-value %s %q=%q", op.Partition, op.Key, op.Value)
		default:
			parts[i] = fmt.Sprintf("delete %s %q", op.Partition, op.Key)
		}
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func describeScan(o store.ScanOptions) string {
	return fmt.Sprintf("{prefix %q start %q exclusive %v reverse %v limit %d}", o.Prefix, o.Start, o.ExclusiveStart, o.Reverse, o.Limit)
}

// seeds returns the seed corpus: hand-written sequences that reach every
// operation, then pseudo-random inputs from a fixed seed.
func seeds() [][]byte {
	// Operation builders in the decoder's byte format.
	part := func(name string) byte {
		for i, n := range names {
			if n == name {
				return byte(i)
			}
		}
		panic(name)
	}
	sym := func(c byte) byte { return byte(bytes.IndexByte(alphabet, c)) }
	key := func(k string) []byte { // 1 to 3 bytes of the alphabet
		out := []byte{1, sym(k[0]), byte(len(k) - 1)}
		for i := 1; i < len(k); i++ {
			out = append(out, sym(k[i]))
		}
		return out
	}
	bs := func(s string) []byte {
		out := []byte{byte(len(s))}
		for i := 0; i < len(s); i++ {
			out = append(out, sym(s[i]))
		}
		return out
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	create := func(p string) []byte { return []byte{opCreate, part(p)} }
	drop := func(p string) []byte { return []byte{opDrop, part(p)} }
	put := func(p, k string) []byte { return cat([]byte{opPut, part(p)}, key(k), []byte{1}) }
	del := func(p, k string) []byte { return cat([]byte{opDelete, part(p)}, key(k)) }
	get := func(p, k string) []byte { return cat([]byte{opGet, part(p)}, key(k)) }
	scan := func(p, prefix, start string, flags byte) []byte {
		return cat([]byte{opScan, part(p), flags}, bs(prefix), bs(start))
	}
	list, exists, reopen := []byte{opList}, []byte{opExists, part("a")}, []byte{opReopen}

	s := [][]byte{
		// Every operation on partitions that exist and that do not.
		cat(put("a", "a"), create("a"), put("a", "a"), put("a", "ab"), put("a", "\xff\xff"), put("a", "\x00"),
			get("a", "a"), get("a", "b"), get("zz", "a"), del("a", "a"), get("a", "a"), list, exists,
			scan("a", "", "", 0), scan("a", "", "", 2), scan("a", "a", "", 0), scan("a", "\xff", "", 2),
			scan("a", "", "a", 1), scan("a", "", "b", 3), scan("zz", "", "", 0)),
		// "default" is an ordinary partition; drop and re-create it.
		cat(create("default"), put("default", "k"), reopen, get("default", "k"), drop("default"),
			get("default", "k"), create("default"), scan("default", "", "", 0), list, reopen, list),
		// Names that are prefixes of each other stay apart; reopen keeps them.
		cat(create("a"), create("a.b"), put("a", "b"), put("a.b", "b"), del("a.b", "b"),
			reopen, get("a", "b"), get("a.b", "b"), drop("a"), reopen, list, scan("a.b", "", "", 0)),
		// A batch with a missing partition is rejected whole.
		cat(create("a"), []byte{opBatch, 1, part("a"), 1, sym('a'), 0, 1, 1, part("zz"), 1, sym('b'), 0, 1, 1},
			scan("a", "", "", 0)),
		// Range deletes in batches: with puts before and after, across
		// partitions, an empty interval, an inverted one and a missing
		// partition (both reject the whole batch).
		cat(create("a"), create("zz"), put("a", "a"), put("a", "ab"), put("a", "a\x00"), put("a", "b"), put("a", "\xff"),
			put("zz", "ab"),
			[]byte{opBatch, 3}, []byte{part("a")}, key("b"), []byte{1, 1}, // put b
			[]byte{part("a")}, key("a"), []byte{3}, key("b\x00"), // delete-range [a, b\x00)
			[]byte{part("zz")}, key("\x00"), []byte{3}, key("\x01"), // an empty interval
			[]byte{part("a")}, key("a\x00"), []byte{1, 1}, // put a\x00 again
			scan("a", "", "", 0), scan("zz", "", "", 0),
			[]byte{opBatch, 1}, []byte{part("a")}, key("b"), []byte{3}, key("a"), // inverted: rejected
			[]byte{part("a")}, key("\xff"), []byte{0}, // and this delete with it
			[]byte{opBatch, 1}, []byte{part("a")}, key("\x00"), []byte{3}, key("\xff\xff"),
			[]byte{part("default")}, key("a"), []byte{0}, // missing partition: rejected
			scan("a", "", "", 0), reopen, scan("a", "", "", 0)),
		// An iterator held open across writes, a drop and a re-create.
		cat(create("a"), put("a", "a"), put("a", "b"), []byte{opIterAcross, part("a"), 0, 0, 0, 1, 3},
			put("a", "c"), drop("a"), create("a"), scan("a", "", "", 0)),
		// Checks: put-if-absent that holds and fails, a value check that
		// holds (the model's value) and one that fails (a value no key
		// holds), a failing check in another partition, a check on a
		// missing partition, a check beside a range delete of its key.
		cat(create("a"), create("zz"), put("a", "a"), put("zz", "b"),
			[]byte{opBatch, 1}, []byte{part("a")}, key("b"), []byte{6}, []byte{part("a")}, key("b"), []byte{1, 1}, // absent b, put b
			[]byte{opBatch, 1}, []byte{part("a")}, key("b"), []byte{6}, []byte{part("a")}, key("b"), []byte{1, 1}, // again: fails
			[]byte{opBatch, 1}, []byte{part("a")}, key("a"), []byte{7, 0}, []byte{part("a")}, key("a"), []byte{1, 1}, // value a holds: CAS
			[]byte{opBatch, 2}, []byte{part("a")}, key("ab"), []byte{1, 1}, // put ab
			[]byte{part("zz")}, key("b"), []byte{7, 1, 1}, // value of zz/b is not this step's: fails
			[]byte{part("a")}, key("a"), []byte{0}, // delete a
			[]byte{opBatch, 1}, []byte{part("default")}, key("a"), []byte{6}, []byte{part("a")}, key("a"), []byte{0}, // missing partition
			[]byte{opBatch, 1}, []byte{part("a")}, key("\x00"), []byte{3}, key("\xff"), []byte{part("a")}, key("b"), []byte{7, 0}, // range delete, b holds
			scan("a", "", "", 0), scan("zz", "", "", 0)),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 24; i++ {
		b := make([]byte, 64+r.IntN(512))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		// Start most inputs by creating partitions, so that more operations
		// find one.
		if i%4 != 0 {
			b = append(cat(create("a"), create("a.b"), create("default")), b...)
		}
		s = append(s, b)
	}
	return s
}

// TestSeedsReachEveryOperation guards the seed corpus: the hand-written
// seeds must run every operation, so that plain `go test` exercises them.
func TestSeedsReachEveryOperation(t *testing.T) {
	seen := map[int]bool{}
	ranges := 0
	checks := 0
	for _, s := range seeds()[:7] {
		d := &decoder{data: s}
		for !d.done() {
			op := int(d.byte()) % numOps
			seen[op] = true
			// Skip the operation's arguments by decoding them as step does.
			switch op {
			case opPut:
				d.partition()
				d.key()
				d.value(0, 0)
			case opDelete, opGet:
				d.partition()
				d.key()
			case opBatch:
				for _, o := range d.batch(0) {
					if o.Kind == store.OpDeleteRange {
						ranges++
					}
					if o.Kind.IsCheck() {
						checks++
					}
				}
			case opScan:
				d.partition()
				d.scanOptions()
			case opIterAcross:
				d.partition()
				d.scanOptions()
				d.byte()
				d.byte()
			case opCreate, opDrop, opExists:
				d.partition()
			}
		}
	}
	for op := 0; op < numOps; op++ {
		require.True(t, seen[op], "no seed reaches operation %d", op)
	}
	require.GreaterOrEqual(t, ranges, 3, "the seeds run range deletes")
	require.GreaterOrEqual(t, checks, 6, "the seeds run checks")
}

// TestDifferentialFindsABug checks that the harness can fail: a backend
// that loses every delete differs from the model, and the failure names the
// operation.
func TestDifferentialFindsABug(t *testing.T) {
	for _, o := range backends {
		lossy := opener{name: o.name + "+lost-deletes", open: func(t testing.TB, dir string) (store.StorageBackend, func() (store.StorageBackend, error)) {
			b, _ := o.open(t, dir)
			return dropDeletes{b}, nil
		}}
		r := &recorder{TB: t}
		func() {
			defer func() {
				if v := recover(); v != nil && v != errStop {
					panic(v)
				}
			}()
			runDiff(r, lossy, seeds()[0])
		}()
		require.True(t, r.failed, "%s: a backend that ignores deletes must be caught", o.name)
		require.Contains(t, r.msg, "lost-deletes differs from the model")
		require.Contains(t, r.msg, "delete a \"a\"", "the trace shows the operation")
	}
}

// recorder is a testing.TB whose failures stop runDiff (by panicking with
// errStop) and are recorded instead of failing the test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

var errStop = errors.New("stop")

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	panic(errStop)
}

func (r *recorder) Errorf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

func (r *recorder) FailNow() {
	r.failed = true
	panic(errStop)
}

// dropDeletes is a broken backend: Delete succeeds and does nothing.
type dropDeletes struct{ store.StorageBackend }

func (d dropDeletes) Delete(ctx context.Context, p store.Partition, key []byte) error {
	ok, err := d.PartitionExists(ctx, p)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %q", store.ErrPartitionNotFound, p.Name())
	}
	return store.ValidateKey(key)
}

// TestMain shortens the fuzzer's minimisation of new inputs from 60s to 10s
// unless -fuzzminimizetime is given: every execution opens a database, so a
// minute of minimising per new input would leave little time to explore.
func TestMain(m *testing.M) {
	if err := flag.Set("test.fuzzminimizetime", "10s"); err != nil {
		panic(err)
	}
	code := m.Run()
	if err := etcdtest.StopShared(); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}
