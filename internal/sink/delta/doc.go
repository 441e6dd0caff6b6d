// Package delta is a Delta Lake sink: each committed batch appends its
// Parquet files to a Delta table as one new table version, exactly once
// per batch id, following the subset of delta-io's PROTOCOL.md that an
// append-only streaming writer needs (reader version 1, writer version 2).
//
// # Layout
//
// Data files are Parquet (see package parquetio for the type mapping)
// named part-<task:%05d>-<uuid>-c<seq:%03d>.snappy.parquet, in Hive-style
// partition directories when the table is partitioned (partition columns
// are not stored in the files). The log lives in <path>/_delta_log:
//
//	00000000000000000000.json   commitInfo, protocol, metaData, txn, add...
//	00000000000000000001.json   commitInfo, txn, add...
//	00000000000000000010.checkpoint.parquet
//	_last_checkpoint            {"version":10,"size":N,...}
//
// Each commit file is newline-delimited JSON, one action per line:
//
//   - commitInfo {timestamp, operation "STREAMING UPDATE",
//     operationParameters {outputMode "Append", queryId, epochId},
//     isBlindAppend true, engineInfo "sluice"}: provenance only.
//   - protocol {minReaderVersion 1, minWriterVersion 2} and metaData {id,
//     format {provider parquet}, schemaString (Spark JSON schema of the
//     rows, every column nullable), partitionColumns, configuration {},
//     createdTime}: in the version that creates the table.
//   - txn {appId: query id, version: batch id, lastUpdated}: makes the
//     batch idempotent.
//   - add {path (relative, URI-encoded), partitionValues (strings as
//     PROTOCOL.md serialises them; null for null and ""), size,
//     modificationTime, dataChange true, stats}: one per data file. stats
//     is a JSON string with numRecords and, per data column, nullCount and
//     (where meaningful) minValues/maxValues; see statsJSON.
//
// # Exactly once
//
// Before writing, NewWriter consults the replayed log: if the table's txn
// for the query id has reached the batch id, the task writes nothing.
// Commit re-reads the log; a batch already recorded is skipped and the
// files of the replayed attempt are deleted. Otherwise it writes the next
// version put-if-absent through the storage package (atomic and durable;
// of two writers of one version exactly one wins). If another writer took
// that version, the log is read again: when the other commit carried our
// txn (a zombie of the same query) the batch is skipped; otherwise the
// commit is retried as the next version, up to a few times, then fails
// with ErrConcurrentWriter. When the put fails otherwise, the commit may
// have landed, so the batch's files are kept: if it did not, they are
// orphans that no reader of the log sees.
//
// A query whose id is not among the table's txn appIds is refused when the
// table has any (another streaming query writes it: a new checkpoint would
// re-read its source and write the rows again), naming the table and both
// ids, unless the option sluice.sink.allowNewQuery is true. Tables without
// txn actions (written by batch jobs) take any query.
//
// # Checkpoints
//
// After every CheckpointInterval-th version (or the table's
// delta.checkpointInterval) the sink writes a classic single-file
// checkpoint of the reconciled state (protocol, metaData, txn, live add
// and recent remove actions as struct columns) and points
// _last_checkpoint at it. Log replay (New, Snapshot) starts from the
// newest readable checkpoint and falls back to the JSON commits; readers
// never depend on checkpoints.
//
// Appending checks the table: its protocol must be reader 1 / writer 2 or
// lower, no column may carry delta.invariants, the partition columns must
// match, and every column written must exist in the table with the same
// type (columns the rows lack read as null). Deletion vectors, column
// mapping, CDC and other table features are not supported.
package delta
