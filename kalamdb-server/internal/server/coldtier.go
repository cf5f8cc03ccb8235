package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	core "github.com/kalamdb/kalamdb-go/kalamdb-core"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/catalog"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
)

// Backoff of a table whose flushes (or compactions) fail: the scheduler
// retries it after coldRetryFirst, then twice as long after each further
// failure, up to coldRetryMax.
const (
	coldRetryFirst = 2 * time.Second
	coldRetryMax   = 5 * time.Minute
)

// coldTier follows the health of the cold tier, table by table: a table is
// failing from a failed flush or compaction (policy, manual) to the next
// one that succeeds. The flush scheduler retries failing tables with
// exponential backoff, and each table's change of state is logged once;
// the failures in between are logged at the backoff's rate.
type coldTier struct {
	log     *slog.Logger
	dir     string
	backoff *flush.Backoff[uint64]
	// lastFailure is the time of the latest failure (Unix nanoseconds;
	// 0: none since start).
	lastFailure atomic.Int64

	mu    sync.Mutex
	names map[uint64]string // of the failing tables, for /readyz
}

func newColdTier(log *slog.Logger, dir string) *coldTier {
	return &coldTier{log: log, dir: dir, backoff: flush.NewBackoff[uint64](coldRetryFirst, coldRetryMax), names: map[uint64]string{}}
}

func (c *coldTier) setName(id uint64, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "" {
		delete(c.names, id)
		return
	}
	c.names[id] = name
}

func (c *coldTier) name(id uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.names[id]
}

// ignorable reports errors that say nothing about the cold tier: the
// table was dropped meanwhile, or the work was cancelled (shutdown).
func ignorable(err error) bool {
	return errors.Is(err, core.ErrTableNotFound) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// record notes the outcome of a flush or compaction of t (op names it for
// the log) at now.
func (c *coldTier) record(t *catalog.Table, op string, err error, now time.Time) {
	switch {
	case err == nil:
		was, failing := c.backoff.Succeeded(t.ID)
		if failing {
			c.setName(t.ID, "")
			c.log.Info("cold tier: the table's flushes work again", "table", t.FullName(),
				"failures", was.Failures, "failing_for", now.Sub(was.Since).Round(time.Second))
		}
		return
	case errors.Is(err, core.ErrTableNotFound):
		c.forget(t.ID)
		return
	case ignorable(err):
		return
	}
	st := c.backoff.Failed(t.ID, now, err)
	c.setName(t.ID, t.FullName())
	c.lastFailure.Store(now.UnixNano())
	attrs := []any{"table", t.FullName(), "op", op, "parquet_dir", c.dir, "err", err, "retry_in", st.Delay()}
	if stack := guard.Stack(err); stack != nil {
		attrs = append(attrs, "stack", string(stack))
	}
	if st.Failures == 1 {
		c.log.Error("cold tier: writing the table's Parquet segments failed; its rows stay buffered in the storage backend and the flush is retried with backoff", attrs...)
		return
	}
	c.log.Warn("cold tier: still failing", append(attrs, "failures", st.Failures, "since", st.Since)...)
}

// forget drops what is known of table id (it was dropped).
func (c *coldTier) forget(id uint64) {
	c.backoff.Forget(id)
	c.setName(id, "")
}

// ready reports whether the scheduler may try table id at now.
func (c *coldTier) ready(id uint64, now time.Time) bool { return c.backoff.Ready(id, now) }

// failing reports whether table id's last flush or compaction failed.
func (c *coldTier) failing(id uint64) bool { return c.backoff.Failing(id) }

// failingTables counts the failing tables.
func (c *coldTier) failingTables() int { return len(c.backoff.Failures()) }

// lastFailureTime is the time of the latest failure, zero if none.
func (c *coldTier) lastFailureTime() time.Time {
	if n := c.lastFailure.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// problem describes what is wrong for /readyz, "" when every table is
// healthy. It names the Parquet directory and the kind of failure, not the
// whole error (the log has it): /readyz answers anyone.
func (c *coldTier) problem() string {
	fs := c.backoff.Failures()
	if len(fs) == 0 {
		return ""
	}
	ids := make([]uint64, 0, len(fs))
	for id := range fs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return fs[ids[i]].Since.Before(fs[ids[j]].Since) })
	first := fs[ids[0]]
	latest := first
	for _, id := range ids {
		if fs[id].Last.After(latest.Last) {
			latest = fs[id]
		}
	}
	return fmt.Sprintf("cold tier: writing Parquet segments under %s fails (%s) for %d table(s), first %s, since %s; their rows stay buffered in the storage backend and flushes are retried with backoff",
		c.dir, failureKind(latest.Err), len(fs), c.name(ids[0]), first.Since.UTC().Format(time.RFC3339))
}

// failureKinds are the errors failureKind names.
var failureKinds = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM, syscall.EIO, syscall.ENOTDIR}

// failureKind names the kind of a storage error without its details (for
// /readyz, which answers anyone): a file-system error it finds in the
// chain, or whose text it finds in the message (RocksDB reports "IO error:
// No space left on device" as text).
func failureKind(err error) string {
	for _, e := range failureKinds {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	msg := strings.ToLower(err.Error())
	for _, e := range failureKinds {
		if strings.Contains(msg, e.Error()) {
			return e.Error()
		}
	}
	var pe *guard.PanicError
	if errors.As(err, &pe) {
		return "internal error, see the server log"
	}
	return "see the server log"
}
