package pipeline

import (
	"errors"
	"fmt"
	"github.com/sluice-stream/sluice/internal/plan"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf returns a lookup func over a fixed map.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// seed is the design document's example pipeline.
const seed = `name: orders
source:
  format: kafka
  options:
    kafka.bootstrap.servers: localhost:9092
    subscribe: orders
    startingOffsets: latest
    maxOffsetsPerTrigger: 50000
transform:
  - selectExpr: ["CAST(value AS STRING) AS json"]
  - withColumn: {name: processed_ts, expr: "current_timestamp()"}
sink:
  format: console
  outputMode: append
  options:
    checkpointLocation: /tmp/chk/orders
trigger:
  processingTime: 20 seconds      # or: availableNow: true | once: true | omitted = default
`

// minimal is the smallest valid pipeline; cases append to it.
const minimal = "source: {format: rate}\nsink: {format: console}\n"

// base is what minimal parses to; cases modify a copy.
func base() File {
	return File{
		Options:     map[string]string{},
		OptionLines: map[string]int{},
		Source:      Source{Format: "rate", Options: map[string]string{}, OptionLines: map[string]int{}, Line: 1},
		Sink:        Sink{Format: "console", OutputMode: "append", Options: map[string]string{}, OptionLines: map[string]int{}, Line: 2},
		Trigger:     Trigger{Kind: TriggerDefault},
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want func() File
	}{
		{
			name: "seed example",
			yaml: seed,
			want: func() File {
				return File{
					Name: "orders",
					Source: Source{
						Format: "kafka",
						Options: map[string]string{
							"kafka.bootstrap.servers": "localhost:9092",
							"subscribe":               "orders",
							"startingOffsets":         "latest",
							"maxOffsetsPerTrigger":    "50000",
						},
						OptionLines: map[string]int{"kafka.bootstrap.servers": 5, "subscribe": 6, "startingOffsets": 7, "maxOffsetsPerTrigger": 8},
						Line:        2,
					},
					Transform: []Step{
						{Op: plan.Op{Kind: plan.SelectExpr, Exprs: []string{"CAST(value AS STRING) AS json"}}, Line: 10},
						{Op: plan.Op{Kind: plan.WithColumn, Name: "processed_ts", Expr: "current_timestamp()"}, Line: 11},
					},
					Sink: Sink{
						Format: "console", OutputMode: "append",
						Options:     map[string]string{"checkpointLocation": "/tmp/chk/orders"},
						OptionLines: map[string]int{"checkpointLocation": 16},
						Line:        12,
					},
					Trigger:            Trigger{Kind: TriggerProcessingTime, Interval: 20 * time.Second, Line: 18},
					Options:            map[string]string{},
					OptionLines:        map[string]int{},
					CheckpointLocation: "/tmp/chk/orders",
				}
			},
		},
		{
			name: "minimal gets defaults",
			yaml: minimal,
			want: base,
		},
		{
			name: "scalars normalised as written",
			yaml: `source:
  format: kafka
  options:
    a: 50000
    b: true
    c: 1.50
    d: 0x1F
    e: "007"
    f: True
    g: 'single'
    h: -3
sink: {format: console}
`,
			want: func() File {
				f := base()
				f.Source.Options = map[string]string{"a": "50000", "b": "true", "c": "1.50", "d": "0x1F", "e": "007", "f": "True", "g": "single", "h": "-3"}
				f.Source.OptionLines = map[string]int{"a": 4, "b": 5, "c": 6, "d": 7, "e": 8, "f": 9, "g": 10, "h": 11}
				f.Source.Format = "kafka"
				f.Sink.Line = 12
				return f
			},
		},
		{
			name: "trigger availableNow",
			yaml: minimal + "trigger:\n  availableNow: true\n",
			want: func() File { f := base(); f.Trigger = Trigger{Kind: TriggerAvailableNow, Line: 4}; return f },
		},
		{
			name: "trigger once",
			yaml: minimal + "trigger: {once: true}\n",
			want: func() File { f := base(); f.Trigger = Trigger{Kind: TriggerOnce, Line: 3}; return f },
		},
		{
			name: "false flag does not compete with processingTime",
			yaml: minimal + "trigger:\n  availableNow: false\n  processingTime: 1 minute\n",
			want: func() File {
				f := base()
				f.Trigger = Trigger{Kind: TriggerProcessingTime, Interval: time.Minute, Line: 5}
				return f
			},
		},
		{
			name: "only false flags leave the default trigger",
			yaml: minimal + "trigger:\n  once: false\n",
			want: base,
		},
		{
			name: "bare number interval is milliseconds",
			yaml: minimal + "trigger: {processingTime: 5000}\n",
			want: func() File {
				f := base()
				f.Trigger = Trigger{Kind: TriggerProcessingTime, Interval: 5 * time.Second, Line: 3}
				return f
			},
		},
		{
			name: "empty trigger mapping is the default",
			yaml: minimal + "trigger:\n",
			want: base,
		},
		{
			name: "every step kind",
			yaml: minimal + `transform:
  - selectExpr: "value AS v"
  - select: [v, "upper(v) AS u"]
  - filter: "v IS NOT NULL"
  - where: length(u) > 3
  - withColumn:
      name: n
      expr: 1
  - selectExpr: [1, true]
`,
			want: func() File {
				f := base()
				f.Transform = []Step{
					{Op: plan.Op{Kind: plan.SelectExpr, Exprs: []string{"value AS v"}}, Line: 4},
					{Op: plan.Op{Kind: plan.Select, Exprs: []string{"v", "upper(v) AS u"}}, Line: 5},
					{Op: plan.Op{Kind: plan.Filter, Expr: "v IS NOT NULL"}, Line: 6},
					{Op: plan.Op{Kind: plan.Filter, Expr: "length(u) > 3"}, Line: 7},
					{Op: plan.Op{Kind: plan.WithColumn, Name: "n", Expr: "1"}, Line: 8},
					{Op: plan.Op{Kind: plan.SelectExpr, Exprs: []string{"1", "true"}}, Line: 11},
				}
				return f
			},
		},
		{
			name: "top-level options, dead letter, checkpoint, outputMode case",
			yaml: `name: q
source: {format: rate}
sink:
  format: console
  outputMode: Update
options:
  sluice.workers: 4
  spark.sql.shuffle.partitions: "8"
deadLetter:
  format: file
  options: {path: /tmp/dlq}
checkpointLocation: /tmp/chk/q
`,
			want: func() File {
				f := base()
				f.Name = "q"
				f.Source.Line = 2
				f.Sink.Line = 3
				f.Sink.OutputMode = "update"
				f.Options = map[string]string{"sluice.workers": "4", "spark.sql.shuffle.partitions": "8"}
				f.OptionLines = map[string]int{"sluice.workers": 7, "spark.sql.shuffle.partitions": 8}
				f.DeadLetter = &Endpoint{Format: "file", Options: map[string]string{"path": "/tmp/dlq"}, OptionLines: map[string]int{"path": 11}, Line: 9}
				f.CheckpointLocation = "/tmp/chk/q"
				return f
			},
		},
		{
			name: "same checkpoint location in both places",
			yaml: "source: {format: rate}\nsink: {format: console, options: {CheckpointLocation: /c}}\ncheckpointLocation: /c\n",
			want: func() File {
				f := base()
				f.Sink.Options = map[string]string{"CheckpointLocation": "/c"}
				f.Sink.OptionLines = map[string]int{"CheckpointLocation": 2}
				f.CheckpointLocation = "/c"
				return f
			},
		},
		{
			name: "queryName names the query",
			yaml: "source: {format: rate}\nsink: {format: console, queryName: q1, options: {checkpointLocation: /c}}\ncheckpointLocation: /c\n",
			want: func() File {
				f := base()
				f.Name = "q1"
				f.Sink.QueryName = "q1"
				f.Sink.Options = map[string]string{"checkpointLocation": "/c"}
				f.Sink.OptionLines = map[string]int{"checkpointLocation": 2}
				f.CheckpointLocation = "/c"
				return f
			},
		},
		{
			name: "environment expansion",
			yaml: `name: ${NAME}
source:
  format: kafka
  options:
    kafka.bootstrap.servers: ${KAFKA_BOOTSTRAP:-localhost:9092}
    subscribe: "${TOPIC:-orders}-v$${X}"
    maxOffsetsPerTrigger: ${MAX:-100}
transform:
  - filter: "id > ${MIN_ID:-0}"
sink: {format: console}
trigger:
  availableNow: ${DRAIN:-false}
  processingTime: ${EVERY:-10s}
`,
			env: map[string]string{"NAME": "n1", "KAFKA_BOOTSTRAP": "broker:9093", "TOPIC": "", "DRAIN": "false"},
			want: func() File {
				f := base()
				f.Name = "n1"
				f.Source = Source{
					Format:      "kafka",
					Options:     map[string]string{"kafka.bootstrap.servers": "broker:9093", "subscribe": "orders-v${X}", "maxOffsetsPerTrigger": "100"},
					OptionLines: map[string]int{"kafka.bootstrap.servers": 5, "subscribe": 6, "maxOffsetsPerTrigger": 7},
					Line:        2,
				}
				f.Transform = []Step{{Op: plan.Op{Kind: plan.Filter, Expr: "id > 0"}, Line: 9}}
				f.Sink.Line = 10
				f.Trigger = Trigger{Kind: TriggerProcessingTime, Interval: 10 * time.Second, Line: 13}
				return f
			},
		},
		{
			name: "env flag turns on availableNow",
			yaml: minimal + "trigger: {availableNow: '${DRAIN}'}\n",
			env:  map[string]string{"DRAIN": "TRUE"},
			want: func() File { f := base(); f.Trigger = Trigger{Kind: TriggerAvailableNow, Line: 3}; return f },
		},
		{
			name: "aliases inside known keys",
			yaml: `source:
  format: &fmt kafka
  options: &opts
    subscribe: t
sink:
  format: *fmt
  options: *opts
`,
			want: func() File {
				f := base()
				f.Source = Source{Format: "kafka", Options: map[string]string{"subscribe": "t"}, OptionLines: map[string]int{"subscribe": 4}, Line: 1}
				f.Sink.Format = "kafka"
				f.Sink.Line = 5
				f.Sink.Options = map[string]string{"subscribe": "t"}
				f.Sink.OptionLines = map[string]int{"subscribe": 4}
				return f
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("", []byte(tt.yaml), envOf(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tt.want()
			// Columns are checked by TestColumns; this table pins the rest.
			withoutColumns(got)
			withoutColumns(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Parse mismatch\n got: %+v\nwant: %+v", *got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const topAllowed = "(allowed: name, source, transform, sink, trigger, options, deadLetter, checkpointLocation)"
	tests := []struct {
		name string
		file string
		yaml string
		env  map[string]string
		want string
	}{
		{
			name: "unknown top-level key with suggestion",
			yaml: "name: orders\nsource:\n  format: kafka\nsink:\n  format: console\n\ntranform:\n  - filter: x\n",
			want: `line 7: unknown key "tranform" in pipeline; did you mean "transform"? ` + topAllowed,
		},
		{
			name: "file name prefixes errors",
			file: "orders.yaml",
			yaml: minimal + "trigers: {once: true}\n",
			want: `orders.yaml:3: unknown key "trigers" in pipeline; did you mean "trigger"? ` + topAllowed,
		},
		{
			name: "unknown key without suggestion",
			yaml: minimal + "banana: 1\n",
			want: `line 3: unknown key "banana" in pipeline ` + topAllowed,
		},
		{
			name: "key differing in case",
			yaml: minimal + "CheckpointLocation: /c\n",
			want: `line 3: unknown key "CheckpointLocation" in pipeline; did you mean "checkpointLocation"? ` + topAllowed,
		},
		{
			name: "prefix of a key",
			yaml: minimal + "checkpoint: /c\n",
			want: `line 3: unknown key "checkpoint" in pipeline; did you mean "checkpointLocation"? ` + topAllowed,
		},
		{
			name: "alias to unknown key",
			yaml: "common: &c {format: rate}\nsource: *c\nsink: {format: console}\n",
			want: `line 1: unknown key "common" in pipeline ` + topAllowed,
		},
		{
			name: "misspelt source key also leaves format missing",
			yaml: "source:\n  fromat: kafka\nsink: {format: console}\n",
			want: "line 1: missing required key \"format\" in source\n" +
				`line 2: unknown key "fromat" in source; did you mean "format"? (allowed: format, options)`,
		},
		{
			name: "unknown sink key",
			yaml: "source: {format: rate}\nsink:\n  format: console\n  outputmode: append\n",
			want: `line 4: unknown key "outputmode" in sink; did you mean "outputMode"? (allowed: format, outputMode, queryName, options)`,
		},
		{
			name: "unknown trigger key",
			yaml: minimal + "trigger:\n  processingtime: 1s\n",
			want: `line 4: unknown key "processingtime" in trigger; did you mean "processingTime"? (allowed: processingTime, availableNow, once)`,
		},
		{
			name: "unknown deadLetter key",
			yaml: minimal + "deadLetter:\n  format: file\n  option: {}\n",
			want: `line 5: unknown key "option" in deadLetter; did you mean "options"? (allowed: format, options)`,
		},
		{
			name: "two triggers",
			yaml: minimal + "trigger:\n  processingTime: 10 seconds\n  availableNow: true\n",
			want: "line 5: trigger: processingTime (line 4) and availableNow cannot both be set; choose one of processingTime, availableNow, once",
		},
		{
			name: "two triggers, both flags",
			yaml: minimal + "trigger: {once: true, availableNow: true}\n",
			want: "line 3: trigger: once (line 3) and availableNow cannot both be set; choose one of processingTime, availableNow, once",
		},
		{
			name: "bad interval",
			yaml: minimal + "trigger:\n  processingTime: 20 secnds\n",
			want: `line 4: trigger.processingTime: invalid interval "20 secnds": unknown unit "secnds"; did you mean "seconds"?`,
		},
		{
			name: "interval without unit",
			yaml: minimal + "trigger:\n  processingTime: 1.5\n",
			want: `line 4: trigger.processingTime: invalid interval "1.5": missing unit after 1.5 (e.g. "1.5 seconds")`,
		},
		{
			name: "interval below a millisecond",
			yaml: minimal + "trigger:\n  processingTime: 1 nanosecond\n",
			want: `line 4: trigger.processingTime: "1 nanosecond" is below 1 millisecond (allowed: 0 = as fast as possible, or whole milliseconds ≥ 1, e.g. "1 millisecond" or "20 seconds")`,
		},
		{
			name: "interval with a fraction of a millisecond",
			yaml: minimal + "trigger:\n  processingTime: 1500 microseconds\n",
			want: `line 4: trigger.processingTime: "1500 microseconds" is not a whole number of milliseconds (allowed: 0 = as fast as possible, or whole milliseconds ≥ 1, e.g. "1 millisecond" or "20 seconds")`,
		},
		{
			name: "empty interval",
			yaml: minimal + "trigger:\n  processingTime:\n",
			want: `line 4: trigger.processingTime: expected a string, got nothing`,
		},
		{
			name: "flag not a boolean",
			yaml: minimal + "trigger:\n  availableNow: yes\n",
			want: `line 4: trigger.availableNow: expected true or false, got the string "yes"`,
		},
		{
			name: "flag from env not a boolean",
			yaml: minimal + "trigger:\n  once: ${ONCE}\n",
			env:  map[string]string{"ONCE": "1"},
			want: `line 4: trigger.once: expected true or false, got "1" (from ${ONCE})`,
		},
		{
			name: "trigger not a mapping",
			yaml: minimal + "trigger: availableNow\n",
			want: `line 3: trigger: expected a mapping, got the string "availableNow"`,
		},
		{
			name: "outputMode with suggestion",
			yaml: "source: {format: rate}\nsink:\n  format: console\n  outputMode: apend\n",
			want: `line 4: sink.outputMode: [STREAMING_OUTPUT_MODE.INVALID] Invalid streaming output mode: apend. Accepted output modes are 'Append', 'Complete', 'Update'. ` +
				`(unknown output mode "apend"; did you mean "append"? (allowed: append, update, complete))`,
		},
		{
			name: "outputMode without suggestion",
			yaml: "source: {format: rate}\nsink:\n  format: console\n  outputMode: overwrite\n",
			want: `line 4: sink.outputMode: [STREAMING_OUTPUT_MODE.INVALID] Invalid streaming output mode: overwrite. Accepted output modes are 'Append', 'Complete', 'Update'. ` +
				`(unknown output mode "overwrite" (allowed: append, update, complete))`,
		},
		{
			name: "missing source and sink",
			yaml: "name: x\n",
			want: "line 1: missing required key \"source\" in pipeline\nline 1: missing required key \"sink\" in pipeline",
		},
		{
			name: "null sections miss their format",
			yaml: "source:\nsink:\n",
			want: "line 1: missing required key \"format\" in source\nline 2: missing required key \"format\" in sink",
		},
		{
			name: "deadLetter needs format",
			yaml: minimal + "deadLetter: {options: {path: /x}}\n",
			want: `line 3: missing required key "format" in deadLetter`,
		},
		{
			name: "empty format",
			yaml: "source: {format: ''}\nsink: {format: console}\n",
			want: `line 1: source.format: must not be empty`,
		},
		{
			name: "source not a mapping",
			yaml: "source: kafka\nsink: {format: console}\n",
			want: `line 1: source: expected a mapping, got the string "kafka"`,
		},
		{
			name: "options not a mapping",
			yaml: "source:\n  format: kafka\n  options: [a, b]\nsink: {format: console}\n",
			want: `line 3: source.options: expected a mapping, got a list`,
		},
		{
			name: "option value is a list",
			yaml: "source:\n  format: kafka\n  options:\n    subscribe: [a, b]\nsink: {format: console}\n",
			want: `line 4: source.options["subscribe"]: expected a string, number or boolean, got a list`,
		},
		{
			name: "option without value",
			yaml: minimal + "options:\n  sluice.workers:\n",
			want: `line 4: options["sluice.workers"]: expected a string, number or boolean, got nothing`,
		},
		{
			name: "options differing only in case",
			yaml: "source:\n  format: kafka\n  options:\n    subscribe: a\n    Subscribe: b\nsink: {format: console}\n",
			want: `line 5: source.options: option "Subscribe" repeats "subscribe" (line 4); option names ignore case`,
		},
		{
			name: "duplicate key",
			yaml: minimal + "name: a\nname: b\n",
			want: `line 4: pipeline: duplicate key "name" (first on line 3)`,
		},
		{
			name: "merge key",
			yaml: "x: &x {format: rate}\nsource:\n  <<: *x\nsink: {format: console}\n",
			want: "line 1: unknown key \"x\" in pipeline " + topAllowed + "\n" +
				"line 2: missing required key \"format\" in source\n" +
				"line 3: source: merge keys (<<) are not supported; write the keys out",
		},
		{
			name: "name is a mapping",
			yaml: minimal + "name: {a: 1}\n",
			want: `line 3: name: expected a string, got a mapping`,
		},
		{
			name: "transform not a list",
			yaml: minimal + "transform:\n  filter: x\n",
			want: `line 3: transform: expected a list of steps, got a mapping`,
		},
		{
			name: "step not a mapping",
			yaml: minimal + "transform:\n  - filter\n",
			want: `line 4: transform[0]: expected a step such as {filter: "expr"}, got the string "filter"`,
		},
		{
			name: "unknown step kind",
			yaml: minimal + "transform:\n  - filter: a\n  - selctExpr: [b]\n",
			want: `line 5: unknown transform step "selctExpr" in transform[1]; did you mean "selectExpr"? (allowed: selectExpr, select, withColumn, filter, where, withWatermark, groupBy, agg, dropDuplicates)`,
		},
		{
			name: "unknown step kind without suggestion",
			yaml: minimal + "transform:\n  - pivot: [b]\n",
			want: `line 4: unknown transform step "pivot" in transform[0] (allowed: selectExpr, select, withColumn, filter, where, withWatermark, groupBy, agg, dropDuplicates)`,
		},
		{
			name: "groupBy without agg",
			yaml: minimal + "transform:\n  - groupBy: [b]\n",
			want: `line 4: transform[0].groupBy: groupBy needs agg in the same step, e.g. {groupBy: [device], agg: ["count(*) AS n"]}`,
		},
		{
			name: "withWatermark without delay",
			yaml: minimal + "transform:\n  - withWatermark: {eventTime: ts}\n",
			want: `line 4: missing required key "delay" in transform[0].withWatermark`,
		},
		{
			name: "withWatermark keys beside it",
			yaml: minimal + "transform:\n  - withWatermark:\n    eventTime: ts\n",
			want: `line 5: transform[0]: a step has one kind, found "withWatermark" and "eventTime"; indent "eventTime" under "withWatermark"`,
		},
		{
			name: "dropDuplicates unknown key",
			yaml: minimal + "transform:\n  - dropDuplicates: {cols: [a]}\n",
			want: `line 4: unknown key "cols" in transform[0].dropDuplicates (allowed: columns, withinWatermark)`,
		},
		{
			name: "two kinds in one step",
			yaml: minimal + "transform:\n  - filter: a\n    select: [b]\n",
			want: `line 5: transform[0]: a step has one kind, found "filter" and "select"; start each step with its own "- "`,
		},
		{
			name: "withColumn fields not indented",
			yaml: minimal + "transform:\n  - withColumn:\n    name: a\n    expr: b\n",
			want: `line 5: transform[0]: a step has one kind, found "withColumn" and "name"; indent "name" under "withColumn"`,
		},
		{
			name: "empty step",
			yaml: minimal + "transform:\n  - {}\n",
			want: `line 4: transform[0]: empty step (want one of: selectExpr, select, withColumn, filter, where, withWatermark, groupBy, agg, dropDuplicates)`,
		},
		{
			name: "withColumn missing expr and misspelt key",
			yaml: minimal + "transform:\n  - withColumn: {name: a, exp: b}\n",
			want: "line 4: unknown key \"exp\" in transform[0].withColumn; did you mean \"expr\"? (allowed: name, expr)\n" +
				`line 4: missing required key "expr" in transform[0].withColumn`,
		},
		{
			name: "empty selectExpr",
			yaml: minimal + "transform:\n  - selectExpr: []\n",
			want: `line 4: transform[0].selectExpr: expected at least one expression`,
		},
		{
			name: "selectExpr element not a string",
			yaml: minimal + "transform:\n  - selectExpr:\n    - a\n    - {b: c}\n",
			want: `line 6: transform[0].selectExpr[1]: expected a string, got a mapping`,
		},
		{
			name: "blank filter",
			yaml: minimal + "transform:\n  - where: '  '\n",
			want: `line 4: transform[0].where: must not be empty`,
		},
		{
			name: "missing env var",
			yaml: "source:\n  format: kafka\n  options:\n    kafka.bootstrap.servers: ${KAFKA_BOOTSTRAP}\nsink: {format: console}\n",
			want: `line 4: source.options["kafka.bootstrap.servers"]: environment variable KAFKA_BOOTSTRAP is not set and has no default (use ${KAFKA_BOOTSTRAP:-default})`,
		},
		{
			name: "missing env var in a step",
			yaml: minimal + "transform:\n  - filter: \"x > ${MIN}\"\n",
			want: `line 4: transform[0].filter: environment variable MIN is not set and has no default (use ${MIN:-default})`,
		},
		{
			name: "unterminated reference",
			yaml: minimal + "name: ${NAME\n",
			want: `line 3: name: unterminated "${NAME" (missing "}"; write "$${" for a literal "${")`,
		},
		{
			name: "invalid reference",
			yaml: minimal + "name: ${1X}\n",
			want: `line 3: name: invalid variable reference "${1X}" (want ${NAME} or ${NAME:-default})`,
		},
		{
			name: "name and queryName differ",
			yaml: "name: a\nsource: {format: rate}\nsink: {format: console, queryName: b}\n",
			want: `line 3: sink.queryName "b" differs from name "a" (line 1); set only one`,
		},
		{
			name: "checkpoint locations differ",
			yaml: "source: {format: rate}\nsink:\n  format: console\n  options:\n    checkpointlocation: /b\ncheckpointLocation: /a\n",
			want: `line 6: checkpointLocation "/a" differs from sink.options["checkpointlocation"] "/b" (line 5); set only one`,
		},
		{
			name: "yaml syntax error",
			yaml: "source:\n  format: kafka\n options: x\n",
			// The YAML library reports the line where the enclosing
			// mapping starts, not the misindented line.
			want: `line 2: invalid YAML: did not find expected key`,
		},
		{
			name: "empty file",
			file: "e.yaml",
			yaml: "# nothing\n",
			want: `e.yaml: empty pipeline file`,
		},
		{
			name: "two documents",
			yaml: minimal + "---\n" + minimal,
			want: `line 3: a pipeline file holds one YAML document; remove the second "---"`,
		},
		{
			name: "top level is a list",
			yaml: "- source\n",
			want: `line 1: pipeline: expected a mapping, got a list`,
		},
		{
			name: "non-scalar key",
			yaml: minimal + "? [a]\n: b\n",
			want: `line 3: pipeline: keys must be plain names, got a list`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.file, []byte(tt.yaml), envOf(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error %q", f, tt.want)
			}
			if f != nil {
				t.Errorf("Parse returned a File with an error")
			}
			if err.Error() != tt.want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", err, tt.want)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T does not unwrap to *Error", err)
			}
			if pe.File != tt.file {
				t.Errorf("Error.File = %q, want %q", pe.File, tt.file)
			}
		})
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal)
	for i := range 30 {
		fmt.Fprintf(&b, "bad%d: x\n", i)
	}
	_, err := Parse("", []byte(b.String()), nil)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %T, want ErrorList", err)
	}
	if len(list) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(list), maxErrors+1)
	}
	if got := list[0].Error(); got != `line 3: unknown key "bad0" in pipeline (allowed: name, source, transform, sink, trigger, options, deadLetter, checkpointLocation)` {
		t.Errorf("first error = %s", got)
	}
	if got := list[maxErrors].Error(); got != "too many errors" {
		t.Errorf("last error = %q", got)
	}
}

func TestAliasBlowUpIsBounded(t *testing.T) {
	// 200 steps each aliasing the same 100 expressions: 20,100 values
	// once expanded, from a file of a few kilobytes.
	var b strings.Builder
	b.WriteString(minimal + "transform:\n  - selectExpr: &l0 [")
	for i := range 100 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "c%d", i)
	}
	b.WriteString("]\n")
	for range 200 {
		b.WriteString("  - selectExpr: *l0\n")
	}
	data := []byte(b.String())

	_, err := parse("", data, nil, 10_000)
	if err == nil || !strings.Contains(err.Error(), "file too large: more than 10000 values (after expanding aliases)") {
		t.Fatalf("budget 10000: err = %v, want a too-large error", err)
	}
	f, err := parse("", data, nil, 100_000)
	if err != nil {
		t.Fatalf("budget 100000: %v", err)
	}
	if len(f.Transform) != 201 || len(f.Transform[200].Exprs) != 100 || f.Transform[200].Exprs[99] != "c99" {
		t.Fatalf("got %d steps, last %+v", len(f.Transform), f.Transform[len(f.Transform)-1])
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join("testdata", "full.yaml")
	t.Setenv("SLUICE_TEST_TOPIC", "payments")
	f, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if f.Name != "orders-full" || f.CheckpointLocation != "/tmp/chk/orders-full" || f.Trigger.Kind != TriggerAvailableNow || len(f.Transform) != 4 {
		t.Errorf("Load = %+v", f)
	}
	if f.Path != path {
		t.Errorf("Path = %q, want %q", f.Path, path)
	}
	if got, _ := f.Source.Option("SUBSCRIBE"); got != "payments" {
		t.Errorf("subscribe = %q, want payments (from the environment)", got)
	}
	if s := f.Transform[2]; s.Kind != plan.Filter || s.Expr != "json IS NOT NULL" || f.Position(s.Line) != path+":16" {
		t.Errorf("step 2 = %+v at %q, want filter at %s:16", s, f.Position(s.Line), path)
	}
	if got := f.Source.OptionLine("maxoffsetspertrigger"); got != 9 {
		t.Errorf("OptionLine(maxoffsetspertrigger) = %d, want 9", got)
	}
	if got, ok := f.Option("SLUICE.WORKERS"); !ok || got != "2" {
		t.Errorf("Option(SLUICE.WORKERS) = %q, %v; want 2", got, ok)
	}
	if got, ok := f.DeadLetter.Option("Path"); !ok || got != "/tmp/dlq/orders" {
		t.Errorf("deadLetter path = %q, %v", got, ok)
	}
	if f.DeadLetter.OptionLine("path") != 25 {
		t.Errorf("deadLetter path line = %d, want 25", f.DeadLetter.OptionLine("path"))
	}
	if got := f.Sink.OptionLine("nope"); got != 0 {
		t.Errorf("OptionLine of a missing option = %d, want 0", got)
	}
	err = f.Errorf(f.Source.OptionLine("subscribe"), "kafka: %w", os.ErrInvalid)
	if err.Error() != path+":8: kafka: invalid argument" || !errors.Is(err, os.ErrInvalid) {
		t.Errorf("Errorf = %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "does-not-exist.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	path := filepath.Join("testdata", "bad.yaml")
	_, err = Load(path)
	wantLines := []string{
		path + `:3: missing required key "format" in sink`,
		path + `:4: unknown key "fromat" in sink; did you mean "format"? (allowed: format, outputMode, queryName, options)`,
	}
	if err == nil || err.Error() != strings.Join(wantLines, "\n") {
		t.Errorf("bad.yaml: err =\n%v\nwant\n%s", err, strings.Join(wantLines, "\n"))
	}
}

func TestLookup(t *testing.T) {
	opts := map[string]string{"maxOffsetsPerTrigger": "10", "subscribe": "t"}
	tests := []struct {
		name   string
		want   string
		wantOK bool
	}{
		{"maxOffsetsPerTrigger", "10", true},
		{"MAXOFFSETSPERTRIGGER", "10", true},
		{"maxoffsetspertrigger", "10", true},
		{"Subscribe", "t", true},
		{"subscribePattern", "", false},
	}
	for _, tt := range tests {
		got, ok := Lookup(opts, tt.name)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestPosition(t *testing.T) {
	tests := []struct {
		path string
		line int
		want string
	}{
		{"p.yaml", 3, "p.yaml:3"},
		{"p.yaml", 0, "p.yaml"},
		{"", 3, "line 3"},
		{"", 0, ""},
	}
	for _, tt := range tests {
		f := &File{Path: tt.path}
		if got := f.Position(tt.line); got != tt.want {
			t.Errorf("Position(%q, %d) = %q, want %q", tt.path, tt.line, got, tt.want)
		}
	}
}

// withoutColumns clears the column positions (and format/output-mode
// positions) of f.
func withoutColumns(f *File) {
	f.OptionColumns, f.CheckpointLine, f.CheckpointColumn = nil, 0, 0
	f.Source.OptionColumns, f.Source.Column, f.Source.FormatLine, f.Source.FormatColumn = nil, 0, 0, 0
	f.Sink.OptionColumns, f.Sink.Column, f.Sink.FormatLine, f.Sink.FormatColumn = nil, 0, 0, 0
	f.Sink.OutputModeLine, f.Sink.OutputModeColumn = 0, 0
	f.Trigger.Column = 0
	for i := range f.Transform {
		f.Transform[i].Column = 0
	}
	if f.DeadLetter != nil {
		f.DeadLetter.OptionColumns, f.DeadLetter.Column, f.DeadLetter.FormatLine, f.DeadLetter.FormatColumn = nil, 0, 0, 0
	}
}

// TestColumns: every key a later check may point at has its line and
// column, and parse errors carry the column of the key at fault.
func TestColumns(t *testing.T) {
	src := `name: q
source:
  format: kafka
  options:
    subscribe: t
    "kafka.bootstrap.servers": b
transform:
  - selectExpr: [a]
  -   filter: "a > 1"
sink:
  format:   console
  outputMode: update
  options: {numRows: 5, truncate: "false"}
trigger:
  processingTime: 1 second
options:
  sluice.workers: 2
deadLetter:
  format: json
  options:
    path: /tmp/dl
checkpointLocation: /tmp/c
`
	f, err := Parse("p.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	type pos struct{ line, col int }
	for _, c := range []struct {
		what      string
		got, want pos
	}{
		{"source", pos{f.Source.Line, f.Source.Column}, pos{2, 1}},
		{"source format", pos{f.Source.FormatLine, f.Source.FormatColumn}, pos{3, 11}},
		{"subscribe", pos{f.Source.OptionLines["subscribe"], f.Source.OptionColumns["subscribe"]}, pos{5, 5}},
		{"quoted bootstrap", pos{f.Source.OptionLines["kafka.bootstrap.servers"], f.Source.OptionColumns["kafka.bootstrap.servers"]}, pos{6, 5}},
		{"step 0", pos{f.Transform[0].Line, f.Transform[0].Column}, pos{8, 5}},
		{"step 1", pos{f.Transform[1].Line, f.Transform[1].Column}, pos{9, 7}},
		{"sink format", pos{f.Sink.FormatLine, f.Sink.FormatColumn}, pos{11, 13}},
		{"output mode", pos{f.Sink.OutputModeLine, f.Sink.OutputModeColumn}, pos{12, 15}},
		{"flow option", pos{f.Sink.OptionLines["truncate"], f.Sink.OptionColumns["truncate"]}, pos{13, 25}},
		{"trigger", pos{f.Trigger.Line, f.Trigger.Column}, pos{15, 3}},
		{"conf", pos{f.OptionLines["sluice.workers"], f.OptionColumns["sluice.workers"]}, pos{17, 3}},
		{"dead-letter path", pos{f.DeadLetter.OptionLines["path"], f.DeadLetter.OptionColumns["path"]}, pos{21, 5}},
		{"checkpoint", pos{f.CheckpointLine, f.CheckpointColumn}, pos{22, 1}},
	} {
		if c.got != c.want {
			t.Errorf("%s at %v, want %v", c.what, c.got, c.want)
		}
	}

	_, err = Parse("p.yaml", []byte("source:\n  format: rate\n  fromat: x\nsink:\n  format: noop\ntransform:\n  -  bogus: 1\n"), nil)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("err = %v", err)
	}
	if got := []string{list[0].Pos(), list[1].Pos()}; got[0] != "p.yaml:3:3" || got[1] != "p.yaml:7:6" {
		t.Errorf("positions %v, want p.yaml:3:3 and p.yaml:7:6", got)
	}
}
