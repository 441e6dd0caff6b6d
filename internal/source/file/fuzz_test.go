package file

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

// FuzzSplitCSV checks that quoting any list of fields and splitting the
// line gives the fields back, and that a line without quotes splits like
// strings.Split.
func FuzzSplitCSV(f *testing.F) {
	for _, s := range []string{"a\x1fb", "", "x,y\x1f\"q\"", ",,,", "\x1f\x1f", "a;b"} {
		f.Add(s, ",")
		f.Add(s, ";;")
	}
	f.Fuzz(func(t *testing.T, in, sep string) {
		if sep == "" || strings.ContainsAny(sep, "\"\\") {
			return
		}
		// Round trip of quoted fields.
		want := strings.Split(in, "\x1f")
		var line []string
		for _, w := range want {
			line = append(line, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
		}
		got, err := splitCSV([]byte(strings.Join(line, sep)), sep, '"', 0, nil)
		if err != nil {
			t.Fatalf("split of quoted %q: %v", want, err)
		}
		if len(got) != len(want) {
			t.Fatalf("split %q into %d fields, want %d", want, len(got), len(want))
		}
		for i := range want {
			if string(got[i].b) != want[i] || !got[i].quoted {
				t.Fatalf("field %d = %q, want %q", i, got[i].b, want[i])
			}
		}
		// Unquoted lines split like strings.Split.
		if !strings.Contains(in, `"`) {
			got, err := splitCSV([]byte(in), sep, '"', '\\', nil)
			parts := strings.Split(in, sep)
			if err != nil || len(got) != len(parts) {
				t.Fatalf("split %q by %q: %d fields, %v; want %d", in, sep, len(got), err, len(parts))
			}
			for i := range parts {
				if string(got[i].b) != parts[i] {
					t.Fatalf("field %d = %q, want %q", i, got[i].b, parts[i])
				}
			}
		}
		// Anything else must not panic.
		splitCSV([]byte(in), sep, '"', '\\', nil)
	})
}

// FuzzParseTimestamp checks that accepted timestamps survive a format and
// re-parse.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2024-05-01", "2024-05-01 10:20:30.123456", "2024-5-1T1:2:3Z", "2024-05-01T10:20+05:30",
		"2024-05-01 10:20:30 Europe/Paris", "2024-02-30", "0001-01-01 00:00:00 UTC-08", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := parseTimestamp(s, "", time.UTC)
		if !ok {
			return
		}
		if y := time.UnixMicro(v).UTC().Year(); y < 1000 || y > 9999 {
			return // outside four-digit years the format is not canonical
		}
		formatted := time.UnixMicro(v).UTC().Format("2006-01-02 15:04:05.999999Z")
		again, ok := parseTimestamp(formatted, "", time.UTC)
		if !ok || again != v {
			t.Fatalf("parseTimestamp(%q) = %d; formatted %q parses to %d, %v", s, v, formatted, again, ok)
		}
	})
}

// FuzzParseDate checks that every accepted date is also a timestamp at
// midnight UTC.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2024-05-01", "2024-5-1", "2024", "2024-02-29", "2023-02-29", "1000+0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseDate(s, "")
		if !ok || strings.ContainsAny(s, " T") {
			return
		}
		ts, ok := parseTimestamp(s, "", time.UTC)
		if !ok || ts != d*86400*1_000_000 {
			t.Fatalf("date %q = day %d, but as a timestamp %d, %v", s, d, ts, ok)
		}
	})
}

// FuzzRecord feeds arbitrary records to the JSON and CSV parsers in
// PERMISSIVE mode: they must not fail or panic, every batch must be valid,
// and a non-blank CSV record yields exactly one row.
func FuzzRecord(f *testing.F) {
	for _, s := range []string{`{"i":1,"s":"x"}`, `[{"i":1},{"t":"2024-01-01"}]`, `1,x,2.5,true,2024-01-01,2024-01-01 00:00:00,AAE=`,
		`"a""b",c`, `{"i":`, `{"b":"NaN"}`, "\"unterminated", ""} {
		f.Add(s)
	}
	schema := "i INT, s STRING, d DOUBLE, b BOOLEAN, dt DATE, t TIMESTAMP, bin BINARY, _corrupt_record STRING"
	f.Fuzz(func(t *testing.T, rec string) {
		if strings.ContainsAny(rec, "\n") {
			return
		}
		for _, format := range []string{"json", "csv"} {
			cfg, err := ParseConfig(format, map[string]string{"path": "/in", "schema": schema})
			if err != nil {
				t.Fatal(err)
			}
			rows := 0
			p := newParser(cfg, &Source{}, "/in/f", func(_ context.Context, b *batch.Batch) error {
				if err := b.Validate(); err != nil {
					t.Fatalf("%s %q: invalid batch: %v", format, rec, err)
				}
				rows += b.N
				return nil
			})
			if err := p.run(context.Background(), bytes.NewReader([]byte(rec))); err != nil {
				t.Fatalf("%s %q: %v", format, rec, err)
			}
			if format == "csv" && strings.TrimSpace(rec) != "" && rows != 1 {
				t.Fatalf("csv %q gave %d rows", rec, rows)
			}
		}
	})
}
