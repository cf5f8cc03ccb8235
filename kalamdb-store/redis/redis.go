package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// Name is the name the Redis backend registers under, and the name of its
// configuration section ([storage.redis]).
const Name = "redis"

// Register adds the Redis backend to r under Name.
func Register(r *store.Registry) {
	r.Register(Name, Open)
}

// Open is the registry Factory of the Redis backend: it decodes cfg strictly
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

// OpenWith connects to the Redis server of cfg and returns the backend. It
// validates cfg (errors wrap store.ErrInvalidArgument and name the key),
// checks that the server answers within ctx and the dial timeout, and refuses
// a server in cluster mode with an error wrapping store.ErrUnsupported.
func OpenWith(ctx context.Context, cfg Config) (store.StorageBackend, error) {
	e, err := openEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return store.New(e), nil
}

// openEngine connects and returns the engine that OpenWith wraps.
func openEngine(ctx context.Context, cfg Config) (*engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	network := "tcp"
	if strings.HasPrefix(cfg.Addr, "/") {
		network = "unix"
	}
	client := goredis.NewClient(&goredis.Options{
		Network: network,
		Addr:    cfg.Addr,
		// RESP2 replies are what the scripts are written against, and every
		// server and proxy speaks it.
		Protocol: 2,
		Username: cfg.Username,
		Password: cfg.Password,
		DB:       cfg.DB,
		// A command whose reply was lost may have been applied; sending it
		// again could overwrite a newer write of another client. Errors are
		// returned to the caller instead.
		MaxRetries:            -1,
		DialTimeout:           time.Duration(cfg.DialTimeout),
		DialerRetries:         1,
		ReadTimeout:           time.Duration(cfg.ReadTimeout),
		WriteTimeout:          time.Duration(cfg.WriteTimeout),
		ContextTimeoutEnabled: true,
		PoolSize:              cfg.PoolSize,
		PipelinePoolSize:      -1,
		TLSConfig:             tc,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	e := &engine{client: client, addr: cfg.Addr, prefix: cfg.KeyPrefix, chunk: cfg.ScanChunk}
	e.registry = cfg.KeyPrefix + "/partitions"
	e.generation = cfg.KeyPrefix + "/generation"
	if err := e.check(ctx); err != nil {
		_ = client.Close()
		return nil, err
	}
	return e, nil
}

// check pings the server and refuses cluster mode.
func (e *engine) check(ctx context.Context) error {
	if err := e.client.Ping(ctx).Err(); err != nil {
		return e.fail(ctx, "connect", err)
	}
	info, err := e.client.Info(ctx, "cluster").Result()
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOPERM") {
			// An ACL user without INFO: a cluster would still refuse the
			// scripts that span slots.
			return nil
		}
		return e.fail(ctx, "INFO cluster", err)
	}
	if strings.Contains(info, "cluster_enabled:1") {
		return fmt.Errorf("%w: the redis server at %s runs in cluster mode; the redis backend needs a standalone server (or a primary with replicas)",
			store.ErrUnsupported, e.addr)
	}
	return nil
}

type engine struct {
	client     *goredis.Client
	addr       string
	prefix     string
	registry   string // hash: partition name -> generation
	generation string // counter of generations
	chunk      int
}

// partKeys returns the names of the sorted set of keys and the hash of
// values of partition name. The hash tag {prefix/name} keeps both in one
// cluster slot.
func (e *engine) partKeys(name string) (zset, hash string) {
	tag := "{" + e.prefix + "/" + name + "}"
	return tag + "/keys", tag + "/values"
}

func notFound(p store.Partition) error {
	return fmt.Errorf("%w: %q", store.ErrPartitionNotFound, p.Name())
}

// fail wraps a client error with what was being done. When ctx has ended the
// error also wraps ctx.Err(), whatever the client made of it.
func (e *engine) fail(ctx context.Context, op string, err error) error {
	cerr := ctx.Err()
	if cerr == nil {
		// The socket deadline, set from the context's, can fire a hair
		// before the context's own timer.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("kalamdb-store/redis: %s at %s: %w: %w", op, e.addr, cerr, err)
	}
	if cerr == nil && unavailable(err) {
		return fmt.Errorf("kalamdb-store/redis: %s at %s: %w: %w", op, e.addr, store.ErrUnavailable, err)
	}
	return fmt.Errorf("kalamdb-store/redis: %s at %s: %w", op, e.addr, err)
}

// unavailable reports whether err says that the server cannot be reached
// now, rather than that it refused the command: a network error, a broken
// or refused connection, a connection pool that waited in vain, or a reply
// of a server that is loading, busy, or without its primary.
func unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, goredis.ErrPoolTimeout):
		return true
	}
	var re goredis.Error
	if errors.As(err, &re) {
		for _, p := range []string{"LOADING ", "BUSY ", "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN "} {
			if strings.HasPrefix(re.Error(), p) {
				return true
			}
		}
	}
	return false
}

// status runs a script that answers 1 (done) or 0 (partition not found).
func (e *engine) status(ctx context.Context, op string, s *goredis.Script, p store.Partition, keys []string, args ...any) error {
	n, err := s.Run(ctx, e.client, keys, args...).Int64()
	if err != nil {
		return e.fail(ctx, op, err)
	}
	if n == 0 {
		return notFound(p)
	}
	return nil
}

func (e *engine) Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error) {
	_, hash := e.partKeys(p.Name())
	v, err := e.client.HGet(ctx, hash, string(key)).Bytes()
	if err == nil {
		if v == nil {
			v = []byte{}
		}
		// A partition's hash only exists while the partition is registered
		// (every script keeps it so), so a value proves the partition exists.
		return v, nil
	}
	if !errors.Is(err, goredis.Nil) {
		return nil, e.fail(ctx, "get", err)
	}
	ok, err := e.client.HExists(ctx, e.registry, p.Name()).Result()
	if err != nil {
		return nil, e.fail(ctx, "get", err)
	}
	if !ok {
		return nil, notFound(p)
	}
	return nil, store.ErrNotFound
}

func (e *engine) Put(ctx context.Context, p store.Partition, key, value []byte) error {
	zset, hash := e.partKeys(p.Name())
	return e.status(ctx, "put", putScript, p, []string{e.registry, zset, hash}, p.Name(), key, value)
}

func (e *engine) Delete(ctx context.Context, p store.Partition, key []byte) error {
	zset, hash := e.partKeys(p.Name())
	return e.status(ctx, "delete", deleteScript, p, []string{e.registry, zset, hash}, p.Name(), key)
}

func (e *engine) Batch(ctx context.Context, ops []store.Operation) error {
	// Number the partitions in order of first use; KEYS and the leading ARGV
	// list them, and each operation names its partition by number.
	index := make(map[string]int, 4)
	var parts []store.Partition
	var firstOp []int
	keys := []string{e.registry}
	n := 0
	for _, op := range ops {
		n += 3
		if op.Kind == store.OpDelete || op.Kind == store.OpCheckAbsent {
			n--
		}
	}
	args := make([]any, 0, n+8)
	for i, op := range ops {
		name := op.Partition.Name()
		if _, ok := index[name]; !ok {
			index[name] = len(parts) + 1
			parts = append(parts, op.Partition)
			firstOp = append(firstOp, i)
			zset, hash := e.partKeys(name)
			keys = append(keys, zset, hash)
			args = append(args, name)
		}
	}
	for _, op := range ops {
		tag := strconv.Itoa(index[op.Partition.Name()])
		switch op.Kind {
		case store.OpPut:
			args = append(args, "p"+tag, op.Key, op.Value)
		case store.OpDeleteRange:
			args = append(args, "r"+tag, op.Key, op.End)
		case store.OpCheckAbsent:
			args = append(args, "a"+tag, op.Key)
		case store.OpCheckValue:
			args = append(args, "v"+tag, op.Key, op.Value)
		default:
			args = append(args, "d"+tag, op.Key)
		}
	}
	missing, err := batchScript.Run(ctx, e.client, keys, args...).Int64()
	if err != nil {
		return e.fail(ctx, "batch", err)
	}
	if missing < 0 {
		j := int(-missing-1) / 2
		if j >= len(ops) || !ops[j].Kind.IsCheck() {
			return fmt.Errorf("kalamdb-store/redis: batch at %s: unexpected reply %d", e.addr, missing)
		}
		return store.NewConditionError(j, ops[j], -missing%2 == 0)
	}
	if missing != 0 {
		if missing < 1 || int(missing) > len(parts) {
			return fmt.Errorf("kalamdb-store/redis: batch at %s: unexpected reply %d", e.addr, missing)
		}
		return fmt.Errorf("batch operation %d: %w", firstOp[missing-1], notFound(parts[missing-1]))
	}
	return nil
}

func (e *engine) PartitionExists(ctx context.Context, p store.Partition) (bool, error) {
	ok, err := e.client.HExists(ctx, e.registry, p.Name()).Result()
	if err != nil {
		return false, e.fail(ctx, "partition exists", err)
	}
	return ok, nil
}

func (e *engine) CreatePartition(ctx context.Context, p store.Partition) error {
	zset, hash := e.partKeys(p.Name())
	if err := createScript.Run(ctx, e.client, []string{e.registry, e.generation, zset, hash}, p.Name()).Err(); err != nil {
		return e.fail(ctx, "create partition", err)
	}
	return nil
}

func (e *engine) ListPartitions(ctx context.Context) ([]store.Partition, error) {
	names, err := e.client.HKeys(ctx, e.registry).Result()
	if err != nil {
		return nil, e.fail(ctx, "list partitions", err)
	}
	sort.Strings(names)
	out := make([]store.Partition, len(names))
	for i, n := range names {
		p, err := store.NewPartition(n)
		if err != nil {
			return nil, fmt.Errorf("kalamdb-store/redis: the partition registry %s holds a name that is not a partition name: %w",
				e.registry, err)
		}
		out[i] = p
	}
	return out, nil
}

func (e *engine) DropPartition(ctx context.Context, p store.Partition) error {
	zset, hash := e.partKeys(p.Name())
	return e.status(ctx, "drop partition", dropScript, p, []string{e.registry, zset, hash}, p.Name())
}

// Capabilities: no snapshot scans (a scan reads the partition chunk by
// chunk), durable in the sense of the contract (the data lives in the
// server and survives closing and reopening the backend), and shared by
// every process that opens the same server and key prefix (a batch's
// checks run in its script, atomic against every client).
func (e *engine) Capabilities() store.Capabilities {
	return store.Capabilities{SnapshotScans: false, Durable: true, MultiProcess: true}
}

func (e *engine) Close() error {
	if err := e.client.Close(); err != nil {
		return fmt.Errorf("kalamdb-store/redis: closing the client of %s: %w", e.addr, err)
	}
	return nil
}
