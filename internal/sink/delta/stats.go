package delta

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// statsPrefixLength is how many characters of a string min/max Delta
// keeps (delta.dataSkippingStringPrefixLength's default).
const statsPrefixLength = 32

// statsJSON renders a file's statistics as the JSON string of add.stats:
// numRecords, then minValues, maxValues and nullCount by column, nested as
// Delta nests them: a struct's fields inside an object named after it,
// other columns as leaves. nullCount covers every leaf column (for an
// array or map, its null cells; for a field inside a struct, the rows
// where it or the struct is null); min/max only the types Delta skips on.
// Min/max are left out where they could mislead a reader: all-null
// columns, booleans and binary (Delta keeps none), arrays and maps,
// doubles with NaN or infinities, strings that are not UTF-8, and the max
// of strings longer than the prefix Delta keeps. Timestamps are written in
// milliseconds, the min rounded down and the max up, so both stay bounds.
// A struct without any statistic of a kind is left out of that kind, as
// Delta does.
func statsJSON(fields []batch.Field, rows int64, stats []parquetio.ColumnStats) string {
	buf := []byte(`{"numRecords":`)
	buf = strconv.AppendInt(buf, rows, 10)
	mins, maxs, nulls := appendStats(fields, stats)
	for _, part := range []struct {
		name string
		body []byte
	}{{"minValues", mins}, {"maxValues", maxs}, {"nullCount", nulls}} {
		if len(part.body) == 0 {
			continue
		}
		buf = append(buf, `,"`...)
		buf = append(buf, part.name...)
		buf = append(buf, `":{`...)
		buf = append(buf, part.body[1:]...) // drop the leading comma
		buf = append(buf, '}')
	}
	return string(append(buf, '}'))
}

// appendStats returns the members (each preceded by a comma) of the
// minValues, maxValues and nullCount objects for fields.
func appendStats(fields []batch.Field, stats []parquetio.ColumnStats) (mins, maxs, nulls []byte) {
	for i, f := range fields {
		if i >= len(stats) {
			continue
		}
		st := stats[i]
		if f.Type.Class() == batch.Struct {
			cmins, cmaxs, cnulls := appendStats(f.Type.Fields(), st.Children)
			mins = appendObject(mins, f.Name, cmins)
			maxs = appendObject(maxs, f.Name, cmaxs)
			nulls = appendObject(nulls, f.Name, cnulls)
			continue
		}
		nulls = appendKey(nulls, f.Name)
		nulls = strconv.AppendInt(nulls, st.NullCount, 10)
		if !st.HasMinMax {
			continue
		}
		switch f.Type {
		case batch.Int, batch.Long:
			mins = strconv.AppendInt(appendKey(mins, f.Name), st.MinInt, 10)
			maxs = strconv.AppendInt(appendKey(maxs, f.Name), st.MaxInt, 10)
		case batch.Date:
			mins = appendQuoted(appendKey(mins, f.Name), sparktext.AppendDate(nil, st.MinInt))
			maxs = appendQuoted(appendKey(maxs, f.Name), sparktext.AppendDate(nil, st.MaxInt))
		case batch.Timestamp:
			lo := floorDiv(st.MinInt, 1000)
			hi := -floorDiv(-st.MaxInt, 1000) // ceiling
			mins = appendQuoted(appendKey(mins, f.Name), sparktext.AppendWriterTimestamp(nil, lo*1000, time.UTC))
			maxs = appendQuoted(appendKey(maxs, f.Name), sparktext.AppendWriterTimestamp(nil, hi*1000, time.UTC))
		case batch.Double:
			if st.NaN || math.IsInf(st.MinFloat, 0) || math.IsInf(st.MaxFloat, 0) {
				continue
			}
			mins = sparktext.AppendDouble(appendKey(mins, f.Name), st.MinFloat)
			maxs = sparktext.AppendDouble(appendKey(maxs, f.Name), st.MaxFloat)
		case batch.String:
			if !utf8.Valid(st.MinBytes) || !utf8.Valid(st.MaxBytes) {
				continue
			}
			mins = appendJSONStr(appendKey(mins, f.Name), prefix(st.MinBytes))
			if utf8.RuneCount(st.MaxBytes) <= statsPrefixLength {
				maxs = appendJSONStr(appendKey(maxs, f.Name), st.MaxBytes)
			}
		}
	}
	return mins, maxs, nulls
}

// appendObject appends `,"name":{members}` unless members is empty.
func appendObject(dst []byte, name string, members []byte) []byte {
	if len(members) == 0 {
		return dst
	}
	dst = appendKey(dst, name)
	dst = append(dst, '{')
	dst = append(dst, members[1:]...)
	return append(dst, '}')
}

func appendKey(dst []byte, name string) []byte {
	dst = append(dst, ',')
	dst = appendJSONStr(dst, []byte(name))
	return append(dst, ':')
}

func appendQuoted(dst, s []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendJSONStr(dst, s []byte) []byte {
	b, _ := json.Marshal(string(s)) // cannot fail for a string
	return append(dst, b...)
}

// prefix returns the first statsPrefixLength characters of s.
func prefix(s []byte) []byte {
	n := 0
	for i := range string(s) {
		if n == statsPrefixLength {
			return s[:i]
		}
		n++
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
