// Package progress reports what a streaming query did, batch by batch, in the
// shape of Spark's StreamingQueryProgress, and delivers those reports to
// listeners.
//
// It holds:
//
//   - Progress and its parts (SourceProgress, SinkProgress,
//     StateOperatorProgress), serialized exactly like Spark's json/prettyJson:
//     same field names and order, doubles rounded to one decimal HALF_UP,
//     NaN/±Inf omitted, empty maps omitted, map keys sorted. One extra key,
//     "sluice", carries sluice's own additions (lag in records and seconds,
//     drain ETA, health, timing ratios, memory, admission) — see Sluice.
//   - Rate helpers (ProcessedRowsPerSecond, InputRowsPerSecond) that fix
//     Spark's inflated inputRowsPerSecond after idle polls.
//   - Status, the "what is the query doing now" record, with Spark's messages.
//   - Recent, the bounded history behind recentProgress.
//   - Listener (StreamingQueryListener), Bus (delivery that never blocks the
//     engine on a slow listener) and JSONLinesWriter (--progress-file).
//
// The package knows nothing about Kafka or the engine: the engine fills the
// structures in; everything here is data, formatting and delivery. It is
// part of sluice's public API — StreamingQuery.LastProgress returns a
// *Progress, DataStreamWriter.AddListener takes a Listener — so a program
// can read every field of a report and build its own listeners; Bus, Recent
// and JSONLinesWriter are the delivery and history the engine itself uses.
package progress
