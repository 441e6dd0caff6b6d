package queryrun

import (
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-stream/sluice/internal/pipeline"
	"github.com/sluice-stream/sluice/internal/plan"
)

// Query is a query the harnesses run: its transform steps, its sink and its
// engine options. Its source is always a Kafka topic, and its trigger,
// read limits and checkpoint are set per run (Setup).
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
	// Options are the pipeline's top-level options (a harness may leave
	// some out, such as a memory budget it sets per run).
	Options map[string]string
	// Origin says where the query came from, for the report.
	Origin string
	// Dropped lists what of the pipeline file the harness does not use.
	Dropped []string
}

// SeedQuery is the seed's example: the order events as a JSON string and
// the processing time, into a sink that discards rows (noop).
func SeedQuery() *Query {
	return &Query{
		Name: "orders",
		Steps: []pipeline.Step{
			{Op: plan.Op{Kind: plan.SelectExpr, Exprs: []string{"CAST(value AS STRING) AS json"}}},
			{Op: plan.Op{Kind: plan.WithColumn, Name: "processed_ts", Expr: "current_timestamp()"}},
		},
		SinkFormat:    "noop",
		SinkOptions:   map[string]string{},
		SourceOptions: map[string]string{},
		Options:       map[string]string{},
		Origin:        "the seed's query: selectExpr(CAST(value AS STRING) AS json), withColumn(processed_ts, current_timestamp()), noop sink",
	}
}

// Setup is what one run adds to the query: where it reads, where it keeps
// its checkpoint and how it is triggered and limited.
type Setup struct {
	Name       string
	Bootstrap  string
	Topic      string
	Checkpoint string
	// Trigger is the processingTime interval (0: the default trigger).
	Trigger time.Duration
	// AvailableNow drains what is in the topic and stops (Trigger is
	// then ignored).
	AvailableNow bool
	// StartingOffsets is "earliest" (the default when empty) or "latest".
	StartingOffsets string
	SourceOptions   map[string]string // limits and admission
	SinkOptions     map[string]string // sink delays
	Options         map[string]string // workers, memory budget
}

type yamlFile struct {
	Name      string            `yaml:"name"`
	Options   map[string]string `yaml:"options,omitempty"`
	Source    yamlSource        `yaml:"source"`
	Transform []map[string]any  `yaml:"transform,omitempty"`
	Sink      yamlSink          `yaml:"sink"`
	Trigger   map[string]any    `yaml:"trigger,omitempty"`
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

// Pipeline renders the query of a run as a pipeline file.
func (q *Query) Pipeline(p Setup) ([]byte, error) {
	starting := p.StartingOffsets
	if starting == "" {
		starting = "earliest"
	}
	f := yamlFile{
		Name:    p.Name,
		Options: escape(merge(q.Options, p.Options)),
		Source: yamlSource{Format: "kafka", Options: escape(merge(q.SourceOptions, p.SourceOptions, map[string]string{
			"kafka.bootstrap.servers": p.Bootstrap,
			"subscribe":               p.Topic,
			"startingOffsets":         starting,
		}))},
		Sink: yamlSink{Format: q.SinkFormat, OutputMode: q.SinkOutputMode,
			Options: escape(merge(q.SinkOptions, p.SinkOptions, map[string]string{"checkpointLocation": p.Checkpoint}))},
	}
	switch {
	case p.AvailableNow:
		f.Trigger = map[string]any{"availableNow": true}
	case p.Trigger > 0:
		f.Trigger = map[string]any{"processingTime": p.Trigger.String()}
	}
	esc := func(s string) string { return strings.ReplaceAll(s, "${", "$${") }
	for _, st := range q.Steps {
		m, err := pipeline.Render(st.Op, esc)
		if err != nil {
			return nil, fmt.Errorf("queryrun: %w", err)
		}
		f.Transform = append(f.Transform, m)
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("queryrun: render pipeline: %w", err)
	}
	return out, nil
}

// WritePipeline renders the run's pipeline into path and checks that it
// parses back.
func (q *Query) WritePipeline(path string, p Setup) error {
	data, err := q.Pipeline(p)
	if err != nil {
		return err
	}
	if _, err := pipeline.Parse(path, data, nil); err != nil {
		return fmt.Errorf("queryrun: the rendered pipeline does not parse: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("queryrun: write pipeline: %w", err)
	}
	return nil
}
