// Package lag measures how far a query is behind its sources and judges
// whether that is a problem: lag in records and in seconds, the predicted
// time to drain the backlog, and a Burrow-style health status per partition
// and per query.
//
// Everything is pure arithmetic on samples the engine supplies; the package
// reads nothing from Kafka. The stateful helpers (Table, Tracker) are safe
// for concurrent use.
//
//   - Table keeps, per partition, a bounded history of (latest offset,
//     time) samples and turns a consumed offset into seconds of lag by
//     interpolation (kafka-lag-exporter's method): no record timestamps
//     needed. It also yields arrival rates.
//   - ETA predicts when a backlog is gone, or that it never will be.
//   - Evaluate classifies one partition's recent batches as OK, WARN, STALL,
//     STOP, REWIND or ERR with a reason in words and numbers; QueryHealth
//     takes the worst partition. Tracker keeps the windows for the engine.
//   - Stalled turns a query that is busy without progress (a source that
//     does not answer) into STALL, which the lag alone cannot show.
package lag
