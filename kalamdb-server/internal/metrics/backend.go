package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"
)

// The operations an instrumented backend counts.
var backendOps = []string{"get", "put", "delete", "batch", "scan", "partition_exists", "create_partition", "list_partitions", "drop_partition"}

type opMetrics struct {
	ok, notFound, failed prometheus.Counter
	duration             prometheus.Observer
}

// InstrumentBackend wraps b so that every operation is counted in
// kalamdb_storage_operations_total and timed in
// kalamdb_storage_operation_duration_seconds under the label backend=name.
// Results are "ok", "not_found" (store.ErrNotFound, an expected outcome of
// Get) and "error". A scan is timed until Scan returns, and its iterator's
// failure, if any, is counted as an error of "scan_iterate".
func (m *Metrics) InstrumentBackend(name string, b store.StorageBackend) store.StorageBackend {
	ib := &instrumented{b: b, ops: map[string]*opMetrics{}}
	for _, op := range append(backendOps, "scan_iterate") {
		ib.ops[op] = &opMetrics{
			ok:       m.storageOps.WithLabelValues(name, op, "ok"),
			notFound: m.storageOps.WithLabelValues(name, op, "not_found"),
			failed:   m.storageOps.WithLabelValues(name, op, "error"),
			duration: m.storageDuration.WithLabelValues(name, op),
		}
	}
	ib.get, ib.put, ib.del, ib.batch, ib.scan = ib.ops["get"], ib.ops["put"], ib.ops["delete"], ib.ops["batch"], ib.ops["scan"]
	return ib
}

type instrumented struct {
	b                          store.StorageBackend
	ops                        map[string]*opMetrics // read-only after construction
	get, put, del, batch, scan *opMetrics
}

func (o *opMetrics) done(start time.Time, err error) {
	o.duration.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		o.ok.Inc()
	case errors.Is(err, store.ErrNotFound):
		o.notFound.Inc()
	default:
		o.failed.Inc()
	}
}

func (i *instrumented) Get(ctx context.Context, p store.Partition, key []byte) ([]byte, error) {
	start := time.Now()
	v, err := i.b.Get(ctx, p, key)
	i.get.done(start, err)
	return v, err
}

func (i *instrumented) Put(ctx context.Context, p store.Partition, key, value []byte) error {
	start := time.Now()
	err := i.b.Put(ctx, p, key, value)
	i.put.done(start, err)
	return err
}

func (i *instrumented) Delete(ctx context.Context, p store.Partition, key []byte) error {
	start := time.Now()
	err := i.b.Delete(ctx, p, key)
	i.del.done(start, err)
	return err
}

func (i *instrumented) Batch(ctx context.Context, ops []store.Operation) error {
	start := time.Now()
	err := i.b.Batch(ctx, ops)
	i.batch.done(start, err)
	return err
}

func (i *instrumented) Scan(ctx context.Context, p store.Partition, opts store.ScanOptions) (store.Iterator, error) {
	start := time.Now()
	it, err := i.b.Scan(ctx, p, opts)
	i.scan.done(start, err)
	if err != nil {
		return nil, err
	}
	return &instrumentedIter{Iterator: it, m: i.ops["scan_iterate"]}, nil
}

func (i *instrumented) PartitionExists(ctx context.Context, p store.Partition) (bool, error) {
	start := time.Now()
	ok, err := i.b.PartitionExists(ctx, p)
	i.ops["partition_exists"].done(start, err)
	return ok, err
}

func (i *instrumented) CreatePartition(ctx context.Context, p store.Partition) error {
	start := time.Now()
	err := i.b.CreatePartition(ctx, p)
	i.ops["create_partition"].done(start, err)
	return err
}

func (i *instrumented) ListPartitions(ctx context.Context) ([]store.Partition, error) {
	start := time.Now()
	ps, err := i.b.ListPartitions(ctx)
	i.ops["list_partitions"].done(start, err)
	return ps, err
}

func (i *instrumented) DropPartition(ctx context.Context, p store.Partition) error {
	start := time.Now()
	err := i.b.DropPartition(ctx, p)
	i.ops["drop_partition"].done(start, err)
	return err
}

func (i *instrumented) Capabilities() store.Capabilities { return i.b.Capabilities() }

func (i *instrumented) Close() error { return i.b.Close() }

// instrumentedIter counts an iteration that ends with an error.
type instrumentedIter struct {
	store.Iterator
	m        *opMetrics
	reported bool
}

func (it *instrumentedIter) Next() bool {
	if it.Iterator.Next() {
		return true
	}
	if err := it.Iterator.Err(); err != nil && !it.reported {
		it.reported = true
		it.m.failed.Inc()
	}
	return false
}
