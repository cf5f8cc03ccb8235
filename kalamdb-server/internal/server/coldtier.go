package server

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/flush"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/guard"
)

// The server follows the cold tier through the Manager's events and
// health (flush.Event, flush.Health): it counts every flush and compaction
// in the metrics, logs what they did, logs a table's change of state once
// (failing, then working again) and the failures in between at the
// backoff's rate, and describes the failing tables for /readyz.

// onEvent is the Manager's flush.Options.OnEvent.
func (s *Server) onEvent(e flush.Event) {
	switch e.Op {
	case flush.OpFlush:
		s.metrics.ObserveFlush(e.Trigger, int(e.Flush.Rows), e.Duration, e.Err)
	case flush.OpCompaction:
		s.metrics.ObserveCompaction(e.Trigger, e.Compaction.Merged, e.Compaction.Dropped, e.Duration, e.Err)
	}
	name := e.Table.FullName()
	switch {
	case e.Err == nil:
		if e.Recovered > 0 {
			s.log.Info("cold tier: the table's flushes work again", "table", name, "failures", e.Recovered)
		}
		if e.Op == flush.OpFlush && e.Flush.Rows > 0 {
			s.log.Info("flushed", "table", name, "trigger", e.Trigger, "rows", e.Flush.Rows, "files", len(e.Flush.Files), "kept", e.Flush.Kept, "duration", e.Duration)
		}
		if e.Op == flush.OpCompaction && e.Compaction.Merged > 0 {
			s.log.Info("compacted", "table", name, "trigger", e.Trigger, "merged", e.Compaction.Merged, "written", e.Compaction.Written,
				"rows", e.Compaction.Rows, "dropped", e.Compaction.Dropped, "duration", e.Duration)
		}
	case e.Failures == 0:
		// A dropped table or cancelled work: nothing wrong with the cold tier.
	default:
		attrs := []any{"table", name, "op", e.Op, "trigger", e.Trigger, "parquet_dir", s.flushDir, "err", e.Err, "retry_in", e.RetryIn}
		if stack := guard.Stack(e.Err); stack != nil {
			attrs = append(attrs, "stack", string(stack))
		}
		if e.Failures == 1 {
			s.log.Error("cold tier: writing the table's Parquet segments failed; its rows stay buffered in the storage backend and the flush is retried with backoff", attrs...)
			return
		}
		s.log.Warn("cold tier: still failing", append(attrs, "failures", e.Failures, "since", e.Since)...)
	}
}

// coldProblem describes what is wrong for /readyz, "" when every table is
// healthy. It names the Parquet directory and the kind of failure, not the
// whole error (the log has it): /readyz answers anyone.
func (s *Server) coldProblem() string {
	h := s.flush.Health()
	if len(h.Failing) == 0 {
		return ""
	}
	first, latest := h.Failing[0], h.Failing[0]
	for _, f := range h.Failing {
		if f.Last.After(latest.Last) {
			latest = f
		}
	}
	return fmt.Sprintf("cold tier: writing Parquet segments under %s fails (%s) for %d table(s), first %s, since %s; their rows stay buffered in the storage backend and flushes are retried with backoff",
		s.flushDir, failureKind(latest.Err), len(h.Failing), first.Table, first.Since.UTC().Format(time.RFC3339))
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
