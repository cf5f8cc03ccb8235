// Package etcd is the storage backend that keeps KalamDB's data in an etcd
// cluster (v3 API, etcd 3.4 or later), through go.etcd.io/etcd/client/v3.
// etcd replicates every write to a quorum of its members with Raft and
// answers reads linearizably, so this is the backend for a database that
// must survive the loss of a machine and be shared by several KalamDB
// processes on several machines.
//
//	r := store.NewRegistry()
//	etcd.Register(r)
//	b, err := r.Open(ctx, "etcd", store.ConfigMap{
//		"endpoints": []any{"http://10.0.0.5:2379", "http://10.0.0.6:2379", "http://10.0.0.7:2379"},
//		"prefix":    "prod",
//	})
//
// or, from Go, OpenWith(ctx, cfg) with a Config that starts from
// DefaultConfig. The [storage.etcd] section is described on Config.
//
// # Layout
//
// Every etcd key starts with Config.Prefix (P below, "kalamdb" by default)
// and a slash, so one cluster holds several databases under different
// prefixes. A partition is a registry entry P/r/<name>, whose etcd create
// revision is the partition's id, and the key range P/d/<id> (8 bytes,
// big-endian) of its keys. etcd hands out a revision once, so a partition
// dropped and created again gets a fresh, empty range. The keys keep the
// contract's bytewise order, since etcd orders keys bytewise. P/format
// holds the layout version.
//
// # Operations
//
// Every operation is one etcd request, with Config.RequestTimeout:
//
//   - Get, Put and Delete are a transaction that compares the partition's
//     registry entry with the id this process last saw (a cache that only
//     saves a round trip) and then reads or writes the key; when another
//     process has dropped the partition, or dropped and created it again,
//     the compare fails, a second request reads the registry entry, and the
//     call fails with store.ErrPartitionNotFound or runs again on the new
//     id.
//   - Batch is one transaction, so it is atomic across partitions and
//     processes: it compares every partition's entry and the batch's checks
//     (store.CheckAbsentOp: the key's create revision is 0;
//     store.CheckValueOp: its value), and writes the net effect of the
//     batch's operations (etcd refuses a transaction that writes a key
//     twice or puts a key inside a range it deletes; the backend reduces
//     the batch first). When a compare fails, the transaction's failure
//     branch has read the same entries and keys at the same revision, so
//     the error names the check that failed, exactly.
//   - CreatePartition writes the entry if it is missing; DropPartition
//     deletes it and range-deletes the partition's keys in one transaction.
//   - Scan reads Config.ScanChunk keys per round trip, the first page in a
//     transaction that checks the partition, the later ones at the first
//     page's revision: the iterator sees exactly the partition as of Scan
//     (Capabilities.SnapshotScans), whatever is written or dropped later.
//     If the cluster compacts that revision before the scan ends, the
//     iterator stops with an error (never a silent restart at a later
//     state): compact with a retention longer than the longest scan.
//     etcd 3.4 sorts a descending range in full before it applies the
//     limit, so each page of a reverse scan reads the rest of the range on
//     the server: reverse scans of large ranges are slow.
//
// # Limits
//
// etcd bounds a transaction: --max-txn-ops (128) operations per branch and
// --max-request-bytes (1.5 MiB) per request. A batch of n operations
// becomes up to 2n compares, writes or reads (a check beside its
// partition's entry; a put inside a range deleted earlier in the batch
// splits the range), so Capabilities.MaxBatchOps is max_txn_ops / 2, 64
// by default; Capabilities.MaxBatchBytes is max_request_bytes less what
// the layout adds to each of those operations (prefixes, registry entries,
// framing, and a second copy of a key of the longest size), about 1 MiB
// by default. The wrapper refuses a batch or a put over either limit with
// store.ErrInvalidArgument before anything is sent, so a value of over
// about 1 MiB cannot be stored. Raise both with the servers' flags:
// max_txn_ops and max_request_bytes must not exceed them.
//
// # Failures
//
// A request the cluster cannot answer — no quorum, no leader, a member
// unreachable and no other answering, or no answer within request_timeout
// — fails with an error wrapping store.ErrUnavailable; the client moves on
// to another endpoint by itself. A write that fails so may or may not have
// been applied (a batch entirely or not at all): the reply was lost, not
// necessarily the request, and the backend does not resend it.
//
// # What etcd gives that the embedded backends do not
//
//   - Several KalamDB processes open the same cluster and prefix at once
//     (Capabilities.MultiProcess) and share the partitions; batches and
//     their checks are atomic and linearizable across all of them.
//   - An acknowledged write is on the disks of a quorum of members: the
//     cluster keeps serving, losing nothing, while a minority of members is
//     down.
//
// # What the embedded backends give that etcd does not
//
//   - Every operation is a network round trip and a Raft commit (a write
//     waits for a quorum's fsync): milliseconds, not microseconds.
//   - etcd keeps every revision until compacted, and its database is
//     bounded by --quota-backend-bytes (2 GiB by default): run it with
//     auto-compaction and defragment now and then. It is made for
//     megabytes to a few gigabytes, not for the bulk of a large table:
//     KalamDB's hot buffer, which the flush empties into Parquet, is the
//     kind of data it suits.
package etcd
