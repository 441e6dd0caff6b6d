package rehearse

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sluice-stream/sluice/internal/pipeline"
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
