package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	os.WriteFile(path, []byte(`options:
  spark.sql.shuffle.partitions: 4
source:
  format: rate
transform:
  - withWatermark: {eventTime: timestamp, delay: 10 seconds}
  - groupBy: [timestamp]
    agg: ["count(*) AS n"]
sink:
  format: console
  outputMode: update
`), 0o644)
	var out, errb bytes.Buffer
	if err := runExplain(context.Background(), []string{path}, &out, &errb); err != nil {
		t.Fatalf("%v %s", err, errb.String())
	}
	for _, want := range []string{
		"== Logical Plan ==\nAggregate [timestamp], [timestamp, count(*) AS n]\n+- EventTimeWatermark timestamp, 10 seconds\n   +- StreamingRelation rate []",
		"Stage 2: one task per shuffle partition (4)",
		"WriteToSink console, output mode update",
		"StateStoreSave [timestamp], [count(1)], state operator 0 (stateStoreSave, memory provider)",
		"Exchange hashpartitioning([timestamp], 4)",
		"+- PartialAggregate [timestamp], [count(1)]",
		"+- Scan rate []",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, out.String())
		}
	}
	// A query Start would refuse is reported, with Spark's message.
	os.WriteFile(path, []byte("source: {format: rate}\ntransform:\n  - groupBy: [value]\n    agg: [\"count(*)\"]\nsink: {format: console, outputMode: append}\n"), 0o644)
	err := runExplain(context.Background(), []string{path}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "Invalid streaming output mode: append") {
		t.Fatalf("explain of an append aggregation without watermark: %v", err)
	}
}
