package sparkjson

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
)

// FuzzParser checks the parser on arbitrary input: it never panics, always
// appends exactly one valid cell, never reports valid JSON objects as
// malformed when every field is a string, and decodes strings as
// encoding/json does.
func FuzzParser(f *testing.F) {
	for _, s := range []string{
		`{"a": "x", "b": ["y", 1], "m": {"k": "v"}}`, `{"a": "\u00e9\ud83d\ude00\n"}`, `[1,2]`, `{"a": 1e5, "b": [null]}`,
		`{"a": {"x": [1, {"y": "z"}]}}`, `{'a': 'q'}`, `{"a": NaN}`, `{"a": "x",}`, `{"a"`, ``, `null`, `{"a": "\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	k := batch.StructOf(
		batch.Field{Name: "a", Type: batch.String, Nullable: true},
		batch.Field{Name: "b", Type: batch.ArrayOf(batch.String, true), Nullable: true},
		batch.Field{Name: "m", Type: batch.MapOf(batch.String, batch.String, true), Nullable: true},
		batch.Field{Name: "n", Type: batch.Long, Nullable: true},
		batch.Field{Name: "o", Type: batch.StructOf(batch.Field{Name: "x", Type: batch.Double, Nullable: true}), Nullable: true},
	)
	p, err := NewParser(k, Options{CorruptField: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		col := batch.NewColumn(k, 2)
		d := p.NewDecoder()
		st, _ := d.Append(col, in)
		st2, _ := d.Append(col, in) // the decoder's scratch space is reusable
		if col.Len != 2 || st != st2 {
			t.Fatalf("%q: %d cells, statuses %s %s", in, col.Len, st, st2)
		}
		if err := col.Validate(); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(in, &m) != nil || m == nil || !utf8.Valid(in) {
			return
		}
		if st == Malformed {
			t.Fatalf("valid JSON object %q reported malformed", in)
		}
		raw, ok := m["a"]
		if !ok || bytes.HasPrefix(bytes.TrimSpace(raw), []byte("null")) {
			return
		}
		var want string
		if json.Unmarshal(raw, &want) != nil {
			return // not a string: read as its text
		}
		// encoding/json keeps the last of repeated names too.
		got, _ := col.Children[0].Value(0).(string)
		if got != want && !bytes.Contains(in, []byte(`\ud`)) && !bytes.Contains(in, []byte(`\uD`)) {
			t.Fatalf("%q: a = %q, encoding/json %q", in, got, want)
		}
	})
}
