package file

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/source"
)

// readOne writes content to a fresh directory and reads it as one batch.
func readOne(t *testing.T, format, name, content string, opts map[string]string) (*Source, [][]any, error) {
	t.Helper()
	in := t.TempDir()
	put(t, in, name, content, 0)
	all := map[string]string{"path": in}
	for k, v := range opts {
		all[k] = v
	}
	s, err := New(format, all, localStore(t, t.TempDir()), quiet)
	if err != nil {
		return nil, nil, err
	}
	end, _, err := s.Latest(context.Background(), initial, source.ReadLimit{})
	if err != nil {
		return s, nil, err
	}
	frs, err := tryRead(s, initial, end)
	var rows [][]any
	for _, fr := range frs {
		rows = append(rows, fr.rows...)
	}
	return s, rows, err
}

func TestMalformedModes(t *testing.T) {
	jsonIn := `{"a":1,"b":"x"}
{"a":"two","b":"y"}
not json
{"a":3}
`
	csvIn := "1,x\nz,y\n3\n4,w,extra\n\"5,v\n6,u\n"
	tests := []struct {
		name, format, input string
		opts                map[string]string
		want                string // fmt of the rows
		dropped             int64
		wantErr             string
	}{
		{name: "json permissive with corrupt column", format: "json", input: jsonIn,
			opts: map[string]string{"schema": "a INT, b STRING, _corrupt_record STRING"},
			want: `[[1 x <nil>] [<nil> y {"a":"two","b":"y"}] [<nil> <nil> not json] [3 <nil> <nil>]]`},
		{name: "json permissive without corrupt column", format: "json", input: jsonIn,
			opts: map[string]string{"schema": "a INT, b STRING"},
			want: `[[1 x] [<nil> y] [<nil> <nil>] [3 <nil>]]`},
		{name: "json custom corrupt column name", format: "json", input: jsonIn,
			opts: map[string]string{"schema": "a INT, bad STRING", "columnNameOfCorruptRecord": "bad"},
			want: `[[1 <nil>] [<nil> {"a":"two","b":"y"}] [<nil> not json] [3 <nil>]]`},
		{name: "json dropmalformed", format: "json", input: jsonIn,
			opts:    map[string]string{"schema": "a INT, b STRING", "mode": "dropMalformed"},
			want:    `[[1 x] [3 <nil>]]`,
			dropped: 2},
		{name: "json failfast", format: "json", input: jsonIn,
			opts:    map[string]string{"schema": "a INT, b STRING", "mode": "FAILFAST"},
			wantErr: `data.in line 2: field "a": cannot convert "two" to int`},
		{name: "csv permissive", format: "csv", input: csvIn,
			opts: map[string]string{"schema": "n INT, s STRING, _corrupt_record STRING"},
			want: `[[1 x <nil>] [<nil> y z,y] [3 <nil> 3] [4 w 4,w,extra] [<nil> <nil> "5,v] [6 u <nil>]]`},
		{name: "csv dropmalformed", format: "csv", input: csvIn,
			opts:    map[string]string{"schema": "n INT, s STRING", "mode": "DROPMALFORMED"},
			want:    `[[1 x] [6 u]]`,
			dropped: 4},
		{name: "csv failfast names file and line", format: "csv", input: csvIn,
			opts:    map[string]string{"schema": "n INT, s STRING", "mode": "failfast"},
			wantErr: `data.in line 2: field "n": cannot convert "z" to int`},
		{name: "csv failfast on field count", format: "csv", input: "1,a\n2\n",
			opts:    map[string]string{"schema": "n INT, s STRING", "mode": "failfast"},
			wantErr: "data.in line 2: expected 2 fields, found 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, rows, err := readOne(t, tc.format, "data.in", tc.input, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(rows); got != tc.want {
				t.Errorf("rows\n%s\nwant\n%s", got, tc.want)
			}
			if _, dropped := s.MalformedRecords(); dropped != tc.dropped {
				t.Errorf("dropped %d, want %d", dropped, tc.dropped)
			}
			m := s.Metrics(Offset{0}, Offset{0})
			if tc.dropped > 0 && m["numDroppedMalformedRecords"] != fmt.Sprint(tc.dropped) {
				t.Errorf("metrics %v", m)
			}
		})
	}
}

func TestCSVOptions(t *testing.T) {
	tests := []struct {
		name, input string
		opts        map[string]string
		want        string
	}{
		{"header skipped", "n,s\n1,a\n", map[string]string{"header": "true"}, "[[1 a]]"},
		{"tab separator", "1\ta\n", map[string]string{"sep": `\t`}, "[[1 a]]"},
		{"multi-char separator", "1||a\n", map[string]string{"delimiter": "||"}, "[[1 a]]"},
		{"quotes keep separators", `1,"a,b"` + "\n", nil, "[[1 a,b]]"},
		{"doubled and escaped quotes", `1,"say ""hi"" \"there\""` + "\n", nil, `[[1 say "hi" "there"]]`},
		{"empty unquoted is null, quoted is empty", "1,\n2,\"\"\n", nil, "[[1 <nil>] [2 ]]"},
		{"nullValue", "NA,NA\n", map[string]string{"nullValue": "NA"}, "[[<nil> <nil>]]"},
		{"comment lines", "#c\n1,a\n", map[string]string{"comment": "#"}, "[[1 a]]"},
		{"blank lines skipped", "1,a\n\n  \n2,b\n", nil, "[[1 a] [2 b]]"},
		{"no quoting", `1,"a` + "\n", map[string]string{"quote": ""}, `[[1 "a]]`},
		{"crlf", "1,a\r\n2,b\r\n", nil, "[[1 a] [2 b]]"},
		{"custom lineSep", "1,a;2,b", map[string]string{"lineSep": ";"}, "[[1 a] [2 b]]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]string{"schema": "n INT, s STRING"}
			for k, v := range tc.opts {
				opts[k] = v
			}
			_, rows, err := readOne(t, "csv", "x.csv", tc.input, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(rows); got != tc.want {
				t.Errorf("rows %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTypedValues(t *testing.T) {
	ts := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMicro()
	}
	day := func(s string) int64 {
		tm, _ := time.Parse("2006-01-02", s)
		return tm.Unix() / 86400
	}
	schema := "i INT, l BIGINT, d DOUBLE, b BOOLEAN, t TIMESTAMP, dt DATE, s STRING, bin BINARY"
	tests := []struct {
		name, format, input string
		opts                map[string]string
		want                []any
	}{
		{"json", "json", `{"i":-5,"l":9007199254740993,"d":1.5e3,"b":true,"t":"2024-05-01T10:20:30.123456Z","dt":"2024-02-29","s":"h\u00e9\n","bin":"AAEC"}`, nil,
			[]any{int64(-5), int64(9007199254740993), 1500.0, true, ts("2024-05-01T10:20:30.123456Z"), day("2024-02-29"), "hé\n", []byte{0, 1, 2}}},
		{"json non-string into string, epoch seconds", "json", `{"s":{"x":[1,2]},"t":1700000000,"d":"NaN"}`, nil,
			[]any{nil, nil, math.NaN(), nil, int64(1700000000) * 1_000_000, nil, `{"x":[1,2]}`, nil}},
		{"json array of objects", "json", `[{"i":1},{"i":2}]`, nil, nil},
		{"csv", "csv", "-5,9007199254740993,1.5e3,TRUE,2024-05-01 10:20:30.5+02:00,2024-02-29, x ,raw", nil,
			[]any{int64(-5), int64(9007199254740993), 1500.0, true, ts("2024-05-01T08:20:30.5Z"), day("2024-02-29"), " x ", []byte("raw")}},
		{"csv timestamp format and zone", "csv", ",,-Inf,false,01/05/2024 10:20,20240229,,", map[string]string{
			"timestampFormat": "dd/MM/yyyy HH:mm", "dateFormat": "yyyyMMdd", "timeZone": "Europe/Paris"},
			[]any{nil, nil, math.Inf(-1), false, ts("2024-05-01T08:20:00Z"), day("2024-02-29"), nil, nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]string{"schema": schema, "mode": "FAILFAST"}
			for k, v := range tc.opts {
				opts[k] = v
			}
			_, rows, err := readOne(t, tc.format, "x", tc.input, opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(rows) != 2 || rows[0][0] != int64(1) || rows[1][0] != int64(2) {
					t.Errorf("rows %v", rows)
				}
				return
			}
			if len(rows) != 1 {
				t.Fatalf("rows %v", rows)
			}
			for i, w := range tc.want {
				g := rows[0][i]
				if wf, ok := w.(float64); ok && math.IsNaN(wf) {
					if gf, ok := g.(float64); !ok || !math.IsNaN(gf) {
						t.Errorf("column %d = %v, want NaN", i, g)
					}
					continue
				}
				if fmt.Sprintf("%#v", g) != fmt.Sprintf("%#v", w) {
					t.Errorf("column %d = %#v, want %#v", i, g, w)
				}
			}
		})
	}
}

func TestTypeErrorsAreMalformed(t *testing.T) {
	for _, tc := range []struct{ format, schema, input string }{
		{"json", "i INT", `{"i":2147483648}`},
		{"json", "i INT", `{"i":1.5}`},
		{"json", "b BOOLEAN", `{"b":"true"}`},
		{"json", "t TIMESTAMP", `{"t":"yesterday"}`},
		{"json", "dt DATE", `{"dt":"2023-02-29"}`},
		{"json", "bin BINARY", `{"bin":"!!"}`},
		{"json", "i INT", `"just a string"`},
		{"json", "i INT", `{"i":1} trailing`},
		{"json", "i INT", `[{"i":1}, 2]`},
		{"csv", "d DOUBLE", "abc"},
		{"csv", "b BOOLEAN", "yes"},
		{"csv", "t TIMESTAMP", "2024-13-01"},
	} {
		_, _, err := readOne(t, tc.format, "f", tc.input+"\n", map[string]string{"schema": tc.schema, "mode": "FAILFAST"})
		if err == nil || !strings.Contains(err.Error(), "malformed record") {
			t.Errorf("%s %q as %s: err %v, want a malformed-record error", tc.format, tc.input, tc.schema, err)
		}
	}
}

func TestTextOptions(t *testing.T) {
	_, rows, err := readOne(t, "text", "w", "a\nb\n", map[string]string{"wholetext": "true"})
	if err != nil || fmt.Sprint(rows) != "[[a\nb\n]]" {
		t.Errorf("wholetext rows %q, %v", rows, err)
	}
	_, rows, err = readOne(t, "text", "w", "a|b|", map[string]string{"lineSep": "|", "schema": "line STRING"})
	if err != nil || fmt.Sprint(rows) != "[[a] [b]]" {
		t.Errorf("lineSep rows %q, %v", rows, err)
	}
	s, _, _ := readOne(t, "text", "w", "", map[string]string{"schema": "line STRING"})
	if s.Schema().String() != "struct<line:string>" {
		t.Errorf("schema %s", s.Schema())
	}
}

func TestInferSchema(t *testing.T) {
	tests := []struct {
		name, format string
		files        []string
		opts         map[string]string
		want         string
	}{
		{"json", "json", []string{`{"b":1,"a":"x"}` + "\n" + `{"b":2.5,"c":true,"d":null,"e":{"n":1}}`, `{"a":"y","b":3}`}, nil,
			"struct<a:string,b:double,c:boolean,d:string,e:string>"},
		{"json malformed adds corrupt column", "json", []string{`{"a":1}` + "\nbroken\n"}, nil,
			"struct<a:bigint,_corrupt_record:string>"},
		{"csv header", "csv", []string{"id,name,when,day,ok,big\n1,x,2024-01-01 10:00:00,2024-01-01,true,1\n2,,2024-01-02T00:00:00Z,2024-01-02,false,9999999999\n"},
			map[string]string{"header": "true"}, "struct<id:int,name:string,when:timestamp,day:date,ok:boolean,big:bigint>"},
		{"csv no header", "csv", []string{"1,1.5,a\n2,3,b\n"}, nil, "struct<_c0:int,_c1:double,_c2:string>"},
		{"csv conflicting types widen to string", "csv", []string{"1\n", "x\n"}, nil, "struct<_c0:string>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := t.TempDir()
			for i, c := range tc.files {
				put(t, in, fmt.Sprintf("f%d", i), c, i)
			}
			opts := map[string]string{"path": in, "inferSchema": "true"}
			for k, v := range tc.opts {
				opts[k] = v
			}
			sch, err := SchemaOf(tc.format, opts)
			if err != nil {
				t.Fatal(err)
			}
			if sch.String() != tc.want {
				t.Errorf("schema %s, want %s", sch, tc.want)
			}
			s := newSource(t, tc.format, opts, t.TempDir())
			if s.Schema().String() != tc.want {
				t.Errorf("source schema %s", s.Schema())
			}
			// The inferred schema reads the data.
			_, frs := step(t, s, initial, source.ReadLimit{})
			if len(frs) != len(tc.files) {
				t.Errorf("read %d files", len(frs))
			}
		})
	}
	if _, err := SchemaOf("json", map[string]string{"path": t.TempDir(), "inferSchema": "true"}); err == nil || !strings.Contains(err.Error(), "no input files") {
		t.Errorf("inference without files: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		format  string
		opts    map[string]string
		wantErr string
	}{
		{"parquet", map[string]string{"path": dir}, `unknown format "parquet"`},
		{"json", map[string]string{}, `option "path": required`},
		{"json", map[string]string{"path": dir}, `option "schema": required for the json format`},
		{"csv", map[string]string{"path": dir, "schema": "a DECIMAL(3,1)"}, "DECIMAL is not supported"},
		{"csv", map[string]string{"path": dir, "schema": "a INT", "maxFilesPerTrigger": "1", "maxBytesPerTrigger": "5"}, "cannot be set together with maxFilesPerTrigger"},
		{"csv", map[string]string{"path": dir, "schema": "a INT", "maxFilesPerTriger": "1"}, `did you mean "maxFilesPerTrigger"?`},
		{"text", map[string]string{"path": dir, "header": "true"}, `unknown text file source option "header"`},
		{"json", map[string]string{"path": dir, "schema": "a INT", "mode": "lenient"}, `allowed: PERMISSIVE, DROPMALFORMED, FAILFAST`},
		{"json", map[string]string{"path": dir, "schema": "a INT", "modifiedAfter": "2020-01-01"}, "not supported by streaming file sources"},
		{"json", map[string]string{"path": dir, "schema": "a INT", "multiLine": "true"}, `option "multiLine"`},
		{"json", map[string]string{"path": dir, "schema": "a INT, _corrupt_record INT"}, "must be a nullable STRING"},
		{"csv", map[string]string{"path": dir, "schema": "a INT", "quote": "ab"}, "single ASCII character"},
		{"csv", map[string]string{"path": dir, "schema": "a INT", "timestampFormat": "yyyy-MM-dd[ HH]"}, "optional sections"},
		{"csv", map[string]string{"path": dir, "schema": "a INT", "timestampFormat": "yyyy-ww"}, `pattern letter "ww"`},
		{"csv", map[string]string{"path": dir, "schema": "a INT", "encoding": "latin1"}, "allowed: UTF-8"},
		{"text", map[string]string{"path": dir, "schema": "a INT"}, "one STRING column"},
		{"text", map[string]string{"path": filepath.Join(dir, "{a,b")}, "unmatched '{'"},
	}
	for _, tc := range tests {
		if _, err := ParseConfig(tc.format, tc.opts); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseConfig(%s, %v) = %v, want %q", tc.format, tc.opts, err, tc.wantErr)
		}
	}
	c, err := ParseConfig("CSV", map[string]string{"PATH": "file://" + dir, "Schema": "a INT NOT NULL", "maxfileage": "2h"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != dir || c.MaxFileAge != 2*time.Hour || !c.Schema.Fields[0].Nullable || c.Sep != "," || c.Quote != '"' || c.Escape != '\\' {
		t.Errorf("config %+v", c)
	}
	if c2, _ := ParseConfig("json", map[string]string{"path": dir, "schema": "a INT", "latestFirst": "true", "maxFilesPerTrigger": "3"}); c2.MaxFileAge != 0 {
		t.Errorf("maxFileAge not ignored with latestFirst and a limit: %v", c2.MaxFileAge)
	}
	if c.Schema.Fields[0].Type != batch.Int {
		t.Errorf("schema type %v, want int", c.Schema.Fields[0].Type)
	}
}

// TestNestedSchemaRefused: the file source reads flat columns; a nested
// column in the schema option is refused with the from_json remedy.
func TestNestedSchemaRefused(t *testing.T) {
	for _, format := range []string{"json", "csv"} {
		_, err := ParseConfig(format, map[string]string{"path": "/in", "schema": "id INT, o STRUCT<a: INT>"})
		if err == nil || !strings.Contains(err.Error(), `column "o" is STRUCT<a: INT>`) || !strings.Contains(err.Error(), "from_json(o, 'STRUCT<a: INT>')") {
			t.Errorf("%s: %v", format, err)
		}
	}
}
