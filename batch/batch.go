// Package batch is sluice's columnar data representation: a Schema of typed
// fields and a Batch of equally long Columns.
//
// A Batch is what flows from a source task through the transforms into a
// sink writer. Columns hold plain Go slices, one slice per physical
// representation, so the hot path (Kafka record → column → expression →
// sink) allocates little and copies less: String and Binary cells alias the
// bytes they were built from (for Kafka, the fetched record buffers).
//
// Ownership rule: a Batch handed to a consumer (a transform, a sink writer)
// may be read until the consumer returns; a consumer that keeps it longer
// (a console or memory sink collecting rows) must not mutate it, and the
// producer must not reuse its slices. Nothing in sluice recycles batches, so
// this holds by construction.
package batch

import (
	"fmt"
	"strings"
)

// Kind is a column's logical type. Names follow Spark SQL's.
type Kind uint8

// The logical types sluice supports. Physical storage per kind:
//
//	Boolean              Column.Bools
//	Int, Long            Column.Ints (Int values fit in int32)
//	Date                 Column.Ints (days since 1970-01-01)
//	Timestamp            Column.Ints (microseconds since the Unix epoch, UTC)
//	Double               Column.Floats
//	String, Binary       Column.Bytes (String is UTF-8 by convention; not validated)
//	Headers              Column.Headers (Spark: array<struct<key:string,value:binary>>)
//	Null                 no storage; every cell is null (the type of a bare NULL literal)
const (
	Null Kind = iota
	Boolean
	Int
	Long
	Double
	String
	Binary
	Timestamp
	Date
	Headers
)

var kindNames = [...]string{
	Null:      "void",
	Boolean:   "boolean",
	Int:       "int",
	Long:      "bigint",
	Double:    "double",
	String:    "string",
	Binary:    "binary",
	Timestamp: "timestamp",
	Date:      "date",
	Headers:   "array<struct<key:string,value:binary>>",
}

// String returns Spark's simpleString for the type (e.g. "bigint").
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// JSONName returns the type name Spark uses in JSON schemas (StructType.json):
// "integer" and "long" instead of "int" and "bigint".
func (k Kind) JSONName() string {
	switch k {
	case Int:
		return "integer"
	case Long:
		return "long"
	case Null:
		return "void"
	}
	return k.String()
}

// IsNumeric reports whether arithmetic applies to the kind.
func (k Kind) IsNumeric() bool { return k == Int || k == Long || k == Double }

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Field is one named, typed column of a Schema.
type Field struct {
	Name     string
	Type     Kind
	Nullable bool
}

// Schema is an ordered list of fields.
type Schema struct {
	Fields []Field
}

// Index returns the position of the field called name, matched
// case-insensitively as Spark does by default, or -1.
func (s Schema) Index(name string) int {
	for i, f := range s.Fields {
		if f.Name == name {
			return i
		}
	}
	for i, f := range s.Fields {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

// Names returns the field names in order.
func (s Schema) Names() []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

// String renders the schema as Spark's DDL-ish simpleString,
// e.g. "struct<key:binary,value:binary>".
func (s Schema) String() string {
	var b strings.Builder
	b.WriteString("struct<")
	for i, f := range s.Fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.Name)
		b.WriteByte(':')
		b.WriteString(f.Type.String())
	}
	b.WriteByte('>')
	return b.String()
}

// Column is one column of a Batch. Exactly one of the value slices is used,
// chosen by Type (see Kind). Valid is nil when no cell is null; otherwise
// Valid[i] is false for a null cell, whose value slot is the zero value.
type Column struct {
	Type    Kind
	Valid   []bool
	Bools   []bool
	Ints    []int64
	Floats  []float64
	Bytes   [][]byte
	Headers [][]Header
	// Len is the number of cells. It is authoritative for Null columns,
	// which have no value slice.
	Len int
}

// NewColumn returns an empty column of kind k with capacity for n cells.
func NewColumn(k Kind, n int) *Column {
	c := &Column{Type: k}
	switch k {
	case Boolean:
		c.Bools = make([]bool, 0, n)
	case Int, Long, Date, Timestamp:
		c.Ints = make([]int64, 0, n)
	case Double:
		c.Floats = make([]float64, 0, n)
	case String, Binary:
		c.Bytes = make([][]byte, 0, n)
	case Headers:
		c.Headers = make([][]Header, 0, n)
	}
	return c
}

// NullColumn returns a column of kind k with n null cells.
func NullColumn(k Kind, n int) *Column {
	c := NewColumn(k, n)
	for i := 0; i < n; i++ {
		c.AppendNull()
	}
	return c
}

// IsNull reports whether cell i is null.
func (c *Column) IsNull(i int) bool {
	if c.Type == Null {
		return true
	}
	return c.Valid != nil && !c.Valid[i]
}

// HasNulls reports whether any cell may be null.
func (c *Column) HasNulls() bool { return c.Type == Null || c.Valid != nil }

func (c *Column) markValid() {
	if c.Valid != nil {
		c.Valid = append(c.Valid, true)
	}
	c.Len++
}

// AppendNull appends a null cell.
func (c *Column) AppendNull() {
	if c.Type != Null && c.Valid == nil {
		c.Valid = make([]bool, c.Len, c.Len+16)
		for i := range c.Valid {
			c.Valid[i] = true
		}
	}
	if c.Type != Null {
		c.Valid = append(c.Valid, false)
	}
	switch c.Type {
	case Boolean:
		c.Bools = append(c.Bools, false)
	case Int, Long, Date, Timestamp:
		c.Ints = append(c.Ints, 0)
	case Double:
		c.Floats = append(c.Floats, 0)
	case String, Binary:
		c.Bytes = append(c.Bytes, nil)
	case Headers:
		c.Headers = append(c.Headers, nil)
	}
	c.Len++
}

// AppendBool appends a non-null boolean.
func (c *Column) AppendBool(v bool) { c.Bools = append(c.Bools, v); c.markValid() }

// AppendInt appends a non-null Int, Long, Date or Timestamp value.
func (c *Column) AppendInt(v int64) { c.Ints = append(c.Ints, v); c.markValid() }

// AppendFloat appends a non-null Double.
func (c *Column) AppendFloat(v float64) { c.Floats = append(c.Floats, v); c.markValid() }

// AppendBytes appends a non-null String or Binary value. The slice is
// aliased, not copied. A nil slice appends a null (Kafka's null key).
func (c *Column) AppendBytes(v []byte) {
	if v == nil {
		c.AppendNull()
		return
	}
	c.Bytes = append(c.Bytes, v)
	c.markValid()
}

// AppendHeaders appends a Headers cell; nil appends a null (Spark reports
// null for a record without headers).
func (c *Column) AppendHeaders(h []Header) {
	if h == nil {
		c.AppendNull()
		return
	}
	c.Headers = append(c.Headers, h)
	c.markValid()
}

// ByteSize estimates the memory the column's cells occupy: fixed-width
// values at their width, variable-width ones by payload length plus a slice
// header. It is the figure the memory budget charges.
func (c *Column) ByteSize() int64 {
	var n int64
	n += int64(len(c.Valid))
	n += int64(len(c.Bools))
	n += 8 * int64(len(c.Ints)+len(c.Floats))
	for _, b := range c.Bytes {
		n += int64(len(b)) + 24
	}
	for _, hs := range c.Headers {
		n += 24
		for _, h := range hs {
			n += int64(len(h.Key)+len(h.Value)) + 40
		}
	}
	return n
}

// Slice returns cells [from, to) as a column sharing storage with c.
func (c *Column) Slice(from, to int) *Column {
	s := &Column{Type: c.Type, Len: to - from}
	if c.Valid != nil {
		s.Valid = c.Valid[from:to:to]
	}
	switch c.Type {
	case Boolean:
		s.Bools = c.Bools[from:to:to]
	case Int, Long, Date, Timestamp:
		s.Ints = c.Ints[from:to:to]
	case Double:
		s.Floats = c.Floats[from:to:to]
	case String, Binary:
		s.Bytes = c.Bytes[from:to:to]
	case Headers:
		s.Headers = c.Headers[from:to:to]
	}
	return s
}

// Filter returns the cells whose keep flag is true, in order.
func (c *Column) Filter(keep []bool, n int) *Column {
	out := NewColumn(c.Type, n)
	for i, k := range keep {
		if !k {
			continue
		}
		if c.IsNull(i) {
			out.AppendNull()
			continue
		}
		switch c.Type {
		case Boolean:
			out.AppendBool(c.Bools[i])
		case Int, Long, Date, Timestamp:
			out.AppendInt(c.Ints[i])
		case Double:
			out.AppendFloat(c.Floats[i])
		case String, Binary:
			out.AppendBytes(c.Bytes[i])
		case Headers:
			out.AppendHeaders(c.Headers[i])
		}
	}
	return out
}

// Value returns cell i as a Go value: nil, bool, int64, float64, string
// (String), []byte (Binary), time.Time is not used — Timestamp and Date are
// returned as int64 in their storage unit — and []Header.
func (c *Column) Value(i int) any {
	if c.IsNull(i) {
		return nil
	}
	switch c.Type {
	case Boolean:
		return c.Bools[i]
	case Int, Long, Date, Timestamp:
		return c.Ints[i]
	case Double:
		return c.Floats[i]
	case String:
		return string(c.Bytes[i])
	case Binary:
		return c.Bytes[i]
	case Headers:
		return c.Headers[i]
	}
	return nil
}

// Batch is a set of equally long columns described by a schema.
type Batch struct {
	Schema  Schema
	Columns []*Column
	// N is the number of rows.
	N int
}

// New returns a batch over the given columns; all must have n cells.
func New(schema Schema, cols []*Column, n int) *Batch {
	return &Batch{Schema: schema, Columns: cols, N: n}
}

// Column returns the column called name, or nil.
func (b *Batch) Column(name string) *Column {
	i := b.Schema.Index(name)
	if i < 0 {
		return nil
	}
	return b.Columns[i]
}

// ByteSize sums the columns' ByteSize.
func (b *Batch) ByteSize() int64 {
	var n int64
	for _, c := range b.Columns {
		n += c.ByteSize()
	}
	return n
}

// Validate checks that the columns agree with the schema and with N.
func (b *Batch) Validate() error {
	if len(b.Columns) != len(b.Schema.Fields) {
		return fmt.Errorf("batch has %d columns for %d fields", len(b.Columns), len(b.Schema.Fields))
	}
	for i, c := range b.Columns {
		f := b.Schema.Fields[i]
		if c.Type != f.Type {
			return fmt.Errorf("column %q is %s, schema says %s", f.Name, c.Type, f.Type)
		}
		if c.Len != b.N {
			return fmt.Errorf("column %q has %d cells, batch has %d rows", f.Name, c.Len, b.N)
		}
	}
	return nil
}

// Row returns row i as Go values (see Column.Value).
func (b *Batch) Row(i int) []any {
	out := make([]any, len(b.Columns))
	for j, c := range b.Columns {
		out[j] = c.Value(i)
	}
	return out
}
