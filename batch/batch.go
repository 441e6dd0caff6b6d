// Package batch is sluice's columnar data representation: a Schema of typed
// fields and a Batch of equally long Columns.
//
// A Batch is what flows from a source task through the transforms into a
// sink writer. Columns hold plain Go slices, one slice per physical
// representation, so the hot path (Kafka record → column → expression →
// sink) allocates little and copies less: String and Binary cells alias the
// bytes they were built from (for Kafka, the fetched record buffers).
//
// # Types
//
// A Kind is a complete data type: a flat kind (boolean, int, bigint,
// double, string, binary, timestamp, date, void) or a nested one made by
// StructOf, ArrayOf or MapOf — Spark's StructType, ArrayType and MapType,
// nullability included. Kinds are interned, so any two equal types are the
// same Kind value. They print as Spark's simpleString
// (struct<a:int,b:array<string>>), as its DataType.sql (SQL) and as its
// StructType.json (AppendJSON, Schema.JSON). Kafka's headers column is the
// ordinary nested kind Headers, array<struct<key:string,value:binary>>.
//
// # Nested columns
//
// A struct column has one child column per field, each as long as the
// struct; an array column has Len+1 offsets into one child column of
// elements; a map column has offsets into a key column and a value column
// (see Column). Builders append a nested cell bottom-up: the field values
// or elements first, then AppendStruct, AppendArray or AppendMap on the
// parent (AppendNull appends a null at any level). AppendFrom and
// AppendRange copy cells of any kind between columns of the same kind.
// Go callers see a nested cell (Column.Value, Batch.Row) as a StructValue,
// a []any or a MapValue.
//
// # Ownership
//
// A Batch handed to a consumer (a transform, a sink writer) may be read
// until the consumer returns; a consumer that keeps it longer (a console or
// memory sink collecting rows) must not mutate it, and the producer must
// not reuse its slices. Nothing in sluice recycles batches, so this holds
// by construction. The same rule covers children: a column may share child
// columns with another (Slice of an array column shares its element
// column; an expression's result may return an input's child as-is, as
// field access does), so no column reachable from a batch is appended to
// once the batch is handed on.
package batch

import (
	"fmt"
	"strings"
)

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

// String renders the schema as Spark's simpleString of its StructType,
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
		if err := c.Validate(); err != nil {
			return fmt.Errorf("column %q: %w", f.Name, err)
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

// AppendJSON appends the schema as Spark's StructType.json:
// {"type":"struct","fields":[{"name":…,"type":…,"nullable":…,"metadata":{}},…]}.
func (s Schema) AppendJSON(dst []byte) []byte { return appendFieldsJSON(dst, s.Fields) }

// JSON returns the schema as Spark's StructType.json.
func (s Schema) JSON() string { return string(s.AppendJSON(nil)) }

// AsNullable returns the schema with every field and every nested
// nullability set, as Spark's asNullable (the schema of data it writes to
// files).
func (s Schema) AsNullable() Schema {
	out := Schema{Fields: make([]Field, len(s.Fields))}
	for i, f := range s.Fields {
		out.Fields[i] = Field{Name: f.Name, Type: f.Type.AsNullable(), Nullable: true}
	}
	return out
}
