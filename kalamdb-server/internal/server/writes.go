package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	store "github.com/kalamdb/kalamdb-go/kalamdb-store"

	"github.com/kalamdb/kalamdb-go/kalamdb-server/internal/api"
)

// writeWatch wraps the storage backend and follows whether its writes
// work, for /readyz: a backend whose disk is full (RocksDB then refuses
// every write) still answers reads, so a probe that only reads would call
// it ready. A write that fails through the backend's fault (not a caller's:
// a missing key or partition, an invalid argument, a cancelled request, a
// batch whose check failed because another server changed the key first)
// marks the writes failing; the next write that succeeds clears it. While
// they fail, /readyz tries a small write itself (at most once per
// probeEvery) so that it notices the recovery without waiting for traffic,
// which a not-ready server does not get.
type writeWatch struct {
	store.StorageBackend
	log        *slog.Logger
	name       string
	probeEvery time.Duration

	failing atomic.Pointer[writeFailure]

	probeMu   sync.Mutex
	lastProbe time.Time
}

type writeFailure struct {
	since time.Time
	err   error
}

func newWriteWatch(b store.StorageBackend, name string, log *slog.Logger) *writeWatch {
	return &writeWatch{StorageBackend: b, log: log, name: name, probeEvery: time.Second}
}

// backendFault reports whether a failed write is the backend's fault.
func backendFault(err error) bool {
	for _, caller := range []error{store.ErrNotFound, store.ErrPartitionNotFound, store.ErrInvalidArgument,
		store.ErrUnsupported, store.ErrConditionFailed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, caller) {
			return false
		}
	}
	return true
}

// note records the outcome of a write.
func (w *writeWatch) note(err error) {
	switch {
	case err == nil:
		if f := w.failing.Load(); f != nil && w.failing.CompareAndSwap(f, nil) {
			w.log.Info("storage backend writes work again", "backend", w.name, "failing_for", time.Since(f.since).Round(time.Second))
		}
	case backendFault(err):
		if w.failing.CompareAndSwap(nil, &writeFailure{since: time.Now(), err: err}) {
			w.log.Error("storage backend writes fail; /readyz answers 503 until one works again", "backend", w.name, "err", err)
		}
	}
}

// Put implements store.StorageBackend.
func (w *writeWatch) Put(ctx context.Context, p store.Partition, key, value []byte) error {
	err := w.StorageBackend.Put(ctx, p, key, value)
	w.note(err)
	return err
}

// Delete implements store.StorageBackend.
func (w *writeWatch) Delete(ctx context.Context, p store.Partition, key []byte) error {
	err := w.StorageBackend.Delete(ctx, p, key)
	w.note(err)
	return err
}

// Batch implements store.StorageBackend.
func (w *writeWatch) Batch(ctx context.Context, ops []store.Operation) error {
	err := w.StorageBackend.Batch(ctx, ops)
	w.note(err)
	return err
}

var probeKey = []byte("readyz_write_probe")

// check answers the write half of /readyz: nil while writes work; while
// they fail, it probes with a write (or reuses the failure when the last
// probe was less than probeEvery ago) and returns the 503 response.
func (w *writeWatch) check(ctx context.Context) error {
	f := w.failing.Load()
	if f == nil {
		return nil
	}
	w.probeMu.Lock()
	if time.Since(w.lastProbe) >= w.probeEvery {
		w.lastProbe = time.Now()
		// Through w, so that a success clears the failure.
		if err := w.CreatePartition(ctx, metaPartition); err == nil {
			_ = w.Put(ctx, metaPartition, probeKey, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		}
	}
	w.probeMu.Unlock()
	if f = w.failing.Load(); f == nil {
		return nil
	}
	return &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeNotReady,
		Message: fmt.Sprintf("storage backend %q rejects writes (%s) since %s; reads still work", w.name, failureKind(f.err), f.since.UTC().Format(time.RFC3339))}
}
