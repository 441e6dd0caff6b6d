// Package expr parses Spark SQL expressions and evaluates them over columnar
// batches: it is the transform layer between a source task and a sink.
//
// The pipeline is Parse (text → AST), Compile (AST + input schema → a typed,
// resolved evaluator) and Eval/Apply (batch → column or batch). All name
// resolution and type checking happens in Compile, so a misspelt column or a
// type mismatch fails when a query starts, never in the middle of a stream.
// Compiled expressions, projections and filters hold no mutable state and may
// be shared by concurrent tasks.
//
// # Dialect
//
// The grammar is the Spark SQL expression subset documented on Parse, with
// Spark's operator precedence and case-insensitive keywords and function
// names. Deliberate differences from Spark:
//
//   - Semantics follow Spark's legacy non-ANSI mode (spark.sql.ansi.enabled
//     = false, Spark 3's default; Spark 4 turned ANSI on): an invalid cast
//     yields NULL instead of failing, integer arithmetic wraps on overflow,
//     and division or remainder by zero yields NULL.
//   - Decimal literals such as 1.5 are DOUBLE (Spark: DECIMAL), and integer
//     literals too large for BIGINT are DOUBLE; sluice has no decimal type.
//   - The session time zone is always UTC: timestamps render and parse in
//     UTC unless a string carries its own offset.
//   - current_timestamp() and current_date() read EvalContext.BatchTimestamp,
//     one value for a whole micro-batch, exactly like Spark's batch timestamp.
//
// # Nested values
//
// Struct, array and map columns (package batch) are read with field
// access and subscripts (o.amount, headers.key, xs[0], m['k']) and built
// with struct(), named_struct() and array(); CAST turns them into strings
// as Spark prints them and a struct into another struct by position.
//
// # Windows
//
// window() and session_window() compile to a TimeWindow. As an expression
// a tumbling window or a session window is the row's
// struct<start,end> (WindowKind). A stateful plan calls FindTimeWindow on
// each grouping expression instead: TimeWindow.Assign gives, for a batch,
// every (row, window) pair in Spark's order (up to MaxWindowsPerRow per
// row for a sliding window; rows with a NULL time fall in none), and
// Expand repeats the rows with the window appended as a column named
// "window" or "session_window". Session windows are each row's initial
// [t, t+gap); merging them is the session operator's job.
//
// # Aggregations
//
// Aggregate calls (count, sum, avg, min, max, first, last,
// approx_count_distinct, collect_list, collect_set) are only valid in
// CompileAggregation, which analyses groupBy(keys).agg(exprs) as Spark's
// Aggregate: the window key (if any), the grouping keys, the distinct
// aggregate calls (each an aggregate.Aggregate with Spark's result type and
// name) and the projection from the grouped rows (keys then call results)
// to the output. HasAggregate lets a plan recognise a select list that is a
// global aggregation.
//
// Output column names follow Spark's generated names for the common cases:
// `CAST(value AS STRING)` is named value, `upper(x)` is named upper(x),
// `a + b` is named (a + b), string literals appear unquoted, `o.amount` is
// named amount and window(...) window.
package expr
