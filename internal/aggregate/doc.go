// Package aggregate implements Spark's aggregate functions as accumulators
// that streaming aggregation splits into two stages and keeps in state:
//
//	count(*), count(col), sum, avg, min, max, first, last,
//	approx_count_distinct (HyperLogLog++), collect_list, collect_set
//
// New validates a call (Spec: function, argument type, first/last's
// ignoreNulls, approx_count_distinct's relative standard deviation, ANSI
// mode) and gives its result type. Its accumulators are used as:
//
//  1. partial aggregation, per source task: Update(col, sel) folds a
//     column's cells at the selected rows (one selection per group);
//  2. the exchange ships AppendState bytes to the group's shuffle partition;
//  3. merge, per shuffle partition: LoadState of the stored state and of
//     each partial, Merge in arrival order, AppendState back into the state
//     store (Size charges its memory);
//  4. Result / AppendResult when the group is emitted.
//
// # Semantics (Spark's)
//
//   - Result types: count and approx_count_distinct → bigint; sum of
//     int/bigint → bigint, of double → double; avg → double; min, max, first,
//     last → the input type; collect_list/collect_set → array<input>.
//   - Nulls: count(col) skips them, count(*) does not; sum, avg, min, max
//     ignore them and return null when no non-null row was seen; first/last
//     keep a null row unless IgnoreNulls (Spark's default is false);
//     collect_* and approx_count_distinct skip them (an empty array, 0).
//   - Ordering for min/max: false < true; numbers numerically with NaN above
//     everything; strings and binary bytewise (UTF-8 byte order).
//   - sum of integers wraps silently on overflow, as Java's long +, unless
//     Spec.ANSI (spark.sql.ansi.enabled), where Update and Merge fail with
//     ErrArithmeticOverflow ("[ARITHMETIC_OVERFLOW] long overflow …"). avg
//     sums in double, as Spark's Average buffer, and cannot overflow.
//   - first and last depend on row order; so does collect_list's element
//     order. Everything else is order-independent: merging partials in any
//     order gives the same result (sums of doubles up to rounding). For all
//     of them merging the partials of consecutive pieces in order equals
//     aggregating the whole (tested as a property).
//   - collect_set keeps each value's first occurrence, in arrival order
//     (Spark's order is its hash set's, i.e. unspecified); doubles are
//     compared after normalizing NaN and -0.0 as Spark normalizes them.
//
// # approx_count_distinct
//
// HyperLogLog++ exactly as Spark's HyperLogLogPlusPlusHelper: precision
// p = ceil(2·log2(1.106/rsd)) (p = 9, 512 registers for the default rsd 0.05;
// true rsd 1.04/√512 ≈ 4.6 %), 6-bit registers ten to a word, Spark's
// XxHash64 with seed 42 over the value's binary form (int and date as 4
// bytes, bigint and timestamp as 8, boolean as the int 1/0, doubles
// normalized then as IEEE bits, strings and binary as their bytes), the
// HLL++ paper's empirical bias correction with 6-nearest-neighbour
// interpolation below 5m and linear counting below Spark's thresholds. The
// hash functions are checked against XXH64 and Spark's documented
// xxhash64('Spark', array(123), 2) example, so the same input should give
// Spark's estimate (no Spark ran here to compare estimates directly).
// Merging is the register-wise maximum.
//
// # Arrays
//
// collect_list and collect_set return array<input> with containsNull false,
// as Spark's Collect: Result gives the elements as a []any of cell values,
// AppendResult appends one array cell (the elements to the column's child,
// then batch.Column.AppendArray).
//
// # State encoding
//
// AppendState is compact and self-delimiting only as a whole; AppendStates
// and LoadStates frame a group's accumulators (uvarint length prefixes) into
// one state-store value. Per function:
// count varint; sum a presence byte and a varint or 8-byte double; avg the
// double sum and a varint count; min/max/first/last a presence byte and the
// cell; approx_count_distinct p and the register words; collect_* a count
// and the cells. LoadState rejects damaged bytes.
package aggregate
