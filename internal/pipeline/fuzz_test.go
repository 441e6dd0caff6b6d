package pipeline

import (
	"github.com/sluice-stream/sluice/internal/plan"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzParse checks that Parse never panics and that what it accepts is
// internally consistent.
func FuzzParse(f *testing.F) {
	f.Add([]byte(seed))
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "trigger: {processingTime: ${T:-1m}}\ntransform:\n  - withColumn: {name: a, expr: b}\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nsource: *b\n"))
	f.Add([]byte("source:\n  <<: {format: x}\n"))
	for _, dir := range []string{"testdata", examplesDir} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, p := range paths {
			f.Add(readFile(f, p))
		}
	}
	env := envOf(map[string]string{"T": "5s", "SLUICE_TEST_TOPIC": "t"})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f.yaml", data, env)
		if err != nil {
			if file != nil {
				t.Fatalf("File and error both returned")
			}
			if err.Error() == "" {
				t.Fatalf("empty error text")
			}
			return
		}
		if file.Source.Format == "" || file.Sink.Format == "" {
			t.Errorf("accepted without formats: %+v", file)
		}
		switch file.Trigger.Kind {
		case TriggerDefault, TriggerAvailableNow, TriggerOnce:
			if file.Trigger.Interval != 0 {
				t.Errorf("interval on %s trigger", file.Trigger.Kind)
			}
		case TriggerProcessingTime:
			if file.Trigger.Interval < 0 || file.Trigger.Interval%time.Millisecond != 0 {
				t.Errorf("interval %v is not 0 or whole milliseconds", file.Trigger.Interval)
			}
		default:
			t.Errorf("unknown trigger kind %q", file.Trigger.Kind)
		}
		switch file.Sink.OutputMode {
		case "append", "update", "complete":
		default:
			t.Errorf("output mode %q", file.Sink.OutputMode)
		}
		for _, s := range file.Transform {
			if s.Line <= 0 {
				t.Errorf("step without a line: %+v", s)
			}
			switch s.Kind {
			case plan.Select, plan.SelectExpr:
				if len(s.Exprs) == 0 {
					t.Errorf("select without expressions")
				}
			case plan.Filter:
				if s.Expr == "" {
					t.Errorf("filter without expression")
				}
			case plan.WithColumn:
				if s.Name == "" || s.Expr == "" {
					t.Errorf("withColumn without name or expr")
				}
			case plan.WithWatermark:
				if s.EventTime == "" || s.Delay == "" {
					t.Errorf("withWatermark without eventTime or delay")
				}
			case plan.Aggregate:
				if len(s.Aggs) == 0 {
					t.Errorf("aggregation without agg expressions")
				}
			case plan.Deduplicate:
			default:
				t.Errorf("step kind %q", s.Kind)
			}
		}
	})
}
