// Package redis is the storage backend that keeps KalamDB's data in a Redis
// server, through github.com/redis/go-redis/v9. It needs Redis 4 or later
// (UNLINK), 6 or later for an ACL username, and is tested against 7.0. It is the backend for data that must
// live on another machine, or be shared by several KalamDB processes.
//
//	r := store.NewRegistry()
//	redis.Register(r)
//	b, err := r.Open(ctx, "redis", store.ConfigMap{"addr": "10.0.0.5:6379", "key_prefix": "prod"})
//
// or, from Go, OpenWith(ctx, cfg) with a Config that starts from
// DefaultConfig. The [storage.redis] section is described on Config.
//
// # Layout
//
// Every Redis key starts with Config.KeyPrefix (P below, "kalamdb" by
// default), so KalamDB instances with different prefixes share one Redis
// database without seeing each other. A partition N is
//
//	{P/N}/keys     a sorted set of its keys, all with score 0, so that Redis
//	               orders them bytewise (ZRANGEBYLEX) exactly as the contract
//	               does, 0x00 and 0xFF included
//	{P/N}/values   a hash from key to value
//
// and the partitions themselves are the fields of the hash P/partitions,
// whose values are generations drawn from the counter P/generation: each
// creation of a partition gets a new generation, so a scan notices that its
// partition was dropped and created again. The hash tag {P/N} puts all of a
// partition's keys into one cluster slot. A key is at most
// store.MaxKeySize bytes, far below Redis's limits; a value is capped by the
// server's proto-max-bulk-len (512 MiB by default), above
// store.MaxValueSize.
//
// Every write runs as one Lua script (EVALSHA, falling back to EVAL when the
// server has flushed its script cache): Put and Delete check that the
// partition exists and update the sorted set and the hash; Batch checks every
// partition it names and then applies its operations in order; CreatePartition
// and DropPartition register or unregister the partition together with its
// data (a drop UNLINKs the data, which Redis frees in the background). Redis
// runs a script atomically and each script checks everything before its
// first write, so a failing write writes nothing, and a batch is all or
// nothing across partitions. The checks of a batch (store.CheckAbsentOp,
// store.CheckValueOp) are HGETs of its script, all evaluated before its
// first write, so they are atomic with the batch against every client of
// the server (Capabilities.MultiProcess). A Get is one HGET (plus one HEXISTS when the key
// is missing, to tell a missing key from a missing partition).
//
// A Scan reads its range in chunks of Config.ScanChunk keys (256 by default,
// fewer when the scan has a smaller limit). Each round trip is one pipeline
// of read commands: it reads the values of the chunk listed by the previous
// round trip (HMGET) and lists the next chunk of keys from the sorted set
// (ZRANGEBYLEX, ZREVRANGEBYLEX in reverse), starting strictly after the last
// key listed so far, between two reads of the partition's generation. So a
// scan holds at most two chunks in memory, takes one round trip per chunk
// plus one, never returns a key twice and keeps the order whatever is
// written meanwhile. Reads use plain commands, neither scripts (a Lua scan
// saves a round trip but costs the single-threaded server about three times
// the CPU time per key) nor MULTI/EXEC (which a server at its maxmemory
// refuses even for reads): Get and Scan keep working on a full server.
//
// # Access control
//
// A server with ACLs needs a user that may run the categories @read, @write
// and @scripting, and PING, on the keys of the prefix (INFO is optional:
// without it OpenWith skips its check for cluster mode). For the default
// prefix:
//
//	ACL SETUSER kalamdb on >password ~kalamdb/* ~{kalamdb/* -@all +@read +@write +@scripting +ping +info
//
// and Config.Username "kalamdb". The backend names no client (no CLIENT
// SETNAME), so it needs no CLIENT permission.
//
// # What Redis gives that the embedded backends do not
//
//   - The data lives in a server, not in the process: several KalamDB
//     processes (on several machines) can open the same Redis with the same
//     key_prefix and share their partitions. Every write of one is visible to
//     the others at once, and batches stay atomic across processes.
//   - The data outlives the process that wrote it without any file to carry
//     along, and the server can be replicated and backed up without stopping
//     KalamDB.
//
// # What the embedded backends give that Redis does not
//
//   - No snapshot scans (Capabilities.SnapshotScans is false). A scan sees
//     each chunk as of the moment it is read, so writes made while an
//     iterator is open may or may not appear in it, and a key's value is
//     read in the round trip after its key was listed. The contract's rule for
//     such backends holds: no key twice, keys in order, and every key that
//     was present (and unchanged) for the whole life of the iterator is
//     returned. An iterator whose partition is dropped (or dropped and created
//     again) under it stops with an error wrapping store.ErrPartitionNotFound
//     when it next reads a chunk.
//   - Durability is the server's. Capabilities.Durable is true in the sense of
//     the contract: data and partitions survive closing and reopening the
//     backend, because they live in the server. Whether they survive a
//     restart or a crash of the server depends on its persistence settings:
//     with appendonly yes and appendfsync always, an acknowledged write is on
//     disk; with appendfsync everysec (the usual setting) the last second
//     can be lost; with RDB snapshots only, everything since the last
//     snapshot; without persistence, everything. A replica that takes over
//     after a failover may miss the last writes acknowledged by the old
//     primary (replication is asynchronous).
//   - Every operation is a network round trip, so it costs tens of
//     microseconds rather than hundreds of nanoseconds, and it can fail
//     because of the network. A write that fails with a network error or a
//     timeout may or may not have been applied (a batch still either
//     entirely or not at all); the backend does not resend it, because a
//     resent write could overwrite a newer write of another client.
//   - All data lives in the server's memory: a partition is bounded by the
//     server's RAM (and maxmemory). Run the server with
//     maxmemory-policy noeviction: an eviction policy would silently delete
//     KalamDB's keys. When the server is out of memory, writes fail and
//     write nothing.
//   - A Batch, CreatePartition or DropPartition runs as one script, which
//     blocks the (single-threaded) server while it runs; very large batches
//     delay every other client of the server.
//
// # Redis Cluster
//
// Redis Cluster is not supported: OpenWith refuses a server in cluster mode
// with an error wrapping store.ErrUnsupported. The layout is ready for it
// (each partition in one slot) but a cluster cannot run one script over
// several slots, and the partition registry and every batch across
// partitions need exactly that. A standalone server (with or without
// replicas) is supported. The backend talks to the one server named by
// Config.Addr: it does not follow a Sentinel failover by itself.
package redis
