package pipeline

import (
	"github.com/sluice-stream/sluice/internal/plan"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// examplesDir is the repository's examples/ directory.
var examplesDir = filepath.Join("..", "..", "examples")

// TestExamplesParse parses every shipped example with an empty environment,
// so examples must give defaults for the variables they use.
func TestExamplesParse(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no examples found in %s", examplesDir)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data := readFile(t, path)
			if _, err := Parse(path, data, envOf(nil)); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}

func TestOrdersConsoleExample(t *testing.T) {
	path := filepath.Join(examplesDir, "orders-console.yaml")
	data := readFile(t, path)
	for _, tc := range []struct {
		env       map[string]string
		bootstrap string
	}{
		{nil, "localhost:9092"},
		{map[string]string{"KAFKA_BOOTSTRAP": "10.0.0.7:9092"}, "10.0.0.7:9092"},
	} {
		f, err := Parse(path, data, envOf(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		wantOpts := map[string]string{
			"kafka.bootstrap.servers": tc.bootstrap,
			"subscribe":               "orders",
			"startingOffsets":         "latest",
			"maxOffsetsPerTrigger":    "10000",
		}
		if f.Name != "orders" || f.Source.Format != "kafka" || !reflect.DeepEqual(f.Source.Options, wantOpts) {
			t.Errorf("source = %q %+v, want kafka %v", f.Name, f.Source, wantOpts)
		}
		wantSteps := []Step{
			{Op: plan.Op{Kind: plan.SelectExpr, Exprs: []string{"CAST(value AS STRING) AS json"}}, Line: f.Transform[0].Line, Column: f.Transform[0].Column},
			{Op: plan.Op{Kind: plan.WithColumn, Name: "processed_ts", Expr: "current_timestamp()"}, Line: f.Transform[1].Line, Column: f.Transform[1].Column},
		}
		if !reflect.DeepEqual(f.Transform, wantSteps) {
			t.Errorf("transform = %+v", f.Transform)
		}
		if f.Sink.Format != "console" || f.Sink.OutputMode != "append" || f.CheckpointLocation != "/tmp/chk/orders" {
			t.Errorf("sink = %+v, checkpoint %q", f.Sink, f.CheckpointLocation)
		}
		if f.Trigger.Kind != TriggerProcessingTime || f.Trigger.Interval != 20*time.Second {
			t.Errorf("trigger = %+v", f.Trigger)
		}
	}
}
