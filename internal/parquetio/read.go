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
	// float64, string (STRING), []byte (other BYTE_ARRAY) and
	// []batch.Header (a LIST of key/value structs).
	Rows [][]any
	// Schema is the file's Parquet schema.
	Schema *parquet.Schema
	// RowGroups is the number of row groups in the file.
	RowGroups int
}

// ReadFile reads a whole Parquet file written by Writer (flat columns of
// the types in the package doc). It is meant for tests and tools, not for
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
	type leafInfo struct {
		field  int  // top-level field
		sub    int  // 0 = key / plain, 1 = value (headers)
		str    bool // STRING logical type
		list   bool
		maxDef int
	}
	var leaves []leafInfo
	for i, fd := range schema.Fields() {
		t.Names = append(t.Names, fd.Name())
		if fd.Leaf() {
			lt := fd.Type().LogicalType()
			leaves = append(leaves, leafInfo{field: i, str: isString(lt), maxDef: 1})
			continue
		}
		// LIST<struct<key,value>>
		leaves = append(leaves, leafInfo{field: i, sub: 0, list: true, maxDef: 4}, leafInfo{field: i, sub: 1, list: true, maxDef: 4})
	}
	rr := parquet.NewReader(pf)
	defer rr.Close()
	buf := make([]parquet.Row, 64)
	for {
		n, err := rr.ReadRows(buf)
		for _, row := range buf[:n] {
			out := make([]any, len(t.Names))
			var keys, vals []parquet.Value
			listField := -1
			for _, v := range row {
				li := leaves[v.Column()]
				if !li.list {
					out[li.field] = plainValue(v, li.str)
					continue
				}
				listField = li.field
				if li.sub == 0 {
					keys = append(keys, v)
				} else {
					vals = append(vals, v)
				}
			}
			if listField >= 0 {
				out[listField] = headersValue(keys, vals)
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

func plainValue(v parquet.Value, str bool) any {
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
		if str {
			return string(v.ByteArray())
		}
		return append([]byte{}, v.ByteArray()...)
	}
	return v.String()
}

func headersValue(keys, vals []parquet.Value) any {
	if len(keys) == 1 && keys[0].IsNull() {
		if keys[0].DefinitionLevel() == hdrNull {
			return nil
		}
		return []batch.Header{}
	}
	hs := make([]batch.Header, len(keys))
	for i, k := range keys {
		hs[i].Key = string(k.ByteArray())
		if i < len(vals) && !vals[i].IsNull() {
			hs[i].Value = append([]byte{}, vals[i].ByteArray()...)
		}
	}
	return hs
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

func isString(lt *format.LogicalType) bool {
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.StringType)
	return ok
}
