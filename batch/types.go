package batch

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Kind is a column's data type. Names follow Spark SQL's.
//
// A flat kind (Boolean … Date, Null) is one of the constants below. A nested
// kind — a struct, array or map — is made by StructOf, ArrayOf or MapOf,
// which intern it: the same description always gives the same Kind, so
// kinds of any depth compare with ==, are map keys and cost a word. Nested
// kinds live as long as the process, like the types reflect.StructOf makes;
// sluice creates them from schemas and expressions, never per row.
//
// The nested kinds carry their children's nullability (a struct field's
// Nullable, an array's containsNull, a map's valueContainsNull) as Spark's
// DataType does; SameType compares two kinds ignoring it.
type Kind uint32

// The flat kinds, and the classes of the nested ones. Physical storage per
// kind (see Column):
//
//	Boolean              Column.Bools
//	Int, Long            Column.Ints (Int values fit in int32)
//	Date                 Column.Ints (days since 1970-01-01)
//	Timestamp            Column.Ints (microseconds since the Unix epoch, UTC)
//	Double               Column.Floats
//	String, Binary       Column.Bytes (String is UTF-8 by convention; not validated)
//	Null                 no storage; every cell is null (the type of a bare NULL literal)
//	struct<…>            Column.Children, one column per field, each Len cells
//	array<…>             Column.Offsets (Len+1 entries) and Column.Children[0], the elements
//	map<…>               Column.Offsets, Column.Children[0] the keys and [1] the values
//
// Struct, Array and Map are classes, not column types: a nested column's
// Kind is one StructOf, ArrayOf or MapOf returned, and its Class() is one of
// them.
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
	Struct
	Array
	Map
)

// classBits is the width of the class in a Kind; the bits above index the
// registry of nested kinds (0 for flat kinds and bare classes).
const (
	classBits = 8
	classMask = 1<<classBits - 1
	// maxNested bounds the registry (2^24 − 1 nested kinds).
	maxNested = 1<<(32-classBits) - 1
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
	Struct:    "struct",
	Array:     "array",
	Map:       "map",
}

// Headers is the kind of Kafka's headers column, Spark's
// array<struct<key:string,value:binary>> (see Column.AppendHeaders).
var Headers = ArrayOf(StructOf(
	Field{Name: "key", Type: String, Nullable: true},
	Field{Name: "value", Type: Binary, Nullable: true},
), true)

// typeInfo describes one nested kind.
type typeInfo struct {
	fields       []Field  // struct
	names        []string // struct field names, shared by StructValues
	elem         Kind     // array element, map key
	value        Kind     // map value
	containsNull bool     // array containsNull, map valueContainsNull
	simple       string   // simpleString
	nullable     Kind     // AsNullable, filled lazily (0 = not yet)
}

var registry struct {
	mu    sync.Mutex
	byKey map[string]Kind
	// list is append-only; readers load the slice header atomically and
	// never index past its length, so they need no lock.
	list atomic.Pointer[[]*typeInfo]
}

func info(k Kind) *typeInfo {
	i := k >> classBits
	if i == 0 {
		return nil
	}
	return (*registry.list.Load())[i-1]
}

// intern returns the kind of class c described by key, registering build()
// on first use.
func intern(c Kind, key []byte, build func() *typeInfo) Kind {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.byKey == nil {
		registry.byKey = map[string]Kind{}
		registry.list.Store(&[]*typeInfo{})
	}
	if k, ok := registry.byKey[string(key)]; ok {
		return k
	}
	list := *registry.list.Load()
	if len(list) >= maxNested {
		panic("batch: too many distinct nested types")
	}
	ti := build()
	list = append(list, ti)
	k := c | Kind(len(list))<<classBits
	registry.list.Store(&list)
	registry.byKey[string(key)] = k
	return k
}

// StructOf returns the struct kind with the given fields, in order. Field
// names need not be unique (Spark allows duplicates; access by name then
// picks the first).
func StructOf(fields ...Field) Kind {
	key := []byte{byte(Struct)}
	for _, f := range fields {
		key = binary.AppendUvarint(key, uint64(len(f.Name)))
		key = append(key, f.Name...)
		key = binary.AppendUvarint(key, uint64(f.Type))
		key = appendBool(key, f.Nullable)
	}
	return intern(Struct, key, func() *typeInfo {
		ti := &typeInfo{fields: append([]Field(nil), fields...)}
		ti.names = make([]string, len(fields))
		var b strings.Builder
		b.WriteString("struct<")
		for i, f := range fields {
			ti.names[i] = f.Name
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.Name)
			b.WriteByte(':')
			b.WriteString(f.Type.String())
		}
		b.WriteByte('>')
		ti.simple = b.String()
		return ti
	})
}

// ArrayOf returns the kind array<elem>; containsNull says whether elements
// may be null.
func ArrayOf(elem Kind, containsNull bool) Kind {
	key := binary.AppendUvarint([]byte{byte(Array)}, uint64(elem))
	key = appendBool(key, containsNull)
	return intern(Array, key, func() *typeInfo {
		return &typeInfo{elem: elem, containsNull: containsNull, simple: "array<" + elem.String() + ">"}
	})
}

// MapOf returns the kind map<key,value>; keys are never null,
// valueContainsNull says whether values may be.
func MapOf(key, value Kind, valueContainsNull bool) Kind {
	b := binary.AppendUvarint([]byte{byte(Map)}, uint64(key))
	b = binary.AppendUvarint(b, uint64(value))
	b = appendBool(b, valueContainsNull)
	return intern(Map, b, func() *typeInfo {
		return &typeInfo{elem: key, value: value, containsNull: valueContainsNull,
			simple: "map<" + key.String() + "," + value.String() + ">"}
	})
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// Class returns Struct, Array or Map for a nested kind, the kind itself
// otherwise.
func (k Kind) Class() Kind { return k & classMask }

// IsNested reports whether k is a struct, array or map kind.
func (k Kind) IsNested() bool { c := k.Class(); return c == Struct || c == Array || c == Map }

// Valid reports whether k is a column type: a flat kind, or a nested kind
// made by StructOf, ArrayOf or MapOf (not a bare class).
func (k Kind) Valid() bool {
	if k.IsNested() {
		return k>>classBits != 0 && int(k>>classBits) <= len(*loadList())
	}
	return k <= Date
}

func loadList() *[]*typeInfo {
	if l := registry.list.Load(); l != nil {
		return l
	}
	return &[]*typeInfo{}
}

// Fields returns a struct kind's fields (nil for other kinds). The slice is
// shared: do not modify it.
func (k Kind) Fields() []Field {
	if k.Class() != Struct {
		return nil
	}
	if ti := info(k); ti != nil {
		return ti.fields
	}
	return nil
}

// FieldNames returns a struct kind's field names (shared; do not modify).
func (k Kind) FieldNames() []string {
	if k.Class() != Struct {
		return nil
	}
	if ti := info(k); ti != nil {
		return ti.names
	}
	return nil
}

// FieldIndex returns the position of a struct kind's field called name,
// matched as Schema.Index matches (exactly first, then case-insensitively),
// or -1.
func (k Kind) FieldIndex(name string) int { return Schema{Fields: k.Fields()}.Index(name) }

// Elem returns an array kind's element kind (Null for other kinds).
func (k Kind) Elem() Kind {
	if k.Class() != Array {
		return Null
	}
	if ti := info(k); ti != nil {
		return ti.elem
	}
	return Null
}

// ContainsNull reports whether an array kind's elements, or a map kind's
// values, may be null.
func (k Kind) ContainsNull() bool {
	if c := k.Class(); c != Array && c != Map {
		return false
	}
	if ti := info(k); ti != nil {
		return ti.containsNull
	}
	return false
}

// KeyType returns a map kind's key kind (Null for other kinds).
func (k Kind) KeyType() Kind {
	if k.Class() != Map {
		return Null
	}
	if ti := info(k); ti != nil {
		return ti.elem
	}
	return Null
}

// ValueType returns a map kind's value kind (Null for other kinds).
func (k Kind) ValueType() Kind {
	if k.Class() != Map {
		return Null
	}
	if ti := info(k); ti != nil {
		return ti.value
	}
	return Null
}

// String returns Spark's simpleString for the type: "bigint",
// "struct<a:int,b:string>", "array<bigint>", "map<string,int>".
func (k Kind) String() string {
	if ti := info(k); ti != nil && k.IsNested() {
		return ti.simple
	}
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint32(k))
}

// SQL returns the type as Spark's DataType.sql spells it, the form in
// generated names such as CAST(x AS STRUCT<a: INT>): upper-case type names,
// "STRUCT<a: INT, `b c`: STRING>", "ARRAY<BIGINT>", "MAP<STRING, INT>".
func (k Kind) SQL() string {
	if info(k) == nil {
		return strings.ToUpper(k.String())
	}
	switch k.Class() {
	case Struct:
		var b strings.Builder
		b.WriteString("STRUCT<")
		for i, f := range k.Fields() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(QuoteIdentIfNeeded(f.Name))
			b.WriteString(": ")
			b.WriteString(f.Type.SQL())
			if !f.Nullable {
				b.WriteString(" NOT NULL")
			}
		}
		b.WriteByte('>')
		return b.String()
	case Array:
		return "ARRAY<" + k.Elem().SQL() + ">"
	case Map:
		return "MAP<" + k.KeyType().SQL() + ", " + k.ValueType().SQL() + ">"
	}
	return strings.ToUpper(k.String())
}

// QuoteIdentIfNeeded back-quotes a name that is not a plain identifier
// (letters, digits and underscores, not starting with a digit), doubling
// back-quotes inside, as Spark's quoteIfNeeded does.
func QuoteIdentIfNeeded(name string) string {
	plain := name != ""
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// JSONName returns the type name Spark uses in JSON schemas (StructType.json):
// "integer" and "long" instead of "int" and "bigint". Nested kinds have no
// name but a JSON object: use AppendJSON.
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

// AppendJSON appends the type as Spark's DataType.json renders it: a quoted
// name for flat kinds ("integer"), an object for nested ones, with Spark's
// key order:
//
//	{"type":"struct","fields":[{"name":"a","type":"integer","nullable":true,"metadata":{}}]}
//	{"type":"array","elementType":"long","containsNull":true}
//	{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true}
func (k Kind) AppendJSON(dst []byte) []byte {
	switch k.Class() {
	case Struct:
		return appendFieldsJSON(dst, k.Fields())
	case Array:
		dst = append(dst, `{"type":"array","elementType":`...)
		dst = k.Elem().AppendJSON(dst)
		dst = append(dst, `,"containsNull":`...)
		return append(appendJSONBool(dst, k.ContainsNull()), '}')
	case Map:
		dst = append(dst, `{"type":"map","keyType":`...)
		dst = k.KeyType().AppendJSON(dst)
		dst = append(dst, `,"valueType":`...)
		dst = k.ValueType().AppendJSON(dst)
		dst = append(dst, `,"valueContainsNull":`...)
		return append(appendJSONBool(dst, k.ContainsNull()), '}')
	}
	return appendJSONQuoted(dst, k.JSONName())
}

func appendFieldsJSON(dst []byte, fields []Field) []byte {
	dst = append(dst, `{"type":"struct","fields":[`...)
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendJSONQuoted(dst, f.Name)
		dst = append(dst, `,"type":`...)
		dst = f.Type.AppendJSON(dst)
		dst = append(dst, `,"nullable":`...)
		dst = appendJSONBool(dst, f.Nullable)
		dst = append(dst, `,"metadata":{}}`...)
	}
	return append(dst, "]}"...)
}

func appendJSONQuoted(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

func appendJSONBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// AsNullable returns k with every nested nullability set (struct fields
// nullable, containsNull and valueContainsNull true), as Spark's asNullable
// does for data written to files.
func (k Kind) AsNullable() Kind {
	if !k.IsNested() {
		return k
	}
	ti := info(k)
	registry.mu.Lock()
	n := ti.nullable
	registry.mu.Unlock()
	if n != 0 {
		return n
	}
	switch k.Class() {
	case Struct:
		fs := make([]Field, len(ti.fields))
		for i, f := range ti.fields {
			fs[i] = Field{Name: f.Name, Type: f.Type.AsNullable(), Nullable: true}
		}
		n = StructOf(fs...)
	case Array:
		n = ArrayOf(ti.elem.AsNullable(), true)
	case Map:
		n = MapOf(ti.elem.AsNullable(), ti.value.AsNullable(), true)
	}
	registry.mu.Lock()
	ti.nullable = n
	registry.mu.Unlock()
	return n
}

// SameType reports whether a and b are the same type ignoring nullability
// (Spark's DataType.sameType): equal flat kinds, or nested kinds of the same
// shape whose field names match case-sensitively.
func SameType(a, b Kind) bool {
	if a == b {
		return true
	}
	if a.Class() != b.Class() || !a.IsNested() {
		return false
	}
	switch a.Class() {
	case Struct:
		fa, fb := a.Fields(), b.Fields()
		if len(fa) != len(fb) {
			return false
		}
		for i := range fa {
			if fa[i].Name != fb[i].Name || !SameType(fa[i].Type, fb[i].Type) {
				return false
			}
		}
		return true
	case Array:
		return SameType(a.Elem(), b.Elem())
	case Map:
		return SameType(a.KeyType(), b.KeyType()) && SameType(a.ValueType(), b.ValueType())
	}
	return false
}

// Walk calls fn for k and, depth first, every kind nested in it; it stops
// early when fn returns false.
func (k Kind) Walk(fn func(Kind) bool) bool {
	if !fn(k) {
		return false
	}
	switch k.Class() {
	case Struct:
		for _, f := range k.Fields() {
			if !f.Type.Walk(fn) {
				return false
			}
		}
	case Array:
		return k.Elem().Walk(fn)
	case Map:
		return k.KeyType().Walk(fn) && k.ValueType().Walk(fn)
	}
	return true
}

// Contains reports whether k is or nests a kind of class c.
func (k Kind) Contains(c Kind) bool {
	found := false
	k.Walk(func(x Kind) bool {
		if x.Class() == c {
			found = true
		}
		return !found
	})
	return found
}

// jsonNames maps Spark's JSON type names to flat kinds. Spark's narrower
// and wider numbers (byte, short, float) map as package ddl maps them.
var jsonNames = map[string]Kind{
	"boolean": Boolean, "byte": Int, "short": Int, "integer": Int, "long": Long,
	"float": Double, "double": Double, "string": String, "binary": Binary,
	"timestamp": Timestamp, "timestamp_ltz": Timestamp, "timestamp_ntz": Timestamp,
	"date": Date, "void": Null, "null": Null,
}

// ParseTypeJSON reads a type in Spark's DataType.json form (see
// AppendJSON).
func ParseTypeJSON(raw []byte) (Kind, error) {
	var name string
	if err := json.Unmarshal(raw, &name); err == nil {
		if k, ok := jsonNames[name]; ok {
			return k, nil
		}
		return Null, fmt.Errorf("unsupported type %q", name)
	}
	var t struct {
		Type              string            `json:"type"`
		Fields            []json.RawMessage `json:"fields"`
		ElementType       json.RawMessage   `json:"elementType"`
		ContainsNull      *bool             `json:"containsNull"`
		KeyType           json.RawMessage   `json:"keyType"`
		ValueType         json.RawMessage   `json:"valueType"`
		ValueContainsNull *bool             `json:"valueContainsNull"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return Null, fmt.Errorf("bad type JSON: %w", err)
	}
	orTrue := func(b *bool) bool { return b == nil || *b }
	switch t.Type {
	case "struct":
		fs := make([]Field, len(t.Fields))
		for i, f := range t.Fields {
			var err error
			if fs[i], err = parseFieldJSON(f); err != nil {
				return Null, err
			}
		}
		return StructOf(fs...), nil
	case "array":
		e, err := ParseTypeJSON(t.ElementType)
		if err != nil {
			return Null, fmt.Errorf("array element: %w", err)
		}
		return ArrayOf(e, orTrue(t.ContainsNull)), nil
	case "map":
		k, err := ParseTypeJSON(t.KeyType)
		if err != nil {
			return Null, fmt.Errorf("map key: %w", err)
		}
		v, err := ParseTypeJSON(t.ValueType)
		if err != nil {
			return Null, fmt.Errorf("map value: %w", err)
		}
		return MapOf(k, v, orTrue(t.ValueContainsNull)), nil
	}
	return Null, fmt.Errorf("unsupported type %q", t.Type)
}

func parseFieldJSON(raw []byte) (Field, error) {
	var f struct {
		Name     string          `json:"name"`
		Type     json.RawMessage `json:"type"`
		Nullable *bool           `json:"nullable"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return Field{}, fmt.Errorf("bad field JSON: %w", err)
	}
	k, err := ParseTypeJSON(f.Type)
	if err != nil {
		return Field{}, fmt.Errorf("field %q: %w", f.Name, err)
	}
	return Field{Name: f.Name, Type: k, Nullable: f.Nullable == nil || *f.Nullable}, nil
}

// ParseSchemaJSON reads a schema in Spark's StructType.json form (see
// Schema.JSON).
func ParseSchemaJSON(s string) (Schema, error) {
	k, err := ParseTypeJSON([]byte(s))
	if err != nil {
		return Schema{}, err
	}
	if k.Class() != Struct {
		return Schema{}, fmt.Errorf("schema JSON is a %s, not a struct", k)
	}
	return Schema{Fields: append([]Field(nil), k.Fields()...)}, nil
}
