// Package state keeps the state of stateful operators (aggregations,
// deduplication, sessions, joins) between micro-batches: one versioned
// key/value store per (operator, shuffle partition), in Spark's checkpoint
// layout, with two interchangeable providers and memory charged to a budget.
//
// # Versions and recovery
//
// Batch b opens its partition's store at version b (the state after batch
// b−1; version 0 is empty) and commits version b+1, as Spark does. A batch
// re-run after a crash opens version b again: files of versions above b that
// the failed run wrote (deltas, snapshots, checkpoints) are never read, and
// its commit atomically replaces <b+1>.delta (or <b+1>.pebble) and deletes
// everything newer. The engine's commits/N is therefore the only truth:
// whatever the store holds past it is overwritten by the re-run, which makes
// re-committing a version overwrite-safe whether or not the re-run produces
// the same bytes. Writes are made durable before Commit returns (temp file,
// fsync, rename, directory fsync on the local disk; a completed upload on an
// object store), so the engine may write commits/N right after.
//
// # Layout
//
//	<checkpoint>/state/
//	  <operatorId>/
//	    _metadata/metadata            v1 + Spark's OperatorStateMetadataV1 JSON (WriteOperatorMetadata)
//	    0/_metadata/schema            key and value schema (partition 0 only; Spark's schema file v2)
//	    <partitionId>/
//	      <version>.delta             memory provider: the batch's puts and removes
//	      <version>.snapshot          memory provider: the whole state at a version
//	      <version>.pebble/           disk provider: a Pebble checkpoint of the state at a version
//	      _working/                   disk provider: the live Pebble database (rebuilt from a checkpoint)
//
// Operators with several stores per partition (joins) put each in
// <partitionId>/<storeName>/. Names, nesting and version numbers are Spark's;
// the contents of .delta and .snapshot files are sluice's own (Spark writes
// UnsafeRow records), and the disk provider's per-version directories stand
// in for Spark's RocksDB <version>.zip plus shared SSTs/.
//
// # Delta and snapshot file format
//
// Both are one frame:
//
//	header  16 B   "SLST", format version 1, kind (1 delta, 2 snapshot), codec (1 lz4), 0,
//	               state version (uint64 big-endian)
//	payload        an LZ4 frame (github.com/pierrec/lz4/v4, 256 KiB blocks, no content
//	               checksum: the footer's covers it; Spark's default codec name is lz4) of records:
//	                 0x01 uvarint(len key) key uvarint(len value) value     put
//	                 0x02 uvarint(len key) key                              remove (deltas only)
//	footer  32 B   payload length, uncompressed length, record count (uint64 big-endian each),
//	               CRC-32C of header + payload + those three fields, "TSLS"
//
// A reader checks the magic, the footer's lengths against the file size,
// every record's bounds, the record count and the checksum before the
// loaded version is used: a torn write (no footer), a truncated or bit-
// flipped file fails with *CorruptFileError naming the file; it is never
// loaded in part. A missing file fails with ErrVersionNotFound.
//
// # Providers
//
// spark.sql.streaming.stateStore.providerClass selects one (ParseProvider):
//
//   - memory (default; also "hdfs", HDFSBackedStateStoreProvider and its
//     full class name) keeps each version as a copy-on-write B-tree
//     (github.com/google/btree), so the last MaxBatchesToRetainInMemory
//     versions it caches share every node a batch did not touch; or, after
//     a batch that merged a run of keys about as many as the state
//     (MergeSorted: stage 2 of an aggregation), as one array of entries in
//     key order, which the next merge and eviction walk and cut without a
//     tree (a single read or write builds one). Commit writes
//     the batch's changes as <version>.delta (streamed while the batch runs).
//     Maintenance writes <version>.snapshot when more than
//     MinDeltasForSnapshot deltas follow the last snapshot, and deletes files
//     older than the snapshot needed to rebuild version latest −
//     MinBatchesToRetain. A version not in the cache is rebuilt from the
//     newest cached version or snapshot at or below it plus the deltas after.
//   - disk (also "rocksdb", "pebble", RocksDBStateStoreProvider and its full
//     class name) keeps the live state in a Pebble LSM
//     (github.com/cockroachdb/pebble/v2, pure Go with CGO_ENABLED=0) in
//     _working/ (or under sluice.state.disk.localDir). Commit flushes the
//     memtable (no WAL, as Spark's RocksDB provider) and takes a Pebble
//     checkpoint into <version>.pebble/: SSTs are hard links, so versions
//     share their files as Spark's SSTs/ directory does, without a naming
//     scheme of our own, and the MANIFEST makes each directory a consistent,
//     self-contained database. Opening a version other than the live one
//     (restart, re-run, abort) rebuilds _working/ from that directory.
//     Maintenance keeps versions from latest − MinBatchesToRetain on.
//     Memory is fixed by the allowance sluice.state.disk.memory given at
//     open: two memtables of a quarter each and a block cache of half.
//
// # Memory accounting
//
// Every store reports MemoryUsedBytes and NumKeys (Metrics, with Spark's
// numRowsTotal/Updated/Removed, allUpdatesTimeMs, allRemovalsTimeMs,
// commitTimeMs and custom metrics). The memory provider measures its live
// version: key and value bytes at the allocator's size classes plus a
// per-entry overhead, within a few per cent of the heap it takes (tested).
// The disk provider reports Pebble's memtable and block cache usage.
//
// Config.Budget (shared by all stores of a query) and Config.MemoryLimit
// (per store) bound state memory: a memory-provider Put that would pass
// either fails with *MemoryExceededError (errors.Is ErrStateMemoryExceeded)
// naming the operator, partition, bytes and limit, and leaves the store
// unchanged; removals and Close release the charge. A disk-provider store
// charges its whole allowance when it opens and never grows past it. The
// engine's job is to give state its share of sluice.memory.budget, stop
// admitting when a put fails, and fail the query with the error's message
// (which names the remedies: a watermark, a larger budget, the disk
// provider).
//
// # Keys and values
//
// Keys and values are byte strings. EncodeKey and the AppendKey* functions
// give an order-preserving encoding of batch's column types (nulls first,
// NaN last, -0.0 = 0.0), so ranges by a leading column (a window end, an
// event time) are byte ranges: append-mode eviction is a RemoveRange up to
// the encoding of the watermark. EncodeValue/DecodeValueInto are a compact
// row encoding for values.
//
// # File I/O
//
// Every delta, snapshot, schema and metadata file goes through the
// storage package (ID.Files: the checkpoint's state/ directory, on the local
// disk or on an object store such as ADLS or S3): writes are atomic and
// durable, the schema file is put-if-absent, and a snapshot is written in
// two steps — Finish (fsync, or upload) outside the provider's lock, then
// Commit (rename, or complete the upload) only if its version was not
// recommitted meanwhile. fileio.go is the package's door to it.
//
// The disk provider keeps its working database and its per-version Pebble
// checkpoints in local directories (Pebble does its own I/O, and versions
// share SSTs by hard links), so it needs the checkpoint on the local disk:
// with a checkpoint on an object store OpenProvider fails with
// ErrDiskProviderNeedsLocal, naming the memory provider as the remedy.
// (Shipping each version's new SSTs to the object store, as Spark's RocksDB
// provider does with its zip files, is left for later.)
package state
