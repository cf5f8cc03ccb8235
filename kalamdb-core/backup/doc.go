// Package backup copies a KalamDB database out of its storage backend and
// segment store into a backup, and a backup into a database of any
// backend: Backup, Restore (with Check, which only reads) and Migrate,
// which does both. docs/backup.md specifies the format and ADR-021 gives
// the reasons for it.
//
// A backup is a set of files: one file of records per partition of the
// backend (every partition: catalog, manifests, buffered rows, sequences,
// leases, the server's records), a copy of every segment the manifests
// record, and an index, kalamdb-backup.json, written last, that lists them
// with their lengths, SHA-256 digests and key counts. A partition file is
// the magic "KDBKV01\n", then one record per key in key order (a tag, the
// key and value with their lengths as uvarints, a CRC-32C of the record),
// then an end record with the count. A backup lives in a directory, in a
// .tar.gz file or under an object-store URL, with the same files.
//
// Backup streams: it holds one record at a time, and one entry per
// segment. Restore reads the backup three times: to check it whole
// before writing anything, to write it, and to compare the target with
// it.
package backup
