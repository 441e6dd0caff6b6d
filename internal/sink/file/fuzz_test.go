package file

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
)

func FuzzEscapePathName(f *testing.F) {
	for _, s := range []string{"", "a", "b:c", "100%", "x=y/z", "é ü", "\x00\x7f{[]}^"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := EscapePathName(s)
		if got := UnescapePathName(e); got != s {
			t.Fatalf("Unescape(Escape(%q)) = %q (escaped %q)", s, got, e)
		}
		for i := 0; i < len(e); i++ {
			if e[i] != '%' && needsEscape[e[i]] {
				t.Fatalf("Escape(%q) = %q keeps %q", s, e, e[i])
			}
		}
	})
}

func FuzzReadLogFile(f *testing.F) {
	f.Add([]byte("v1\n" + `{"path":"file:///a","size":1,"isDir":false,"modificationTime":2,"blockReplication":1,"blockSize":3,"action":"add"}`))
	f.Add([]byte("v1\n"))
	f.Add([]byte("v2\n{}"))
	f.Add([]byte("v1\n{\"path\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "0")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		entries, err := readLogFile(p)
		if err != nil {
			return
		}
		// What parses must survive a write and a re-read unchanged.
		if _, err := writeLogFile(dir, "1", entries); err != nil {
			t.Fatal(err)
		}
		again, err := readLogFile(filepath.Join(dir, "1"))
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		if len(entries) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(entries, again) {
			t.Fatalf("round trip changed entries:\n%v\n%v", entries, again)
		}
	})
}

func FuzzJSONRow(f *testing.F) {
	f.Add("plain", 1.5)
	f.Add("quote\" back\\ nl\n ctl\x01 bad\xff", math.NaN())
	f.Fuzz(func(t *testing.T, s string, d float64) {
		sc, dc := batch.NewColumn(batch.String, 1), batch.NewColumn(batch.Double, 1)
		sc.AppendBytes([]byte(s))
		dc.AppendFloat(d)
		line := appendJSONRow(nil, [][]byte{[]byte(`"s"`), []byte(`"d"`)}, []*batch.Column{sc, dc}, 0)
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%q: invalid JSON %q: %v", s, line, err)
		}
		if utf8.ValidString(s) && m["s"] != s {
			t.Fatalf("string %q came back as %q", s, m["s"])
		}
	})
}
