package etcd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Name is the name the etcd backend registers under, and the name of its
// configuration section ([storage.etcd]).
const Name = "etcd"

// Register adds the etcd backend to r under Name.
func Register(r *store.Registry) {
	r.Register(Name, Open)
}

// Open is the registry Factory of the etcd backend: it decodes cfg strictly
// over DefaultConfig and calls OpenWith.
func Open(ctx context.Context, cfg store.Config) (store.StorageBackend, error) {
	c := DefaultConfig()
	if cfg != nil {
		if err := cfg.Decode(&c); err != nil {
			return nil, err
		}
	}
	return OpenWith(ctx, c)
}

// OpenWith connects to the etcd cluster of cfg and returns the backend. It
// validates cfg (errors wrap store.ErrInvalidArgument and name the key),
// and checks, within ctx and the dial timeout, that the cluster answers and
// that the prefix holds this backend's layout or nothing; a cluster that
// does not answer is store.ErrUnavailable.
func OpenWith(ctx context.Context, cfg Config) (store.StorageBackend, error) {
	e, err := openEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return store.New(e), nil
}

type engine struct {
	client  *clientv3.Client
	l       layout
	eps     string // the endpoints, for messages
	timeout time.Duration
	chunk   int
	caps    store.Capabilities

	// ids caches partition name → id (the create revision of its registry
	// entry). Every data call compares the entry's create revision with the
	// cached id in the same transaction, so a stale id (the partition was
	// dropped, or dropped and created again, by another process) is found
	// out and the call retried with the current one; the cache only saves
	// a round trip.
	ids sync.Map
}

func openEngine(ctx context.Context, cfg Config) (*engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: time.Duration(cfg.DialTimeout),
		Username:    cfg.Username,
		Password:    cfg.Password,
		TLS:         tc,
		Context:     context.Background(),
		// The client's own diagnostics (a retry, an endpoint down) say
		// what the errors returned say again.
		Logger: zap.NewNop(),
		// A request carries at most max_request_bytes, which the server
		// checks; the client must not refuse it first.
		MaxCallSendMsgSize: cfg.MaxRequestBytes + (1 << 20),
		// Keep connections to idle members checked, so that a dead one is
		// found out before a request waits on it.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: time.Duration(cfg.RequestTimeout),
	})
	if err != nil {
		return nil, fmt.Errorf("kalamdb-store/etcd: connecting to %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	e := &engine{
		client:  client,
		l:       newLayout(cfg.Prefix),
		eps:     strings.Join(cfg.Endpoints, ","),
		timeout: time.Duration(cfg.RequestTimeout),
		chunk:   cfg.ScanChunk,
		caps:    limits(cfg),
	}
	if err := e.checkFormat(ctx, time.Duration(cfg.DialTimeout)); err != nil {
		_ = client.Close()
		return nil, err
	}
	return e, nil
}

// checkFormat writes the format record under an empty prefix and checks it
// under one in use.
func (e *engine) checkFormat(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, max(within, e.timeout), errTimeout)
	defer cancel()
	resp, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(e.l.format), "=", 0)).
		Then(clientv3.OpPut(e.l.format, formatVersion)).
		Else(clientv3.OpGet(e.l.format)).
		Commit()
	if err != nil {
		return e.fail(ctx, "connect", err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 1 && string(kvs[0].Value) != formatVersion {
			return fmt.Errorf("%w: kalamdb-store/etcd: the prefix %q at %s holds layout %q; this version reads %q",
				store.ErrInvalidArgument, strings.TrimSuffix(e.l.format, "/format"), e.eps, kvs[0].Value, formatVersion)
		}
	}
	return nil
}

func notFound(p store.Partition) error {
	return fmt.Errorf("%w: %q", store.ErrPartitionNotFound, p.Name())
}

// errTimeout is the cause of a request's context when this package's
// timeout (request_timeout, or dial_timeout at open) ended it, as opposed
// to the caller's context.
var errTimeout = errors.New("kalamdb-store/etcd: timeout")

// call runs fn with a context that request_timeout bounds.
func (e *engine) call(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, e.timeout, errTimeout)
	defer cancel()
	return fn(ctx)
}

// fail wraps a client error with what was being done: the caller's
// context's error when that context ended; store.ErrUnavailable when the
// cluster cannot answer now (no quorum, no leader, a broken connection, or
// no answer within request_timeout); store.ErrInvalidArgument when etcd
// refuses the request's size. ctx is the context call made.
func (e *engine) fail(ctx context.Context, op string, err error) error {
	cause := context.Cause(ctx)
	if dl, ok := ctx.Deadline(); ok && cause == nil && !time.Now().Before(dl) {
		// The client saw the deadline a hair before the context's own
		// timer fired: wait for it, to learn whose deadline it was.
		<-ctx.Done()
		cause = context.Cause(ctx)
	}
	if cause != nil && !errors.Is(cause, errTimeout) {
		return fmt.Errorf("kalamdb-store/etcd: %s at %s: %w: %w", op, e.eps, ctx.Err(), err)
	}
	if cause != nil || unavailable(err) {
		return fmt.Errorf("kalamdb-store/etcd: %s at %s: %w (no answer within request_timeout %s, dial_timeout at open, or the cluster has no quorum): %w",
			op, e.eps, store.ErrUnavailable, e.timeout, err)
	}
	if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
		return fmt.Errorf("%w: kalamdb-store/etcd: %s at %s: the servers refuse the request's size; max_txn_ops and max_request_bytes must not exceed their --max-txn-ops and --max-request-bytes: %w",
			store.ErrInvalidArgument, op, e.eps, err)
	}
	return fmt.Errorf("kalamdb-store/etcd: %s at %s: %w", op, e.eps, err)
}

// unavailable reports whether err says that the cluster cannot answer now,
// rather than that it refused the request.
func unavailable(err error) bool {
	for _, known := range []error{
		rpctypes.ErrNoLeader, rpctypes.ErrNotCapable, rpctypes.ErrStopped, rpctypes.ErrTimeout,
		rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrUnhealthy,
		rpctypes.ErrLeaderChanged, rpctypes.ErrTooManyRequests, rpctypes.ErrTimeoutWaitAppliedIndex,
		context.DeadlineExceeded,
	} {
		if errors.Is(err, known) {
			return true
		}
	}
	switch rpcCode(err) {
	case "Unavailable", "DeadlineExceeded", "ResourceExhausted", "Aborted":
		return true
	}
	return false
}

// rpcCode returns the name of the gRPC status code that err carries
// ("Unavailable"), or "". The package reads it from the error rather than
// through the gRPC packages, which it does not import: the etcd client's
// are the only ones it uses.
func rpcCode(err error) string {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code().String()
	}
	const mark = "rpc error: code = "
	msg := err.Error()
	if i := strings.Index(msg, mark); i >= 0 {
		code, _, _ := strings.Cut(msg[i+len(mark):], " ")
		return code
	}
	return ""
}

// id returns the cached id of partition name, reading the registry when it
// has none; ok is false when the partition does not exist.
func (e *engine) id(ctx context.Context, name string) (id int64, ok bool, err error) {
	if v, found := e.ids.Load(name); found {
		return v.(int64), true, nil
	}
	return e.refresh(ctx, name)
}

// refresh reads the registry entry of name and caches its id.
func (e *engine) refresh(ctx context.Context, name string) (int64, bool, error) {
	var resp *clientv3.GetResponse
	err := e.call(ctx, func(ctx context.Context) (err error) {
		resp, err = e.client.Get(ctx, e.l.entry(name))
		if err != nil {
			return e.fail(ctx, "reading the partition registry", err)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return e.learn(name, resp.Kvs), len(resp.Kvs) == 1, nil
}

// learn caches what a read of name's registry entry found and returns the
// id (0 when there is no entry).
func (e *engine) learn(name string, kvs []*mvccpb.KeyValue) int64 {
	if len(kvs) == 0 {
		e.ids.Delete(name)
		return 0
	}
	e.ids.Store(name, kvs[0].CreateRevision)
	return kvs[0].CreateRevision
}

// exists is the compare that partition name still has id.
func (e *engine) exists(name string, id int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(e.l.entry(name)), "=", id)
}

// maxStale bounds how often one call finds its cached id stale and tries
// again: each time another process dropped and created the partition again
// between two round trips.
const maxStale = 5

// onPartition runs a transaction on partition p: then is its operation
// for the partition's id, run only if the partition still has that id.
// When the cached id is stale it reads the registry entry and runs the
// transaction again on the current id.
func (e *engine) onPartition(ctx context.Context, what string, p store.Partition, then func(id int64) clientv3.Op) (*clientv3.TxnResponse, error) {
	name := p.Name()
	for range maxStale {
		id, ok, err := e.id(ctx, name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound(p)
		}
		var resp *clientv3.TxnResponse
		err = e.call(ctx, func(ctx context.Context) (err error) {
			resp, err = e.client.Txn(ctx).If(e.exists(name, id)).Then(then(id)).Commit()
			if err != nil {
				return e.fail(ctx, what, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if resp.Succeeded {
			return resp, nil
		}
		// The partition was dropped, or dropped and created again, since
		// this process last saw it: a rare case, worth a second round trip
		// rather than a failure branch in every request.
		if _, ok, err := e.refresh(ctx, name); err != nil {
			return nil, err
		} else if !ok {
			return nil, notFound(p)
		}
	}
	return nil, fmt.Errorf("kalamdb-store/etcd: %s on %q: the partition was dropped and created again %d times in a row under this call", what, name, maxStale)
}

func (e *engine) Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error) {
	resp, err := e.onPartition(ctx, "get", p, func(id int64) clientv3.Op { return clientv3.OpGet(e.l.key(id, key)) })
	if err != nil {
		return nil, err
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, store.ErrNotFound
	}
	if kvs[0].Value == nil {
		return []byte{}, nil
	}
	return kvs[0].Value, nil
}

func (e *engine) Put(ctx context.Context, p store.Partition, key, value []byte) error {
	_, err := e.onPartition(ctx, "put", p, func(id int64) clientv3.Op { return clientv3.OpPut(e.l.key(id, key), string(value)) })
	return err
}

func (e *engine) Delete(ctx context.Context, p store.Partition, key []byte) error {
	_, err := e.onPartition(ctx, "delete", p, func(id int64) clientv3.Op { return clientv3.OpDelete(e.l.key(id, key)) })
	return err
}

// Batch is one transaction: its compares are every partition's registry
// entry (the cached id) and the checks (absent: the key's create revision
// is 0; value: the key's value, a compare etcd fails on a missing key),
// its success branch the batch's net writes
// (see compile), its failure branch reads of the same registry entries and
// checked keys, at the same revision, to tell which compare failed: a
// missing partition, a stale id (another process dropped and created the
// partition again; the batch is tried again with the new id), or a check.
func (e *engine) Batch(ctx context.Context, ops []store.Operation) error {
	for range maxStale {
		retry, err := e.batchOnce(ctx, ops)
		if !retry {
			return err
		}
	}
	return fmt.Errorf("kalamdb-store/etcd: batch: a partition was dropped and created again %d times in a row under this call", maxStale)
}

func (e *engine) batchOnce(ctx context.Context, ops []store.Operation) (retry bool, err error) {
	// The partitions in order of first use, with their ids.
	type part struct {
		p     store.Partition
		id    int64
		first int
	}
	var parts []part
	index := make(map[string]int, 2)
	ids := make([]int64, len(ops))
	for i := range ops {
		name := ops[i].Partition.Name()
		j, seen := index[name]
		if !seen {
			id, ok, err := e.id(ctx, name)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, fmt.Errorf("batch operation %d: %w", i, notFound(ops[i].Partition))
			}
			j = len(parts)
			index[name] = j
			parts = append(parts, part{p: ops[i].Partition, id: id, first: i})
		}
		ids[i] = parts[j].id
	}
	// The etcd key of every operation (and the end of a range delete),
	// sliced out of one string: one allocation for the batch.
	keys, ends := make([]string, len(ops)), make([]string, len(ops))
	{
		n := 0
		for i := range ops {
			n += 2*e.l.dataPrefixLen() + len(ops[i].Key) + len(ops[i].End)
		}
		buf := make([]byte, 0, n)
		bounds := make([][4]int, len(ops)) // key from, to; end from, to
		for i := range ops {
			bounds[i][0] = len(buf)
			buf = append(e.l.appendPrefix(buf, ids[i]), ops[i].Key...)
			bounds[i][1], bounds[i][2] = len(buf), len(buf)
			if ops[i].Kind == store.OpDeleteRange {
				buf = append(e.l.appendPrefix(buf, ids[i]), ops[i].End...)
			}
			bounds[i][3] = len(buf)
		}
		all := string(buf)
		for i, b := range bounds {
			keys[i], ends[i] = all[b[0]:b[1]], all[b[2]:b[3]]
		}
	}
	nchecks := 0
	for i := range ops {
		if ops[i].Kind.IsCheck() {
			nchecks++
		}
	}
	// clientv3.Op is a large struct: size the lists to what they hold.
	cmps := make([]clientv3.Cmp, 0, len(parts)+nchecks)
	reads := make([]clientv3.Op, 0, len(parts)+nchecks)
	for _, pt := range parts {
		cmps = append(cmps, e.exists(pt.p.Name(), pt.id))
		reads = append(reads, clientv3.OpGet(e.l.entry(pt.p.Name())))
	}
	checks := make([]int, 0, nchecks)
	for i := range ops {
		k := keys[i]
		switch ops[i].Kind {
		case store.OpCheckAbsent:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		case store.OpCheckValue:
			// etcd fails a value compare on a missing key, so an empty
			// value never matches one.
			cmps = append(cmps, clientv3.Compare(clientv3.Value(k), "=", string(ops[i].Value)))
		default:
			continue
		}
		checks = append(checks, i)
		reads = append(reads, clientv3.OpGet(k))
	}
	pl := compile(ops, func(i int) string { return keys[i] }, func(i int) string { return ends[i] })
	writes := make([]clientv3.Op, 0, len(pl.puts)+len(pl.deletes)+len(pl.ranges))
	for _, kv := range pl.puts {
		writes = append(writes, clientv3.OpPut(kv.key, kv.value))
	}
	for _, k := range pl.deletes {
		writes = append(writes, clientv3.OpDelete(k))
	}
	for _, r := range pl.ranges {
		writes = append(writes, clientv3.OpDelete(r[0], clientv3.WithRange(r[1])))
	}
	var resp *clientv3.TxnResponse
	err = e.call(ctx, func(ctx context.Context) (err error) {
		resp, err = e.client.Txn(ctx).If(cmps...).Then(writes...).Else(reads...).Commit()
		if err != nil {
			return e.fail(ctx, fmt.Sprintf("batch of %d operations", len(ops)), err)
		}
		return nil
	})
	if err != nil || resp.Succeeded {
		return false, err
	}
	// Which compare failed: the reads ran at the revision the compares did.
	stale := false
	for j, pt := range parts {
		id := e.learn(pt.p.Name(), resp.Responses[j].GetResponseRange().Kvs)
		if id == 0 {
			return false, fmt.Errorf("batch operation %d: %w", pt.first, notFound(pt.p))
		}
		stale = stale || id != pt.id
	}
	if stale {
		return true, nil
	}
	got := make(map[int]*mvccpb.KeyValue, len(checks))
	for j, i := range checks {
		if kvs := resp.Responses[len(parts)+j].GetResponseRange().Kvs; len(kvs) == 1 {
			got[i] = kvs[0]
		}
	}
	err = store.EvalChecks(ops, func(i int) ([]byte, bool, error) {
		kv, ok := got[i]
		if !ok {
			return nil, false, nil
		}
		return kv.Value, true, nil
	})
	if err == nil {
		err = fmt.Errorf("kalamdb-store/etcd: batch at %s: the transaction failed, yet every partition and check holds at its revision %d", e.eps, resp.Header.Revision)
	}
	return false, err
}

func (e *engine) PartitionExists(ctx context.Context, p store.Partition) (bool, error) {
	_, ok, err := e.refresh(ctx, p.Name())
	return ok, err
}

// CreatePartition writes the registry entry if it is missing; the entry's
// create revision, which etcd hands out once, is the partition's id.
func (e *engine) CreatePartition(ctx context.Context, p store.Partition) error {
	entry := e.l.entry(p.Name())
	var resp *clientv3.TxnResponse
	err := e.call(ctx, func(ctx context.Context) (err error) {
		resp, err = e.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(entry), "=", 0)).
			Then(clientv3.OpPut(entry, ""), clientv3.OpGet(entry)).
			Else(clientv3.OpGet(entry)).
			Commit()
		if err != nil {
			return e.fail(ctx, fmt.Sprintf("create partition %q", p.Name()), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	read := resp.Responses[0]
	if resp.Succeeded {
		read = resp.Responses[1]
	}
	e.learn(p.Name(), read.GetResponseRange().Kvs)
	return nil
}

func (e *engine) ListPartitions(ctx context.Context) ([]store.Partition, error) {
	var resp *clientv3.GetResponse
	err := e.call(ctx, func(ctx context.Context) (err error) {
		resp, err = e.client.Get(ctx, e.l.registry, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return e.fail(ctx, "list partitions", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]store.Partition, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		p, err := store.NewPartition(strings.TrimPrefix(string(kv.Key), e.l.registry))
		if err != nil {
			return nil, fmt.Errorf("kalamdb-store/etcd: the partition registry %s holds a name that is not a partition name: %w", e.l.registry, err)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// DropPartition deletes the registry entry and range-deletes the
// partition's keys in one transaction, if the entry still has the id read
// just before; from its revision on, the partition does not exist.
func (e *engine) DropPartition(ctx context.Context, p store.Partition) error {
	name := p.Name()
	for range maxStale {
		id, ok, err := e.refresh(ctx, name)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(p)
		}
		lower, upper := e.l.span(id, store.Range{})
		var resp *clientv3.TxnResponse
		err = e.call(ctx, func(ctx context.Context) (err error) {
			resp, err = e.client.Txn(ctx).If(e.exists(name, id)).
				Then(clientv3.OpDelete(e.l.entry(name)), clientv3.OpDelete(lower, clientv3.WithRange(upper))).
				Commit()
			if err != nil {
				return e.fail(ctx, fmt.Sprintf("drop partition %q", name), err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if resp.Succeeded {
			e.ids.Delete(name)
			return nil
		}
	}
	return fmt.Errorf("kalamdb-store/etcd: drop partition %q: the partition was dropped and created again %d times in a row under this call", name, maxStale)
}

func (e *engine) Capabilities() store.Capabilities { return e.caps }

func (e *engine) Close() error {
	if err := e.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("kalamdb-store/etcd: closing the client of %s: %w", e.eps, err)
	}
	return nil
}
