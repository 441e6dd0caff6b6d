package sparkjson

import (
	"testing"
)

// storeJSON is the document of Spark's (and Hive's) get_json_object tests.
const storeJSON = `
{"store":{"fruit":[{"weight":8,"type":"apple"},{"weight":9,"type":"pear"}],
"basket":[[1,2,{"b":"y","a":"x"}],[3,4],[5,6]],"book":[{"author":"Nigel Rees",
"title":"Sayings of the Century","category":"reference","price":8.95},
{"author":"Herman Melville","title":"Moby Dick","category":"fiction","price":8.99,
"isbn":"0-553-21311-3"},{"author":"J. R. R. Tolkien","title":"The Lord of the Rings",
"category":"fiction","reader":[{"age":25,"name":"bob"},{"age":26,"name":"jack"}],
"price":22.99,"isbn":"0-395-19395-8"}],"bicycle":{"price":19.95,"color":"red"}},
"email":"amy@only_for_json_udf_test.net","owner":"amy","zip code":"94025",
"fb:testid":"1234"}
`

func TestGetJSONObject(t *testing.T) {
	book0 := `{"author":"Nigel Rees","title":"Sayings of the Century","category":"reference","price":8.95}`
	books := `[` + book0 + `,{"author":"Herman Melville","title":"Moby Dick","category":"fiction","price":8.99,"isbn":"0-553-21311-3"},` +
		`{"author":"J. R. R. Tolkien","title":"The Lord of the Rings","category":"fiction","reader":[{"age":25,"name":"bob"},{"age":26,"name":"jack"}],"price":22.99,"isbn":"0-395-19395-8"}]`
	null := "\x00null"
	for _, tc := range []struct{ doc, path, want string }{
		{`{"a":"b"}`, "$.a", "b"}, // the function's documented example
		{storeJSON, "$.store.bicycle", `{"price":19.95,"color":"red"}`},
		{storeJSON, "$['store'].bicycle", `{"price":19.95,"color":"red"}`},
		{storeJSON, "$.store['bicycle']", `{"price":19.95,"color":"red"}`},
		{storeJSON, "$['store']['bicycle']", `{"price":19.95,"color":"red"}`},
		{storeJSON, "$.store.book", books},
		{storeJSON, "$.store.book[0]", book0},
		{storeJSON, "$.store.book[*]", books},
		{storeJSON, "$.store.book[0].category", "reference"},
		{storeJSON, "$.store.book[*].category", `["reference","fiction","fiction"]`},
		{storeJSON, "$.store.book[*].isbn", `["0-553-21311-3","0-395-19395-8"]`},
		{storeJSON, "$.store.book[*].reader", `[{"age":25,"name":"bob"},{"age":26,"name":"jack"}]`},
		{storeJSON, "$.store.basket[0][1]", "2"},
		{storeJSON, "$.store.basket[*]", `[[1,2,{"b":"y","a":"x"}],[3,4],[5,6]]`},
		{storeJSON, "$.store.basket[*][0]", "[1,3,5]"},
		{storeJSON, "$.store.basket[0][*]", `[1,2,{"b":"y","a":"x"}]`},
		{storeJSON, "$.store.basket[*][*]", `[1,2,{"b":"y","a":"x"},3,4,5,6]`},
		{storeJSON, "$.store.basket[0][2].b", "y"},
		{storeJSON, "$.store.basket[0][*].b", `["y"]`},
		{storeJSON, "$.zip code", "94025"},
		{storeJSON, "$.fb:testid", "1234"},
		{`{"key with spaces": "it works"}`, "$['key with spaces']", "it works"},
		{storeJSON, "$.non_exist_key", null},
		{storeJSON, "$.store.book[10]", null},
		{storeJSON, "$.store.book[0].non_exist_key", null},
		{storeJSON, "$.store.basket[*].non_exist_key", null},
		{`{"a": null}`, "$.a", null},
		{`{"a": 1.50, "b": 1e2, "c": -0}`, "$.a", "1.5"}, // numbers as Jackson copies them
		{`{"a": 1.50, "b": 1e2, "c": -0}`, "$.b", "100.0"},
		{`{"a": 1.50, "b": 1e2, "c": -0}`, "$.c", "0"},
		{`{'a': 'single'}`, "$.a", "single"},
		{"{\"a\": \"tab\there\"}", "$.a", "tab\there"},
		{`{"a": {"b": "x\"y"}}`, "$.a", `{"b":"x\"y"}`},
		{`{"a": [1, 2`, "$.a", null}, // invalid JSON
		{`{"a": NaN}`, "$.a", null},
		{`{"a": 1}`, "a", null},    // no $
		{`{"a": 1}`, "$.a[", null}, // bad path
		{`[{"a": 1}, {"a": 2}]`, "$[1].a", "2"},
		{`"top"`, "$", "top"},
		{`{"a": 1, "a": 2}`, "$.a", "1"}, // the first match
	} {
		p, ok := ParsePath(tc.path)
		var got []byte
		if ok {
			got, ok = p.Eval(nil, []byte(tc.doc))
		}
		g := string(got)
		if !ok {
			g = null
		}
		if g != tc.want {
			t.Errorf("get_json_object(%.30q, %q) = %q, want %q", tc.doc, tc.path, g, tc.want)
		}
	}
}

// FuzzGetJSONObject: any document and path evaluate without panicking,
// and a result on valid input is non-empty or an empty string value.
func FuzzGetJSONObject(f *testing.F) {
	for _, s := range []string{storeJSON, `{"a":[1,[2,3]]}`, `[[[]]]`, `{"a":"\u0041"}`} {
		for _, p := range []string{"$", "$.a", "$.store.book[*].category", "$[*][*]", "$.a[1][*]", "$['a']", "$.*"} {
			f.Add(s, p)
		}
	}
	f.Fuzz(func(t *testing.T, doc, path string) {
		p, ok := ParsePath(path)
		if !ok {
			return
		}
		p.Eval(nil, []byte(doc))
	})
}
