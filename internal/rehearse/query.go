package rehearse

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-stream/sluice/internal/pipeline"
)

// Query is the query a rehearsal runs in every phase: its transform steps,
// its sink and its engine options. Its source is always the phase's Kafka
// topic, and its trigger, read limits and checkpoint are set per phase.
type Query struct {
	// Name is the query name.
	Name string
	// Steps are the transform steps.
	Steps []pipeline.Step
	// SinkFormat, SinkOutputMode and SinkOptions describe the sink;
	// checkpointLocation is replaced per phase.
	SinkFormat, SinkOutputMode string
	SinkOptions                map[string]string
	// SourceOptions are kept from the pipeline's source (security
	// settings, fetch sizes…), minus the options a phase sets.
	SourceOptions map[string]string
	// Options are the pipeline's top-level options, minus the memory
	// budget (set per phase).
	Options map[string]string
	// Origin says where the query came from, for the report.
	Origin string
	// Dropped lists what of the pipeline file the rehearsal does not use.
	Dropped []string
}

// SeedQuery is the seed's example: the order events as a JSON string and
// the processing time, into a sink that discards rows (noop).
func SeedQuery() *Query {
	return &Query{
		Name: "orders",
		Steps: []pipeline.Step{
			{Kind: pipeline.StepSelectExpr, Exprs: []string{"CAST(value AS STRING) AS json"}},
			{Kind: pipeline.StepWithColumn, Name: "processed_ts", Expr: "current_timestamp()"},
		},
		SinkFormat:    "noop",
		SinkOptions:   map[string]string{},
		SourceOptions: map[string]string{},
		Options:       map[string]string{},
		Origin:        "the seed's query: selectExpr(CAST(value AS STRING) AS json), withColumn(processed_ts, current_timestamp()), noop sink",
	}
}

// phaseSourceOptions are the source options each phase sets itself.
var phaseSourceOptions = []string{
	"kafka.bootstrap.servers", "subscribe", "subscribePattern", "assign", "startingOffsets",
	"startingOffsetsByTimestamp", "startingTimestamp", "endingOffsets",
	"maxOffsetsPerTrigger", "minOffsetsPerTrigger", "maxTriggerDelay",
	"sluice.admission", "sluice.targetBatchDuration", "sluice.maxLagSeconds",
}

// LoadQuery reads the query of a pipeline file (the format of `sluice
// run`). Its source must be Kafka.
func LoadQuery(path string) (*Query, error) {
	f, err := pipeline.Load(path)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(f.Source.Format, "kafka") {
		return nil, fmt.Errorf("rehearse: %s: the source is %q; a rehearsal needs a kafka source (it produces the load to Kafka)", path, f.Source.Format)
	}
	q := &Query{
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

// PhaseQuery is what a phase adds to the query.
type PhaseQuery struct {
	Name          string
	Bootstrap     string
	Topic         string
	Checkpoint    string
	Trigger       time.Duration
	SourceOptions map[string]string // limits and admission
	SinkOptions   map[string]string // sink delays
	Options       map[string]string // workers, memory budget
}

type yamlFile struct {
	Name      string            `yaml:"name"`
	Options   map[string]string `yaml:"options,omitempty"`
	Source    yamlSource        `yaml:"source"`
	Transform []map[string]any  `yaml:"transform,omitempty"`
	Sink      yamlSink          `yaml:"sink"`
	Trigger   map[string]string `yaml:"trigger,omitempty"`
}

type yamlSource struct {
	Format  string            `yaml:"format"`
	Options map[string]string `yaml:"options"`
}

type yamlSink struct {
	Format     string            `yaml:"format"`
	OutputMode string            `yaml:"outputMode,omitempty"`
	Options    map[string]string `yaml:"options"`
}

// escape protects "${" from the pipeline parser's variable expansion: the
// values were expanded when the original file was read.
func escape(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strings.ReplaceAll(v, "${", "$${")
	}
	return out
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Pipeline renders the query of a phase as a pipeline file.
func (q *Query) Pipeline(p PhaseQuery) ([]byte, error) {
	f := yamlFile{
		Name:    p.Name,
		Options: escape(merge(q.Options, p.Options)),
		Source: yamlSource{Format: "kafka", Options: escape(merge(q.SourceOptions, p.SourceOptions, map[string]string{
			"kafka.bootstrap.servers": p.Bootstrap,
			"subscribe":               p.Topic,
			"startingOffsets":         "earliest",
		}))},
		Sink: yamlSink{Format: q.SinkFormat, OutputMode: q.SinkOutputMode,
			Options: escape(merge(q.SinkOptions, p.SinkOptions, map[string]string{"checkpointLocation": p.Checkpoint}))},
	}
	if p.Trigger > 0 {
		f.Trigger = map[string]string{"processingTime": p.Trigger.String()}
	}
	esc := func(s string) string { return strings.ReplaceAll(s, "${", "$${") }
	for _, st := range q.Steps {
		switch st.Kind {
		case pipeline.StepSelectExpr, pipeline.StepSelect:
			exprs := make([]string, len(st.Exprs))
			for i, e := range st.Exprs {
				exprs[i] = esc(e)
			}
			f.Transform = append(f.Transform, map[string]any{st.Kind: exprs})
		case pipeline.StepWithColumn:
			f.Transform = append(f.Transform, map[string]any{st.Kind: map[string]string{"name": esc(st.Name), "expr": esc(st.Expr)}})
		case pipeline.StepFilter:
			f.Transform = append(f.Transform, map[string]any{st.Kind: esc(st.Expr)})
		default:
			return nil, fmt.Errorf("rehearse: transform step %q cannot be rendered", st.Kind)
		}
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("rehearse: render phase pipeline: %w", err)
	}
	return out, nil
}

// WritePipeline renders the phase's pipeline into path and checks that it
// parses back.
func (q *Query) WritePipeline(path string, p PhaseQuery) error {
	data, err := q.Pipeline(p)
	if err != nil {
		return err
	}
	if _, err := pipeline.Parse(path, data, nil); err != nil {
		return fmt.Errorf("rehearse: the phase pipeline does not parse: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("rehearse: write phase pipeline: %w", err)
	}
	return nil
}
