package batch

import (
	"reflect"
	"strings"
	"sync"
	"testing"
)

var (
	window  = StructOf(Field{Name: "start", Type: Timestamp, Nullable: true}, Field{Name: "end", Type: Timestamp, Nullable: true})
	order   = StructOf(Field{Name: "id", Type: Long}, Field{Name: "items", Type: ArrayOf(String, true), Nullable: true})
	tags    = MapOf(String, Long, true)
	deepArr = ArrayOf(ArrayOf(Int, false), true)
)

func TestKindsAreInterned(t *testing.T) {
	a := StructOf(Field{Name: "a", Type: Int, Nullable: true})
	b := StructOf(Field{Name: "a", Type: Int, Nullable: true})
	if a != b {
		t.Fatalf("equal structs got kinds %d and %d", a, b)
	}
	if c := StructOf(Field{Name: "a", Type: Int}); c == a {
		t.Fatal("nullability is part of the type")
	}
	if ArrayOf(Int, true) == ArrayOf(Int, false) || ArrayOf(Int, true) == ArrayOf(Long, true) {
		t.Fatal("array kinds collide")
	}
	if MapOf(String, Int, true) == MapOf(String, Long, true) {
		t.Fatal("map kinds collide")
	}
	// Concurrent interning returns one kind.
	var wg sync.WaitGroup
	got := make([]Kind, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = ArrayOf(StructOf(Field{Name: "concurrent", Type: Date}), false)
		}()
	}
	wg.Wait()
	for _, k := range got {
		if k != got[0] {
			t.Fatal("concurrent interning gave different kinds")
		}
	}
}

func TestKindStrings(t *testing.T) {
	for _, tc := range []struct {
		k             Kind
		simple, sql   string
		class         Kind
		nested, valid bool
	}{
		{Long, "bigint", "BIGINT", Long, false, true},
		{window, "struct<start:timestamp,end:timestamp>", "STRUCT<start: TIMESTAMP, end: TIMESTAMP>", Struct, true, true},
		{order, "struct<id:bigint,items:array<string>>", "STRUCT<id: BIGINT NOT NULL, items: ARRAY<STRING>>", Struct, true, true},
		{tags, "map<string,bigint>", "MAP<STRING, BIGINT>", Map, true, true},
		{deepArr, "array<array<int>>", "ARRAY<ARRAY<INT>>", Array, true, true},
		{Headers, "array<struct<key:string,value:binary>>", "ARRAY<STRUCT<key: STRING, value: BINARY>>", Array, true, true},
		{StructOf(Field{Name: "a b", Type: Int, Nullable: true}), "struct<a b:int>", "STRUCT<`a b`: INT>", Struct, true, true},
		{StructOf(), "struct<>", "STRUCT<>", Struct, true, true},
		{Struct, "struct", "STRUCT", Struct, true, false},
	} {
		if got := tc.k.String(); got != tc.simple {
			t.Errorf("String = %q, want %q", got, tc.simple)
		}
		if got := tc.k.SQL(); got != tc.sql {
			t.Errorf("SQL = %q, want %q", got, tc.sql)
		}
		if tc.k.Class() != tc.class || tc.k.IsNested() != tc.nested || tc.k.Valid() != tc.valid {
			t.Errorf("%s: class %s nested %v valid %v", tc.k, tc.k.Class(), tc.k.IsNested(), tc.k.Valid())
		}
	}
	if window.FieldIndex("END") != 1 || window.FieldIndex("x") != -1 {
		t.Error("FieldIndex")
	}
	if deepArr.Elem() != ArrayOf(Int, false) || !deepArr.ContainsNull() || deepArr.Elem().ContainsNull() {
		t.Error("array accessors")
	}
	if tags.KeyType() != String || tags.ValueType() != Long || Long.Elem() != Null {
		t.Error("map accessors")
	}
}

func TestSchemaJSON(t *testing.T) {
	s := Schema{Fields: []Field{
		{Name: "id", Type: Long},
		{Name: "w", Type: window, Nullable: true},
		{Name: "xs", Type: ArrayOf(Double, false), Nullable: true},
		{Name: "m", Type: tags, Nullable: true},
	}}
	// Spark's StructType.json for the same schema.
	want := `{"type":"struct","fields":[` +
		`{"name":"id","type":"long","nullable":false,"metadata":{}},` +
		`{"name":"w","type":{"type":"struct","fields":[{"name":"start","type":"timestamp","nullable":true,"metadata":{}},{"name":"end","type":"timestamp","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},` +
		`{"name":"xs","type":{"type":"array","elementType":"double","containsNull":false},"nullable":true,"metadata":{}},` +
		`{"name":"m","type":{"type":"map","keyType":"string","valueType":"long","valueContainsNull":true},"nullable":true,"metadata":{}}]}`
	if got := s.JSON(); got != want {
		t.Fatalf("JSON\n got %s\nwant %s", got, want)
	}
	back, err := ParseSchemaJSON(want)
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("ParseSchemaJSON = %v, %v", back, err)
	}
	if s.String() != "struct<id:bigint,w:struct<start:timestamp,end:timestamp>,xs:array<double>,m:map<string,bigint>>" {
		t.Errorf("String %s", s)
	}
	n := s.AsNullable()
	if n.Fields[0].Nullable != true || n.Fields[2].Type != ArrayOf(Double, true) || !SameType(n.Fields[2].Type, s.Fields[2].Type) {
		t.Errorf("AsNullable %s", n.JSON())
	}
	if SameType(window, order) || !SameType(order, StructOf(Field{Name: "id", Type: Long, Nullable: true}, Field{Name: "items", Type: ArrayOf(String, false)})) {
		t.Error("SameType")
	}
	for _, bad := range []string{`"decimal(10,2)"`, `{"type":"udt"}`, `{"type":"array","elementType":"nope"}`, `[`} {
		if _, err := ParseTypeJSON([]byte(bad)); err == nil {
			t.Errorf("ParseTypeJSON(%s) accepted", bad)
		}
	}
}

// buildOrders makes a column of order structs: {id, items}.
func buildOrders(t *testing.T, vals ...any) *Column {
	t.Helper()
	c := NewColumn(order, len(vals))
	for _, v := range vals {
		if err := c.AppendValue(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func sv(vals ...any) StructValue { return StructValue{Names: []string{"id", "items"}, Values: vals} }

func TestNestedColumns(t *testing.T) {
	vals := []any{
		sv(int64(1), []any{"a", nil, "c"}),
		nil,
		sv(int64(2), nil),
		sv(int64(3), []any{}),
		sv(int64(4), []any{"d"}),
	}
	c := buildOrders(t, vals...)
	for i, want := range vals {
		if got := c.Value(i); !reflect.DeepEqual(got, want) {
			t.Errorf("Value(%d) = %#v, want %#v", i, got, want)
		}
	}
	// The null struct's children hold nulls.
	if !c.Children[0].IsNull(1) || !c.Children[1].IsNull(1) {
		t.Error("a null struct's children are not null")
	}
	// Slice shares storage; its array offsets do not start at 0.
	s := c.Slice(2, 5)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if !reflect.DeepEqual(s.Value(i), vals[i+2]) {
			t.Errorf("slice %d = %#v", i, s.Value(i))
		}
	}
	items := s.Children[1].Slice(2, 3)
	if items.Offsets[0] != 3 || !reflect.DeepEqual(items.Value(0), []any{"d"}) {
		t.Errorf("sliced array offsets %v", items.Offsets)
	}
	// Filter copies the kept cells deeply.
	f := c.Filter([]bool{true, true, false, false, true}, 3)
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []any{vals[0], vals[1], vals[4]} {
		if !reflect.DeepEqual(f.Value(i), want) {
			t.Errorf("filtered %d = %#v", i, f.Value(i))
		}
	}
	// AppendRange of a slice rebases offsets.
	cat := NewColumn(order, 0)
	cat.AppendRange(s, 0, s.Len)
	cat.AppendRange(c, 0, 2)
	if err := cat.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []any{vals[2], vals[3], vals[4], vals[0], vals[1]} {
		if !reflect.DeepEqual(cat.Value(i), want) {
			t.Errorf("concatenated %d = %#v", i, cat.Value(i))
		}
	}
	if c.ByteSize() <= 0 {
		t.Error("ByteSize")
	}
}

func TestMapsAndDeepArrays(t *testing.T) {
	m := NewColumn(tags, 2)
	for _, v := range []any{MapValue{Keys: []any{"a", "b"}, Values: []any{int64(1), nil}}, nil} {
		if err := m.AppendValue(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := m.Value(0); !reflect.DeepEqual(got, MapValue{Keys: []any{"a", "b"}, Values: []any{int64(1), nil}}) {
		t.Errorf("map value %#v", got)
	}
	if err := m.AppendValue(MapValue{Keys: []any{nil}, Values: []any{int64(1)}}); err == nil {
		t.Error("a null map key was accepted")
	}
	d := NewColumn(deepArr, 1)
	if err := d.AppendValue([]any{[]any{int64(1), int64(2)}, nil, []any{}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := d.Value(0); !reflect.DeepEqual(got, []any{[]any{int64(1), int64(2)}, nil, []any{}}) {
		t.Errorf("deep array %#v", got)
	}
}

func TestHeaders(t *testing.T) {
	c := NewColumn(Headers, 3)
	c.AppendHeaders([]Header{{Key: "k", Value: []byte("v")}, {Key: "", Value: nil}})
	c.AppendHeaders(nil)
	c.AppendHeaders([]Header{})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []Header{{Key: "k", Value: []byte("v")}, {Key: ""}}
	if got := c.HeadersAt(0); !reflect.DeepEqual(got, want) {
		t.Errorf("HeadersAt = %#v", got)
	}
	if got := HeadersOf(c.Value(0)); !reflect.DeepEqual(got, want) {
		t.Errorf("HeadersOf = %#v", got)
	}
	if c.HeadersAt(1) != nil || c.HeadersAt(2) == nil || len(c.HeadersAt(2)) != 0 {
		t.Error("null and empty headers")
	}
	// An empty key is a string, not a null.
	if c.Children[0].Children[0].IsNull(1) {
		t.Error("empty header key stored as null")
	}
}

func TestValidateCatchesDamage(t *testing.T) {
	for name, damage := range map[string]func(c *Column){
		"child length":       func(c *Column) { c.Children[0].AppendInt(9) },
		"offsets decrease":   func(c *Column) { c.Children[1].Offsets[1] = 2; c.Children[1].Offsets[2] = 1 },
		"offsets past child": func(c *Column) { c.Children[1].Offsets[2] = 99 },
		"wrong child kind":   func(c *Column) { c.Children[0] = NewColumn(Int, 0) },
		"bare class":         func(c *Column) { c.Type = Struct },
	} {
		c := buildOrders(t, sv(int64(1), []any{"a"}), sv(int64(2), []any{"b", "c"}))
		damage(c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		} else if strings.Contains(err.Error(), "%!") {
			t.Errorf("%s: bad message %v", name, err)
		}
	}
}
