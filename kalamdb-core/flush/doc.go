// Package flush is KalamDB's cold tier: it moves the buffered rows of user
// and shared tables to Parquet segments (package segment), crash-safely,
// and makes the table stores read the union of buffer and segments.
//
// # Using it
//
// Open replaces tables.Open: it opens the table layer with the cold tier
// attached and recovers from a crash. The owner of the DB then drives it:
//
//	m, err := flush.Open(ctx, backend, flush.Options{Dir: "/var/lib/kalamdb/parquet"})
//	db := m.DB()                              // the table stores, reading both tiers
//	m.Start()                                 // flush tables whose policy is due
//	res, err := m.Flush(ctx, "app", "items")  // flush one table now
//	err = m.DropTable(ctx, "app", "items")    // drop buffer, manifest and files
//	res, err = m.Close(ctx)                   // stop, flush everything, close the DB
//
// Stream tables are never flushed.
//
// # Layout
//
// Segments live under the Parquet directory as
// <namespace>/<table>/<user dir>/seg-<table id>-<segment id>.parquet for
// user tables (segment.UserDir encodes the user id) and
// <namespace>/<table>/seg-….parquet for shared tables. Which segments are
// committed is recorded in a per-table manifest stored through the
// StorageBackend (partition layout.Manifests, one record per segment).
//
// # Crash safety
//
// A flush of one user (or of a shared table) reads the buffered versions in
// key order, tombstones included, and:
//
//  1. writes them to <name>.parquet.tmp, fsyncs it, renames it to
//     <name>.parquet and fsyncs the directory (segment.Create);
//  2. under the locks of the flushed keys, checks which of them still hold
//     the flushed version, and applies ONE atomic batch that records the
//     segment in the manifest and deletes exactly those versions from the
//     buffer. A version that a writer replaced (or deleted) while the flush
//     ran keeps its newer version in the buffer. When no write happened
//     while the flush ran, the check is skipped and the versions are
//     deleted with one range delete of the segment's key range.
//
// A crash before step 2 leaves a file that no manifest records; Open
// removes it, and the buffer still holds every version. A crash after
// step 2 leaves nothing to do. At no point is a version in neither tier,
// and a version in both tiers at once reads as one row. A deletion whose
// key no segment holds is not written to a segment (it has nothing to
// hide); otherwise the tombstone is flushed, so a deleted row stays
// deleted.
//
// # Reads
//
// Each table's cold tier is a tables.Source. A lookup searches the key's
// user's segments newest first and skips every segment and row group whose
// key range (manifest and Parquet statistics) excludes the key; a scan
// merges the segments' versions with a heap, newest _seq winning, and the
// table store merges the result with the buffer, both with the merge of
// package internal/merge (which compactions use too). Parsed footers and
// decoded row groups are cached (segment.Cache).
package flush
