// Package file is Spark's file sink: each batch's rows become Parquet, JSON
// lines or CSV files under an output directory, and a metadata log in
// <path>/_spark_metadata records which files each committed batch added,
// so that readers see every committed row exactly once.
//
// # Writing
//
// Every task writes its own files, named like Spark's
// part-<task:%05d>-<uuid>.c<seq:%03d><ext> (ext ".snappy.parquet",
// ".zstd.parquet", ".gz.parquet", ".parquet", ".json", ".json.gz", ".csv",
// ".csv.gz"), in Hive-style directories col=value/ when partitionBy is set
// (partition columns are not stored in the files; null and empty values go
// to col=__HIVE_DEFAULT_PARTITION__; values are escaped as Spark escapes
// them). A file is written under a hidden temporary name and renamed once
// complete and fsynced. A task's Close returns the list of its files as its
// commit message; Abort deletes them.
//
// Parquet files follow the mapping of package parquetio. JSON files hold
// one object per row as Spark's JSON writer does: null fields omitted,
// timestamps in the writer's default timestampFormat
// yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX] in UTC (2024-05-01T12:00:00.000Z:
// milliseconds, as Spark writes them; Parquet and Delta keep the
// microseconds), dates as yyyy-MM-dd, binary as base64, doubles like Java
// (package sparktext has all these forms). CSV files follow
// Spark's defaults: no header unless header=true, "," separator, nulls as
// empty fields, the empty string as "", values quoted when they hold the
// separator, a quote, a backslash or a line break, with quotes and
// backslashes inside escaped by a backslash. Unlike Spark, leading and
// trailing spaces are kept. CSV cannot hold binary or headers columns.
//
// # The metadata log
//
// The log is the format of Spark's FileStreamSinkLog. Batch N is recorded
// in the file _spark_metadata/N; its first line is the version "v1", then
// one JSON object per data file:
//
//	v1
//	{"path":"file:///out/part-00000-<uuid>.c000.snappy.parquet","size":1234,"isDir":false,"modificationTime":1714564800000,"blockReplication":1,"blockSize":33554432,"action":"add"}
//
// path is the file's absolute file: URI (percent-encoded), size its length
// in bytes and modificationTime its mtime in milliseconds. Every tenth
// batch (N+1 divisible by CompactInterval) is written as N.compact instead,
// holding the entries of all committed batches so far; readers start from
// the latest compact file and add the batch files after it. Log files
// older than the previous compaction are deleted after a compaction. A
// "delete" action (which Spark may write) removes an earlier entry of the
// same path.
//
// A log file is created put-if-absent through the storage package
// (atomic and durable; of two writers of one batch exactly one wins).
// Commit is idempotent per batch id: when the
// log already has that batch (or a later one), the batch is skipped
// ("Skipping already committed batch") and the files written by the
// replayed attempt are deleted. Tasks of a batch known to be committed
// write nothing at all.
//
// # Writers
//
// The log also records which query writes it (see writerRecord): a query's
// sink refuses to open on an output another query (another checkpoint)
// wrote, naming the path and both query ids, unless the option
// sluice.sink.allowNewQuery is true; then the new query's batches continue
// the log after the latest batch (its batch b is log batch b+offset, the
// offset fixed in its record) instead of being skipped as already
// committed, which is what Spark does. A log without records (Spark's, or
// an older sluice's) is adopted by a query resuming its own checkpoint and
// refused to a new one. New returns an anonymous sink that writes batch
// ids as log batch ids, as Spark.
//
// # Group mode
//
// In group mode (the kafka source's sluice.group; WithGroup) the members
// of a consumer group write one output and share the group log
// _spark_metadata/group instead of the query log: one version per member
// batch, with the source partition ranges it covers, committed only when
// no other member wrote those partitions since the batch started (see
// group.go).
//
// ReadLog returns the files a reader should see (the query log's and the
// group log's). Data files not in the log
// (left by a crashed attempt) are never listed; a plain directory listing
// may see them, as with Spark.
package file
