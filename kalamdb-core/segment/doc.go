// Package segment is the file format and the file handling of KalamDB's
// cold tier: the Parquet segments that flushes write and reads merge with
// the hot buffer.
//
// A segment holds the row versions of one user of a user table, or of a
// shared table, sorted by primary key, one version per key, with the
// system columns _seq, _updated and _deleted (tombstones are kept, so that
// a deletion reaches the cold tier). Files are zstd-compressed with column
// statistics, and readable by any Parquet reader (DuckDB, Spark, pandas).
//
// The package provides:
//
//   - FS, the file-system seam every file operation goes through, with DirFS
//     for the operating system (package faultfs injects faults);
//   - the directory layout (TableDir, UserDir, FileName), which encodes user
//     ids so that no id escapes its directory or collides with another;
//   - Writer and Create, which write a segment through a temporary file,
//     fsync, rename and directory fsync;
//   - ReadFooter, ReadRowGroup, KeyRange and Cache, which read segments
//     back, prune row groups by statistics and cache parsed footers and
//     decoded row groups;
//   - a zstd codec for the Parquet library that reuses its encoders.
//
// The manifest that says which segments are committed, and the flush that
// writes them, are in package flush.
package segment
