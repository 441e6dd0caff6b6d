package sluice

import (
	"strings"
	"testing"
)

func TestValidateOutputMode(t *testing.T) {
	cases := []struct {
		mode, sink string
		agg        bool
		want       string // "" = ok, else a substring of the error
	}{
		{"append", "console", false, ""},
		{"update", "console", false, ""},
		{"APPEND", "parquet", false, ""},
		{"complete", "console", false, "no streaming aggregations"},
		{"complete", "console", true, ""},
		{"update", "parquet", false, `parquet sink does not support output mode "update" (allowed: append)`},
		{"update", "memory", false, `memory sink does not support output mode "update"`},
		{"complete", "memory", true, ""},
		{"complete", "json", true, "allowed: append"},
		{"upsert", "console", false, `"outputMode": invalid value "upsert"; allowed: append, update, complete`},
		{"update", "kafka", false, ""},
		{"append", "delta", false, ""},
	}
	for _, c := range cases {
		err := validateOutputMode(c.mode, c.sink, c.agg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s/%s/agg=%v: unexpected error %v", c.mode, c.sink, c.agg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s/%s/agg=%v: error %v, want it to contain %q", c.mode, c.sink, c.agg, err, c.want)
		}
	}
}

// TestSinkFormatsListed keeps the public list and the format table in step.
func TestSinkFormatsListed(t *testing.T) {
	if len(SinkFormats) != len(sinkFormats) {
		t.Fatalf("SinkFormats has %d entries, the table %d", len(SinkFormats), len(sinkFormats))
	}
	for _, f := range SinkFormats {
		sf, ok := sinkFormats[f]
		if !ok || sf.open == nil || len(sf.modes) == 0 {
			t.Errorf("sink format %q is listed but not fully described", f)
		}
	}
}
