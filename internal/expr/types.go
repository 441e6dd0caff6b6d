package expr

import (
	"github.com/sluice-stream/sluice/batch"
)

// typeNames maps the SQL type names CAST accepts to kinds. VARCHAR(n) and
// CHAR(n) are accepted by the parser and become STRING, as Spark does for
// casts.
var typeNames = map[string]batch.Kind{
	"STRING":        batch.String,
	"VARCHAR":       batch.String,
	"CHAR":          batch.String,
	"BINARY":        batch.Binary,
	"BOOLEAN":       batch.Boolean,
	"INT":           batch.Int,
	"INTEGER":       batch.Int,
	"BIGINT":        batch.Long,
	"LONG":          batch.Long,
	"DOUBLE":        batch.Double,
	"TIMESTAMP":     batch.Timestamp,
	"TIMESTAMP_LTZ": batch.Timestamp,
	"DATE":          batch.Date,
}

// unsupportedTypes are Spark types sluice has no kind for; naming them gives
// a clearer error than "unknown type".
var unsupportedTypes = map[string]bool{
	"TINYINT": true, "BYTE": true, "SMALLINT": true, "SHORT": true, "FLOAT": true, "REAL": true,
	"DECIMAL": true, "DEC": true, "NUMERIC": true, "TIMESTAMP_NTZ": true, "INTERVAL": true,
	"ARRAY": true, "MAP": true, "STRUCT": true, "VOID": true, // ARRAY<…> and the like parse; bare names do not
}

// supportedTypeList is the list quoted in type errors.
const supportedTypeList = "STRING, BINARY, BOOLEAN, INT, BIGINT, DOUBLE, TIMESTAMP, DATE, ARRAY<type>, MAP<type, type>, STRUCT<name: type, ...>"

// typeSQL is the upper-case SQL name of a kind as Spark prints it in CAST
// (DataType.sql): BIGINT, STRUCT<a: INT>, ARRAY<STRING>.
func typeSQL(k batch.Kind) string { return k.SQL() }

// numericRank orders the numeric kinds for widening: INT < BIGINT < DOUBLE.
func numericRank(k batch.Kind) int {
	switch k {
	case batch.Int:
		return 1
	case batch.Long:
		return 2
	case batch.Double:
		return 3
	}
	return 0
}

// widerNumeric returns the wider of two numeric kinds.
func widerNumeric(a, b batch.Kind) batch.Kind {
	if numericRank(a) >= numericRank(b) {
		return a
	}
	return b
}

// isDatetime reports whether k is DATE or TIMESTAMP.
func isDatetime(k batch.Kind) bool { return k == batch.Date || k == batch.Timestamp }

// comparisonType is the kind both sides of a comparison are cast to, as in
// Spark's non-ANSI binary comparison coercion: numbers widen, a string
// compared with a number, boolean, date, timestamp or binary is cast to the
// other side's type, and a date compared with a timestamp becomes a
// timestamp. Structs and arrays compare when they have a common type (see
// nestedCommon); maps never do.
func comparisonType(a, b batch.Kind) (batch.Kind, bool) {
	switch {
	case a.IsNested() || b.IsNested():
		k, ok := commonType(a, b)
		return k, ok && orderable(k)
	case a == b:
		return a, true
	case a == batch.Null:
		return b, true
	case b == batch.Null:
		return a, true
	case a.IsNumeric() && b.IsNumeric():
		return widerNumeric(a, b), true
	case a == batch.String:
		return b, true
	case b == batch.String:
		return a, true
	case isDatetime(a) && isDatetime(b):
		return batch.Timestamp, true
	}
	return 0, false
}

// commonType is the wider common type of two kinds for CASE branches,
// coalesce, IN lists and similar, as in Spark's findWiderCommonType: numbers
// widen, a date and a timestamp make a timestamp, and a string with any
// other atomic type except binary and boolean makes a string.
func commonType(a, b batch.Kind) (batch.Kind, bool) {
	switch {
	case a == b:
		return a, true
	case a == batch.Null:
		return b, true
	case b == batch.Null:
		return a, true
	case a.IsNested() || b.IsNested():
		return nestedCommon(a, b)
	case a.IsNumeric() && b.IsNumeric():
		return widerNumeric(a, b), true
	case isDatetime(a) && isDatetime(b):
		return batch.Timestamp, true
	case a == batch.String && b != batch.Binary && b != batch.Boolean:
		return batch.String, true
	case b == batch.String && a != batch.Binary && a != batch.Boolean:
		return batch.String, true
	}
	return 0, false
}

// canCast reports whether an explicit CAST from one kind to another is
// allowed (Spark's Cast.canCast in non-ANSI mode, restricted to sluice's
// kinds; nested kinds as canCastNested).
func canCast(from, to batch.Kind) bool {
	if from == to || from == batch.Null {
		return true
	}
	if to == batch.Null {
		return false
	}
	if from.IsNested() {
		return canCastNested(from, to)
	}
	if to.IsNested() {
		return false
	}
	switch to {
	case batch.String:
		return true
	case batch.Binary:
		return from == batch.String || from == batch.Int || from == batch.Long
	case batch.Boolean, batch.Int, batch.Long, batch.Double:
		return from != batch.Binary
	case batch.Timestamp:
		return from != batch.Binary
	case batch.Date:
		return from == batch.String || from == batch.Timestamp
	}
	return false
}

// castMayNull reports whether a cast can turn a non-null value into NULL.
func castMayNull(from, to batch.Kind) bool {
	switch {
	case from == to:
		return false
	case from == batch.Null:
		return true
	case from.IsNested():
		return false
	case from == batch.String:
		return to != batch.Binary
	case from == batch.Date:
		return to != batch.String && to != batch.Timestamp
	case from == batch.Double:
		return to == batch.Timestamp
	}
	return false
}
