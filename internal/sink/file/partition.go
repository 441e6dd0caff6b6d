package file

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// DefaultPartitionName is the directory value of a null (or empty string)
// partition value, as in Hive and Spark.
const DefaultPartitionName = "__HIVE_DEFAULT_PARTITION__"

// PartitionValue is the value of one partition column for the rows of a
// file.
type PartitionValue struct {
	Name string
	Kind batch.Kind
	Null bool
	Bool bool
	Int  int64   // Int, Long, Date (days), Timestamp (micros)
	F    float64 // Double
	Str  string  // String
}

// String renders the value as Spark renders partition values (before path
// escaping): integers in decimal, doubles like Java, booleans as
// true/false, dates as yyyy-MM-dd and timestamps as
// "yyyy-MM-dd HH:mm:ss[.ffffff]" in UTC. Null (and the empty string, which
// Spark also stores as the default partition) yields ok=false.
func (p PartitionValue) String() (s string, ok bool) {
	if p.Null {
		return "", false
	}
	switch p.Kind {
	case batch.Boolean:
		return strconv.FormatBool(p.Bool), true
	case batch.Int, batch.Long:
		return strconv.FormatInt(p.Int, 10), true
	case batch.Double:
		return sparktext.FormatDouble(p.F), true
	case batch.Date:
		return string(sparktext.AppendDate(nil, p.Int)), true
	case batch.Timestamp:
		return string(sparktext.AppendTimestamp(nil, p.Int, time.UTC)), true
	case batch.String:
		if p.Str == "" {
			return "", false
		}
		return p.Str, true
	}
	return "", false
}

// Dir returns the Hive-style directory segment "name=value" with the value
// escaped as Spark escapes partition paths.
func (p PartitionValue) Dir() string {
	s, ok := p.String()
	if !ok {
		s = DefaultPartitionName
	} else {
		s = EscapePathName(s)
	}
	return EscapePathName(p.Name) + "=" + s
}

// partitionable reports whether a column of kind k may be a partition
// column.
func partitionable(k batch.Kind) bool {
	switch k {
	case batch.Boolean, batch.Int, batch.Long, batch.Double, batch.String, batch.Date, batch.Timestamp:
		return true
	}
	return false
}

// partitionValueAt reads cell r of c.
func partitionValueAt(name string, c *batch.Column, r int) PartitionValue {
	p := PartitionValue{Name: name, Kind: c.Type}
	if c.IsNull(r) {
		p.Null = true
		return p
	}
	switch c.Type {
	case batch.Boolean:
		p.Bool = c.Bools[r]
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		p.Int = c.Ints[r]
	case batch.Double:
		p.F = c.Floats[r]
	case batch.String:
		if c.Bytes[r] == nil {
			p.Null = true
		} else {
			p.Str = string(c.Bytes[r])
		}
	}
	return p
}

// appendPartitionKey appends a binary encoding of cell r of c that is equal
// for two cells exactly when they land in the same partition directory.
func appendPartitionKey(dst []byte, c *batch.Column, r int) []byte {
	if c.IsNull(r) || (c.Type == batch.String && len(c.Bytes[r]) == 0) {
		return append(dst, 0) // null and "" share the default partition
	}
	dst = append(dst, 1)
	switch c.Type {
	case batch.Boolean:
		if c.Bools[r] {
			return append(dst, 1)
		}
		return append(dst, 0)
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		return binary.LittleEndian.AppendUint64(dst, uint64(c.Ints[r]))
	case batch.Double:
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.Floats[r]))
	case batch.String:
		dst = binary.AppendUvarint(dst, uint64(len(c.Bytes[r])))
		return append(dst, c.Bytes[r]...)
	}
	return dst
}

// needsEscape is the set of characters Spark (ExternalCatalogUtils)
// percent-escapes in partition directory names.
var needsEscape = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for _, c := range "\"#%'*/:=?\\\x7f{[]^" {
		t[c] = true
	}
	return t
}()

// EscapePathName escapes s for use as a partition directory name or value,
// the way Spark does: control characters and "#%'*/:=?\{[]^ and DEL become
// %XX (upper-case hex); everything else, spaces and non-ASCII included, is
// kept.
func EscapePathName(s string) string {
	i := 0
	for i < len(s) && !needsEscape[s[i]] {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if needsEscape[c] {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// UnescapePathName reverses EscapePathName.
func UnescapePathName(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
