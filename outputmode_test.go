package sluice

import (
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/registry"
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
		{"update", "parquet", false, `[STREAMING_OUTPUT_MODE.UNSUPPORTED_DATASOURCE] Invalid streaming output mode: update. This output mode is not supported in Data Source parquet. ` +
			`(the parquet sink does not support output mode "update"; allowed: append)`},
		{"update", "memory", false, `memory sink does not support output mode "update"`},
		{"complete", "memory", true, ""},
		{"complete", "json", true, "allowed: append"},
		{"upsert", "console", false, `option "outputMode": [STREAMING_OUTPUT_MODE.INVALID] Invalid streaming output mode: upsert. Accepted output modes are 'Append', 'Complete', 'Update'. ` +
			`(invalid value "upsert"; allowed: append, update, complete)`},
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

// TestSinkFormatsListed keeps the public lists and the registry in step:
// every listed sink format is fully described (the registry's
// TestFormatsFullyDescribed checks each description), and the lists are
// copies a caller cannot change.
func TestSinkFormatsListed(t *testing.T) {
	if len(SinkFormats()) != len(registry.Sinks()) || len(SourceFormats()) != len(registry.Sources()) {
		t.Fatalf("SinkFormats has %d entries, the registry %d", len(SinkFormats()), len(registry.Sinks()))
	}
	for _, f := range SinkFormats() {
		sf, err := registry.Sink(f)
		if err != nil || sf.Open == nil || len(sf.OutputModes) == 0 {
			t.Errorf("sink format %q is listed but not fully described", f)
		}
	}
	SinkFormats()[0], SourceFormats()[0], OutputModes()[0] = "x", "x", "x"
	if SinkFormats()[0] == "x" || SourceFormats()[0] == "x" || OutputModes()[0] == "x" {
		t.Error("a public format list can be changed by its caller")
	}
}
