package queryrun

import (
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/pipeline"
)

func TestSeedQueryPipeline(t *testing.T) {
	q := SeedQuery()
	q.Options["spark.sql.ansi.enabled"] = "true"
	q.SinkOptions["note"] = "a ${literal}" // must survive the parser's expansion
	data, err := q.Pipeline(Setup{
		Name: "p1", Bootstrap: "127.0.0.1:9", Topic: "t-1", Checkpoint: "/tmp/chk", Trigger: 1500 * time.Millisecond,
		SourceOptions: map[string]string{"maxOffsetsPerTrigger": "100"},
		SinkOptions:   map[string]string{"sluice.sink.delayPerRow": "400µs"},
		Options:       map[string]string{"sluice.workers": "4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := pipeline.Parse("p.yaml", data, func(string) (string, bool) { return "EXPANDED", true })
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	checks := []struct{ got, want string }{
		{f.Name, "p1"},
		{f.Source.Format, "kafka"},
		{f.Source.Options["kafka.bootstrap.servers"], "127.0.0.1:9"},
		{f.Source.Options["subscribe"], "t-1"},
		{f.Source.Options["startingOffsets"], "earliest"},
		{f.Source.Options["maxOffsetsPerTrigger"], "100"},
		{f.Sink.Format, "noop"},
		{f.Sink.Options["sluice.sink.delayPerRow"], "400µs"},
		{f.Sink.Options["note"], "a ${literal}"},
		{f.CheckpointLocation, "/tmp/chk"},
		{f.Options["sluice.workers"], "4"},
		{f.Options["spark.sql.ansi.enabled"], "true"},
		{f.Trigger.Kind, pipeline.TriggerProcessingTime},
		{f.Trigger.Interval.String(), "1.5s"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("got %q, want %q\n%s", c.got, c.want, data)
		}
	}
	if len(f.Transform) != 2 || f.Transform[0].Exprs[0] != "CAST(value AS STRING) AS json" || f.Transform[1].Name != "processed_ts" || f.Transform[1].Expr != "current_timestamp()" {
		t.Errorf("transform %+v", f.Transform)
	}
}

// TestSetupTriggers renders the availableNow trigger, the default trigger
// and a starting position other than earliest.
func TestSetupTriggers(t *testing.T) {
	for _, tc := range []struct {
		setup    Setup
		kind     string
		starting string
	}{
		{Setup{AvailableNow: true, Trigger: time.Second}, pipeline.TriggerAvailableNow, "earliest"},
		{Setup{StartingOffsets: "latest"}, pipeline.TriggerDefault, "latest"},
	} {
		s := tc.setup
		s.Name, s.Bootstrap, s.Topic, s.Checkpoint = "p", "127.0.0.1:9", "t", "/tmp/chk"
		data, err := SeedQuery().Pipeline(s)
		if err != nil {
			t.Fatal(err)
		}
		f, err := pipeline.Parse("p.yaml", data, nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if f.Trigger.Kind != tc.kind || f.Source.Options["startingOffsets"] != tc.starting {
			t.Errorf("%+v: trigger %q, startingOffsets %q; want %q, %q\n%s", tc.setup, f.Trigger.Kind, f.Source.Options["startingOffsets"], tc.kind, tc.starting, data)
		}
	}
}
