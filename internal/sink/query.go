package sink

import "github.com/sluice-stream/sluice/internal/options"

// QueryOptions describes the writer options that configure the query
// rather than its sink: they are given next to a sink's own options
// (DataStreamWriter.Option, a pipeline file's sink options), read by the
// query, and accepted and ignored by every sink. This is their one
// definition; a sink's own spec never repeats them.
var QueryOptions = &options.Spec{
	What: "query",
	Fields: []options.Field{
		{Name: "checkpointLocation", Type: options.Path, DefaultDoc: "spark.sql.streaming.checkpointLocation",
			Doc: "Directory of the query's checkpoint (offsets, commits, metadata). Required unless the sink allows a temporary one (console, memory, noop), which is deleted when the query stops."},
		{Name: "queryName", Type: options.String, Doc: "Name of the query (progress `name`; the memory sink's table name). A pipeline file's `name` sets it."},
		{Name: "sluice.workers", Type: options.Int, Min: 0, Default: "0", Hint: "allowed: a non-negative integer (0 = number of CPUs)",
			Doc: "Tasks run at once on the worker pool; 0 = the number of CPUs (or the session's sluice.workers)."},
		{Name: "sluice.memory.budget", Type: options.Size, Allowed: []string{"unlimited"}, DefaultDoc: "derived: a quarter of the memory limit, at most 128 MiB",
			Hint: `allowed: a size such as "256MiB", "512m", "1GB", a number of bytes, or "unlimited"`,
			Doc:  "Bytes a batch may hold in flight (batches, fetch buffers, sink buffers); admission shrinks batches to fit. Unset: a quarter of the process's memory limit (its cgroup's, else the machine's), at most 128 MiB, logged at start and shown in progress. \"unlimited\" opts out (with a warning). Also a session setting."},
		{Name: "asyncProgressTrackingEnabled", Type: options.Bool, Default: "false",
			Doc: "Spark's asynchronous progress tracking: the offsets and commit logs are written in the background, and only for a batch planned at least asyncProgressTrackingCheckpointIntervalMs after the last logged one, so no batch waits for the checkpoint's disk writes. At-least-once: after a crash the batches run since the last logged one are read and written again. Only stateless queries with the noop, console, memory or kafka sink, without a dead-letter sink, with the default or processingTime trigger, outside group mode. See README, Triggers, tasks and the checkpoint."},
		{Name: "asyncProgressTrackingCheckpointIntervalMs", Type: options.Int, Min: 0, Default: "1000",
			Doc: "With asyncProgressTrackingEnabled: least time between two logged batches, in milliseconds (0: log every batch, still without waiting). A crash re-runs up to this much processing."},
		{Name: "sluice.sink.delayPerRow", Type: options.Duration, Default: "0",
			Doc: "Slows the sink by this much per row written, to rehearse an expensive downstream system. Changes timing only, never rows."},
		{Name: "sluice.sink.delayPerBatch", Type: options.Duration, Default: "0",
			Doc: "Slows the sink by this much per batch committed (rehearsals)."},
	},
}
