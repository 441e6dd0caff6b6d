package parquetio

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/sluice-stream/sluice/batch"
)

// SchemaName is the name of the root group, the one Spark gives it.
const SchemaName = "spark_schema"

// SparkRowMetadataKey is the Parquet key-value metadata entry in which Spark
// stores the Spark SQL schema (StructType JSON) of the rows of a file.
const SparkRowMetadataKey = "org.apache.spark.sql.parquet.row.metadata"

// Node returns the Parquet node for a column of kind k; every column and
// every nested field, element and map value is optional (nullable), as
// Spark writes them (it writes the schema's asNullable). Structs are groups
// with their fields in order, arrays the three-level LIST
// <name>.list.element, maps the MAP <name>.key_value.{key (required),
// value}. The Null kind has no Parquet type (Spark refuses to write void
// columns too) and is an error.
func Node(k batch.Kind) (parquet.Node, error) { return node(k, true) }

func node(k batch.Kind, optional bool) (parquet.Node, error) {
	var n parquet.Node
	switch k.Class() {
	case batch.Boolean:
		n = parquet.Leaf(parquet.BooleanType)
	case batch.Int:
		n = parquet.Leaf(parquet.Int32Type)
	case batch.Long:
		n = parquet.Leaf(parquet.Int64Type)
	case batch.Double:
		n = parquet.Leaf(parquet.DoubleType)
	case batch.String:
		n = parquet.String()
	case batch.Binary:
		n = parquet.Leaf(parquet.ByteArrayType)
	case batch.Timestamp:
		n = parquet.Timestamp(parquet.Microsecond)
	case batch.Date:
		n = parquet.Date()
	case batch.Struct:
		fs := k.Fields()
		if len(fs) == 0 {
			// Spark refuses empty structs in Parquet the same way.
			return nil, fmt.Errorf("type %s cannot be written to Parquet: a struct needs at least one field", k)
		}
		g := make(OrderedGroup, len(fs))
		for i, f := range fs {
			c, err := node(f.Type, true)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			g[i] = NamedNode{Name: f.Name, Node: c}
		}
		n = g
	case batch.Array:
		e, err := node(k.Elem(), true)
		if err != nil {
			return nil, err
		}
		n = parquet.List(e)
	case batch.Map:
		key, err := node(k.KeyType(), false)
		if err != nil {
			return nil, err
		}
		val, err := node(k.ValueType(), true)
		if err != nil {
			return nil, err
		}
		n = parquet.Map(key, val)
	default:
		return nil, fmt.Errorf("type %s cannot be written to Parquet", k)
	}
	if optional {
		return parquet.Optional(n), nil
	}
	return n, nil
}

// Schema returns the Parquet schema of fields, in field order.
func Schema(fields []batch.Field) (*parquet.Schema, error) {
	g := make(OrderedGroup, len(fields))
	for i, f := range fields {
		n, err := Node(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		g[i] = NamedNode{Name: f.Name, Node: n}
	}
	return parquet.NewSchema(SchemaName, g), nil
}

// NamedNode is one field of an OrderedGroup.
type NamedNode struct {
	Name string
	parquet.Node
}

// OrderedGroup is a Parquet group node whose fields keep the order given,
// unlike parquet.Group, which sorts them by name. Files written with it list
// their columns in the order of the sluice schema, as Spark's do.
type OrderedGroup []NamedNode

var _ parquet.Node = OrderedGroup(nil)

// ID implements parquet.Node.
func (g OrderedGroup) ID() int { return 0 }

// String implements parquet.Node: the fields in order, e.g.
// "group {a: optional int64; b: ...}".
func (g OrderedGroup) String() string {
	var b strings.Builder
	b.WriteString("group {")
	for i, f := range g {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(f.Node.String())
	}
	b.WriteString("}")
	return b.String()
}

// Type implements parquet.Node; groups have the group type.
func (g OrderedGroup) Type() parquet.Type { return parquet.Group{}.Type() }

// Optional implements parquet.Node.
func (g OrderedGroup) Optional() bool { return false }

// Repeated implements parquet.Node.
func (g OrderedGroup) Repeated() bool { return false }

// Required implements parquet.Node.
func (g OrderedGroup) Required() bool { return true }

// Leaf implements parquet.Node.
func (g OrderedGroup) Leaf() bool { return false }

// Encoding implements parquet.Node.
func (g OrderedGroup) Encoding() encoding.Encoding { return nil }

// Compression implements parquet.Node.
func (g OrderedGroup) Compression() compress.Codec { return nil }

// GoType implements parquet.Node with a struct of the fields in order.
func (g OrderedGroup) GoType() reflect.Type {
	fs := make([]reflect.StructField, len(g))
	for i, f := range g {
		fs[i] = reflect.StructField{
			Name: fmt.Sprintf("F%d", i),
			Type: f.GoType(),
			Tag:  reflect.StructTag(fmt.Sprintf("parquet:%q", f.Name)),
		}
	}
	return reflect.StructOf(fs)
}

// Fields implements parquet.Node, in the order of g.
func (g OrderedGroup) Fields() []parquet.Field {
	out := make([]parquet.Field, len(g))
	for i := range g {
		out[i] = orderedField{NamedNode: g[i], index: i}
	}
	return out
}

type orderedField struct {
	NamedNode
	index int
}

func (f orderedField) Name() string { return f.NamedNode.Name }

// Value returns the field of a Go struct built by GoType (by position) or of
// a map (by name).
func (f orderedField) Value(base reflect.Value) reflect.Value {
	for base.Kind() == reflect.Interface || base.Kind() == reflect.Pointer {
		if base.IsNil() {
			return reflect.Value{}
		}
		base = base.Elem()
	}
	switch base.Kind() {
	case reflect.Struct:
		return base.Field(f.index)
	case reflect.Map:
		return base.MapIndex(reflect.ValueOf(f.NamedNode.Name))
	}
	return reflect.Value{}
}

// SparkSchemaJSON renders fields as a Spark SQL StructType in JSON (the
// form of Delta's schemaString and of Spark's Parquet row metadata). When
// allNullable is true every field, nested ones included, is marked
// nullable, as Spark does for data it writes to files (asNullable).
func SparkSchemaJSON(fields []batch.Field, allNullable bool) (string, error) {
	s := batch.Schema{Fields: fields}
	if allNullable {
		s = s.AsNullable()
	}
	for _, f := range s.Fields {
		if f.Type.Contains(batch.Null) {
			return "", fmt.Errorf("column %q: type void cannot be stored", f.Name)
		}
	}
	return s.JSON(), nil
}
