package rehearse

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/pipeline"
	"github.com/sluice-stream/sluice/internal/plan"
	"github.com/sluice-stream/sluice/internal/queryrun"
)

// phaseSourceOptions are the source options each phase sets itself.
var phaseSourceOptions = []string{
	"kafka.bootstrap.servers", "subscribe", "subscribePattern", "assign", "startingOffsets",
	"startingOffsetsByTimestamp", "startingTimestamp", "endingOffsets",
	"maxOffsetsPerTrigger", "minOffsetsPerTrigger", "maxTriggerDelay",
	"sluice.admission", "sluice.targetBatchDuration", "sluice.maxLagSeconds",
}

// LoadQuery reads the query of a pipeline file (the format of `sluice
// run`). Its source must be Kafka.
func LoadQuery(path string) (*queryrun.Query, error) {
	f, err := pipeline.Load(path)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(f.Source.Format, "kafka") {
		return nil, fmt.Errorf("rehearse: %s: the source is %q; a rehearsal needs a kafka source (it produces the load to Kafka)", path, f.Source.Format)
	}
	q := &queryrun.Query{
		Name: f.Name, Steps: f.Transform,
		SinkFormat: f.Sink.Format, SinkOutputMode: f.Sink.OutputMode,
		SinkOptions: map[string]string{}, SourceOptions: map[string]string{}, Options: map[string]string{},
		Origin: "pipeline file " + path,
	}
	for k, v := range f.Source.Options {
		if containsFold(phaseSourceOptions, k) {
			q.Dropped = append(q.Dropped, "source option "+k)
			continue
		}
		q.SourceOptions[k] = v
	}
	for k, v := range f.Sink.Options {
		if strings.EqualFold(k, "checkpointLocation") {
			continue
		}
		q.SinkOptions[k] = v
	}
	for k, v := range f.Options {
		if strings.EqualFold(k, "sluice.memory.budget") {
			q.Dropped = append(q.Dropped, "option "+k+" (phase 4 sets its own)")
			continue
		}
		q.Options[k] = v
	}
	if f.Trigger.Kind != "" && f.Trigger.Kind != "default" {
		q.Dropped = append(q.Dropped, "trigger "+f.Trigger.Kind+" (each phase sets its own)")
	}
	if f.DeadLetter != nil {
		q.Dropped = append(q.Dropped, "deadLetter")
	}
	sort.Strings(q.Dropped)
	return q, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// StatefulQuery is phase 5's query: the orders parsed with from_json, a
// watermark delay behind their event time ts, and a count per customer
// over tumbling windows of the given size, in append mode (each window
// emitted once, when the watermark passes its end) into the noop sink.
// From base (the query of the other phases) it keeps only the source's
// options (security settings, fetch sizes).
func StatefulQuery(window, delay time.Duration, base *queryrun.Query) *queryrun.Query {
	q := &queryrun.Query{
		Name: "orders-windowed",
		Steps: []pipeline.Step{
			{Op: plan.Op{Kind: plan.SelectExpr, Exprs: []string{
				"from_json(CAST(value AS STRING), 'order_id STRING, customer_id STRING, ts TIMESTAMP') AS o"}}},
			{Op: plan.Op{Kind: plan.SelectExpr, Exprs: []string{"o.customer_id AS customer_id", "o.ts AS ts"}}},
			{Op: plan.Op{Kind: plan.WithWatermark, EventTime: "ts", Delay: sparkInterval(delay)}},
			{Op: plan.Op{Kind: plan.Aggregate, GroupBy: []string{"window(ts, '" + sparkInterval(window) + "')", "customer_id"},
				Aggs: []string{"count(*) AS orders"}}},
		},
		SinkFormat: "noop", SinkOutputMode: "append",
		SinkOptions: map[string]string{}, SourceOptions: map[string]string{}, Options: map[string]string{},
		Origin: fmt.Sprintf("sluice's windowed count: from_json(orders), withWatermark(ts, %s), groupBy(window(ts, %s), customer_id).agg(count(*)), append, noop sink",
			sparkInterval(delay), sparkInterval(window)),
	}
	if base != nil {
		for k, v := range base.SourceOptions {
			q.SourceOptions[k] = v
		}
	}
	return q
}

// sparkInterval writes d as a Spark interval string ("2 seconds",
// "500 milliseconds").
func sparkInterval(d time.Duration) string {
	if d == time.Second {
		return "1 second"
	}
	if d%time.Second == 0 {
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return fmt.Sprintf("%d milliseconds", d/time.Millisecond)
}
