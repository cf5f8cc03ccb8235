package flush

import (
	"time"

	"github.com/kalamdb/kalamdb-go/kalamdb-core/lease"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/segment"
	"github.com/kalamdb/kalamdb-go/kalamdb-core/tables"
)

// Defaults of Options.
const (
	DefaultMaxSegmentRows     = 1 << 20
	DefaultFooterCacheFiles   = 4096
	DefaultRowGroupCacheBytes = 64 << 20
	DefaultKeyCacheBytes      = 64 << 20
	DefaultCheckInterval      = time.Second
	DefaultGCGrace            = time.Hour
)

// Options configure a Manager.
type Options struct {
	// Store holds the segments: an object store (package objstore), a
	// local directory (segment.FSStore), either behind a
	// segment.DiskCache. When nil, the segments are files under FS, or
	// else under Dir.
	Store segment.Store
	// Dir is the Parquet directory, the root of the cold tier, when
	// neither Store nor FS is set.
	Dir string
	// FS, when set and Store is not, is the file system of the segments
	// (tests inject faults through it).
	FS segment.FS
	// GCGrace is how old an object that no manifest records must be for
	// Open to remove it as garbage: a younger one may be an upload about
	// to be committed, by this process before a restart or by another one
	// sharing the store. 0 means DefaultGCGrace; negative removes such
	// objects at once, which is right only when no other process writes
	// the store. Objects' ages are by the wall clock (the store's
	// modification times), not by Tables.Clock.
	GCGrace time.Duration
	// Tables configures the table layer the Manager opens. Its ColdTier is
	// set by the Manager.
	Tables tables.Options
	// RowGroupRows is the row-group size of segments; 0 means
	// segment.DefaultRowGroupRows.
	RowGroupRows int
	// MaxSegmentRows caps the versions of one segment file: a larger flush
	// of one user (or shared table) writes several files, each committed on
	// its own. 0 means DefaultMaxSegmentRows.
	MaxSegmentRows int
	// CompactSegments is how many segments smaller than MaxSegmentRows a
	// user (or a shared table) may have at the end of its list before the
	// scheduler merges them (see Compact); 0 means DefaultCompactSegments
	// (as every zero of Options means the default), NeverCompact (or any
	// negative value) leaves compaction to explicit calls. At least 2
	// otherwise.
	CompactSegments int
	// FooterCacheFiles is how many parsed footers are cached; 0 means
	// DefaultFooterCacheFiles.
	FooterCacheFiles int
	// RowGroupCacheBytes bounds the decoded row groups kept in memory; 0
	// means DefaultRowGroupCacheBytes, a negative value disables the cache.
	RowGroupCacheBytes int64
	// KeyCacheBytes bounds the key indexes (primary keys, _seq and
	// _deleted of a row group) kept for lookups, such as the uniqueness
	// check of every insert; 0 means DefaultKeyCacheBytes, a negative value
	// disables the cache.
	KeyCacheBytes int64
	// CheckInterval is how often the scheduler checks flush policies; 0
	// means DefaultCheckInterval.
	CheckInterval time.Duration
	// Leases, when set, makes every flush and compaction of a table run
	// under the table's lease
	// (LeaseName): taken before the work starts, failing with
	// lease.ErrHeld while another server holds it, and released after.
	// The lease is renewed every third of its TTL while the work runs.
	// The batch that records the work's segments checks that the lease is
	// still held as taken, so a worker whose lease expired and was taken
	// over commits nothing; a worker whose renewal found the lease taken
	// over, or whose lease expires within a third of its TTL, does not
	// send that batch. Its rows stay buffered for the next flush. On a backend several servers share (MultiProcess) a nil
	// Leases means leases of an owner id of the Manager's own, lasting
	// Tables.LeaseTTL; on another backend, no leases.
	Leases *lease.Leases
	// OnEvent, when set, is told of every flush and compaction of a table,
	// whoever ran it (the scheduler, Flush, Close, …), failures included:
	// what a server logs and counts. It runs on the goroutine that did the
	// work; a panic in it is contained.
	OnEvent func(Event)
}

// budget maps a cache option to bytes: 0 is the default, negative is off.
func budget(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}
