package parquetio

import (
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sluice-stream/sluice/batch"
)

// Table is the content of a Parquet file read back by ReadFile.
type Table struct {
	// Names are the top-level column names, in file order.
	Names []string
	// Rows hold cells as batch.Column.Value returns them: nil, bool,
	// int64 (INT32 and INT64, dates in days, timestamps in micros),
	// float64, string (STRING), []byte (other BYTE_ARRAY),
	// batch.StructValue, []any (LIST) and batch.MapValue (MAP).
	Rows [][]any
	// Schema is the file's Parquet schema.
	Schema *parquet.Schema
	// RowGroups is the number of row groups in the file.
	RowGroups int
}

// ReadFile reads a whole Parquet file written by Writer (any of the types
// in the package doc; the column types come from the Spark schema in the
// file's metadata). It is meant for tests and tools, not for
// the data path: it materialises every row.
func ReadFile(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Read(f, st.Size())
}

// Read is ReadFile on an open file of the given size.
func Read(r io.ReaderAt, size int64) (*Table, error) {
	pf, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("opening parquet file: %w", err)
	}
	schema := pf.Schema()
	t := &Table{Schema: schema, RowGroups: len(pf.RowGroups())}
	fields, err := fileFields(pf)
	if err != nil {
		return nil, err
	}
	shapes := make([]*shape, len(fields))
	leaves := 0
	for i, f := range fields {
		t.Names = append(t.Names, f.Name)
		shapes[i] = newShape(f.Type, &leaves, 0)
	}
	if n := len(schema.Columns()); n != leaves {
		return nil, fmt.Errorf("parquet file has %d leaf columns, its Spark schema %d", n, leaves)
	}
	a := &assembler{vals: make([][]parquet.Value, leaves), pos: make([]int, leaves)}
	rr := parquet.NewReader(pf)
	defer rr.Close()
	buf := make([]parquet.Row, 64)
	for {
		n, err := rr.ReadRows(buf)
		for _, row := range buf[:n] {
			for l := range a.vals {
				a.vals[l], a.pos[l] = a.vals[l][:0], 0
			}
			for _, v := range row {
				a.vals[v.Column()] = append(a.vals[v.Column()], v)
			}
			out := make([]any, len(fields))
			for i, s := range shapes {
				out[i] = a.read(s, 0, false)
			}
			t.Rows = append(t.Rows, out)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading parquet rows: %w", err)
		}
	}
	return t, nil
}

// fileFields returns the file's columns as sluice fields: from the Spark
// schema in its metadata when there is one, otherwise from its flat leaf
// columns.
func fileFields(pf *parquet.File) ([]batch.Field, error) {
	if js, ok := pf.Lookup(SparkRowMetadataKey); ok {
		s, err := batch.ParseSchemaJSON(js)
		if err != nil {
			return nil, fmt.Errorf("parquet file's Spark schema: %w", err)
		}
		return s.Fields, nil
	}
	var out []batch.Field
	for _, fd := range pf.Schema().Fields() {
		if !fd.Leaf() {
			return nil, fmt.Errorf("parquet column %q is nested and the file has no Spark schema", fd.Name())
		}
		k := batch.Binary
		lt := fd.Type().LogicalType()
		switch fd.Type().Kind() {
		case parquet.Boolean:
			k = batch.Boolean
		case parquet.Int32:
			k = batch.Int
			if _, ok := logical(lt).(*format.DateType); ok {
				k = batch.Date
			}
		case parquet.Int64:
			k = batch.Long
			if _, ok := logical(lt).(*format.TimestampType); ok {
				k = batch.Timestamp
			}
		case parquet.Double:
			k = batch.Double
		case parquet.ByteArray:
			if isString(lt) {
				k = batch.String
			}
		}
		out = append(out, batch.Field{Name: fd.Name(), Type: k, Nullable: true})
	}
	return out, nil
}

// assembler rebuilds the cells of one row from its per-leaf values, the
// inverse of shredding (see shape).
type assembler struct {
	vals [][]parquet.Value
	pos  []int
}

func (a *assembler) peek(leaf int) (parquet.Value, bool) {
	if a.pos[leaf] >= len(a.vals[leaf]) {
		return parquet.Value{}, false
	}
	return a.vals[leaf][a.pos[leaf]], true
}

// skip consumes the one value every leaf under s has for an absent node.
func (a *assembler) skip(s *shape) {
	for l := s.leaf; l < s.leaf+s.leaves; l++ {
		a.pos[l]++
	}
}

// read returns the next cell of s as batch.Column.Value returns cells;
// def is the definition level of its present ancestors.
func (a *assembler) read(s *shape, def int, required bool) any {
	first, ok := a.peek(s.leaf)
	if !ok {
		return nil
	}
	if !required {
		if first.DefinitionLevel() <= def {
			a.skip(s)
			return nil
		}
		def++
	}
	switch s.kind.Class() {
	case batch.Struct:
		vals := make([]any, len(s.children))
		for i, c := range s.children {
			vals[i] = a.read(c, def, false)
		}
		return batch.StructValue{Names: s.kind.FieldNames(), Values: vals}
	case batch.Array, batch.Map:
		isMap := s.kind.Class() == batch.Map
		var elems, keys []any
		if first.DefinitionLevel() > def {
			for {
				if isMap {
					keys = append(keys, a.read(s.children[0], def+1, true))
					elems = append(elems, a.read(s.children[1], def+1, false))
				} else {
					elems = append(elems, a.read(s.children[0], def+1, false))
				}
				next, ok := a.peek(s.leaf)
				if !ok || next.RepetitionLevel() != s.repLevel {
					break
				}
			}
		} else {
			a.skip(s)
		}
		if isMap {
			return batch.MapValue{Keys: append([]any{}, keys...), Values: append([]any{}, elems...)}
		}
		return append([]any{}, elems...)
	}
	v := a.vals[s.leaf][a.pos[s.leaf]]
	a.pos[s.leaf]++
	return leafValue(v, s.kind)
}

func leafValue(v parquet.Value, k batch.Kind) any {
	if v.IsNull() {
		return nil
	}
	switch v.Kind() {
	case parquet.Boolean:
		return v.Boolean()
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.Int64:
		return v.Int64()
	case parquet.Double:
		return v.Double()
	case parquet.ByteArray:
		if k == batch.String {
			return string(v.ByteArray())
		}
		return append([]byte{}, v.ByteArray()...)
	}
	return v.String()
}

// LeafTypes returns the physical and logical type of each leaf column by
// dotted path, e.g. "ts" → "INT64 TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)".
func LeafTypes(s *parquet.Schema) map[string]string {
	out := map[string]string{}
	for _, path := range s.Columns() {
		leaf, ok := s.Lookup(path...)
		if !ok {
			continue
		}
		t := leaf.Node.Type()
		desc := t.Kind().String()
		if lt := t.LogicalType(); lt != nil {
			desc += " " + lt.String()
		}
		name := ""
		for i, p := range path {
			if i > 0 {
				name += "."
			}
			name += p
		}
		out[name] = desc
	}
	return out
}

func logical(lt *format.LogicalType) any {
	if lt == nil {
		return nil
	}
	return lt.Value
}

func isString(lt *format.LogicalType) bool {
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.StringType)
	return ok
}
