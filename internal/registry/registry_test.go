package registry

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/source"
)

// minimal are the smallest valid option sets of every format, checked
// without connecting or touching the disk.
var minimal = map[string]map[string]string{
	"source/kafka":            {"kafka.bootstrap.servers": "localhost:9092", "subscribe": "t"},
	"source/eventhubs":        {"eventhubs.connectionString": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s;EntityPath=h"},
	"source/rate":             {},
	"source/rate-micro-batch": {"rowsPerBatch": "10"},
	"source/socket":           {"host": "localhost", "port": "9999"},
	"source/text":             {"path": "/tmp/in"},
	"source/json":             {"path": "/tmp/in", "schema": "a INT"},
	"source/csv":              {"path": "/tmp/in", "schema": "a INT"},
	"sink/console":            {},
	"sink/noop":               {},
	"sink/memory":             {},
	"sink/parquet":            {"path": "/tmp/out"},
	"sink/json":               {"path": "/tmp/out"},
	"sink/csv":                {"path": "/tmp/out"},
	"sink/delta":              {"path": "/tmp/out"},
	"sink/kafka":              {"kafka.bootstrap.servers": "localhost:9092"},
	"sink/foreachBatch":       {},
}

func without(m map[string]string, k string) map[string]string {
	out := map[string]string{}
	for kk, v := range m {
		if kk != k {
			out[kk] = v
		}
	}
	return out
}

// TestFormatsFullyDescribed: every listed format has a valid option spec,
// its functions and, for sinks, output modes; its minimal options check
// clean; and leaving out any option its spec calls required is an error
// naming that option (so "required" in the reference is true).
func TestFormatsFullyDescribed(t *testing.T) {
	if len(sources) != 8 || len(sinks) != 9 {
		t.Errorf("%d sources, %d sinks; want 8 and 9", len(sources), len(sinks))
	}
	for _, f := range sources {
		t.Run("source/"+f.Name, func(t *testing.T) {
			if f.Options == nil || f.Schema == nil || f.Open == nil || f.Summary == "" || f.SchemaDoc == "" {
				t.Fatalf("source format %q is not fully described", f.Name)
			}
			if err := f.Options.Validate(); err != nil {
				t.Fatal(err)
			}
			opts, ok := minimal["source/"+f.Name]
			if !ok {
				t.Fatalf("no minimal options for %s", f.Name)
			}
			check := func(opts map[string]string) error {
				v, err := ReadSource(f, opts)
				if err != nil {
					return err
				}
				_, err = f.Schema(v, source.Env{})
				return err
			}
			if err := check(opts); err != nil {
				t.Fatalf("minimal options: %v", err)
			}
			for _, fl := range f.Options.Fields {
				if fl.Required {
					if err := check(without(opts, fl.Name)); err == nil || !strings.Contains(err.Error(), fl.Name) {
						t.Errorf("without required %s: err = %v", fl.Name, err)
					}
				}
			}
		})
	}
	for _, f := range sinks {
		t.Run("sink/"+f.Name, func(t *testing.T) {
			if f.Options == nil || f.Validate == nil || f.Open == nil || f.Summary == "" || len(f.OutputModes) == 0 {
				t.Fatalf("sink format %q is not fully described", f.Name)
			}
			for _, m := range f.OutputModes {
				if !slices.Contains(OutputModes(), m) {
					t.Errorf("unknown output mode %q", m)
				}
			}
			if err := f.Options.Validate(); err != nil {
				t.Fatal(err)
			}
			opts := minimal["sink/"+f.Name]
			check := func(opts map[string]string) error {
				v, err := ReadSink(f, opts)
				if err != nil {
					return err
				}
				return f.Validate(v)
			}
			if err := check(opts); err != nil {
				t.Fatalf("minimal options: %v", err)
			}
			for _, fl := range f.Options.Fields {
				if fl.Required {
					if err := check(without(opts, fl.Name)); err == nil || !strings.Contains(err.Error(), fl.Name) {
						t.Errorf("without required %s: err = %v", fl.Name, err)
					}
				}
			}
		})
	}
	for _, s := range []*options.Spec{QueryOptions, AdmissionOptions, SessionConf} {
		if err := s.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestLookup(t *testing.T) {
	if f, err := Source("KAFKA"); err != nil || f.Name != "kafka" {
		t.Errorf("Source(KAFKA) = %v, %v", f.Name, err)
	}
	for _, tc := range []struct {
		lookup func() error
		want   string
	}{
		// Spark's condition and text, then sluice's suggestion.
		{func() error { _, err := Source("kafak"); return err }, `[DATA_SOURCE_NOT_FOUND] Failed to find the data source: kafak. Make sure the provider name is correct ` +
			`and the package is properly registered and compatible with your Spark version. ` +
			`(unknown source format "kafak"; did you mean "kafka"?; allowed: kafka, eventhubs, rate, rate-micro-batch, socket, text, json, csv)`},
		{func() error { _, err := Source(""); return err }, "the source has no format; call Format (allowed: kafka,"},
		{func() error { _, err := Sink("parquett"); return err }, `[DATA_SOURCE_NOT_FOUND] Failed to find the data source: parquett.`},
		{func() error { _, err := Sink("parquett"); return err }, `(unknown sink format "parquett"; did you mean "parquet"?`},
		{func() error { _, _, err := Format("deltta"); return err }, `(unknown format "deltta"; did you mean "delta"?`},
	} {
		if err := tc.lookup(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want it to contain %q", err, tc.want)
		}
	}
	src, snk, err := Format("json")
	if err != nil || src == nil || snk == nil {
		t.Errorf("Format(json) = %v %v %v; want both a source and a sink", src, snk, err)
	}
}

// TestQueryOptionsAcceptedOnce: the query's options are accepted by every
// sink's check, typed once, and their typos get suggestions.
func TestQueryOptionsAcceptedOnce(t *testing.T) {
	f, _ := Sink("parquet")
	v, err := ReadSink(f, map[string]string{"path": "/tmp/o", "checkpointLocation": "/tmp/c", "sluice.workers": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Int64("sluice.workers") != 3 || v.String("checkpointLocation") != "/tmp/c" {
		t.Errorf("workers %d, checkpoint %q", v.Int64("sluice.workers"), v.String("checkpointLocation"))
	}
	probs := SinkProblems(f, map[string]string{"path": "/tmp/o", "checkpointLocaton": "/c", "sluice.workers": "-1"})
	if len(probs) != 2 {
		t.Fatalf("problems = %v", probs)
	}
	var ue *options.UnknownError
	if !errors.As(probs[0], &ue) || ue.Suggestion != "checkpointLocation" {
		t.Errorf("first problem %v, want an unknown option suggesting checkpointLocation", probs[0])
	}
	if want := `option "sluice.workers": invalid value "-1"; allowed: a non-negative integer (0 = number of CPUs)`; probs[1].Error() != want {
		t.Errorf("second problem %q, want %q", probs[1], want)
	}
	src, _ := Source("rate")
	v, err = ReadSource(src, map[string]string{"sluice.admission": "ADAPTIVE", "sluice.maxLagSeconds": "2.5"})
	if err != nil {
		t.Fatal(err)
	}
	if a := ReadAdmission(v); a.Mode != "adaptive" || a.MaxLagSeconds != 2.5 {
		t.Errorf("admission = %+v", a)
	}
}

// Issue 15 item 11: a misspelled kafka.* option passed through silently
// (Spark hands kafka.* to the Java client, which only logs a warning). A
// name under kafka. that is neither an option of the format nor a Kafka
// client setting (Java or librdkafka name) is an unknown option with the
// closest name; a client setting the format does not use is accepted and
// listed by PassedThrough, which the source and sink log as a warning.
func TestKafkaPassThroughNamesChecked(t *testing.T) {
	for _, tc := range []struct {
		format, option, suggestion string
	}{
		{"source/kafka", "kafka.sasl.pasword", "kafka.sasl.password"},
		{"source/kafka", "kafka.security.protocl", "kafka.security.protocol"},
		{"source/kafka", "kafka.max.pol.records", "kafka.max.poll.records"},
		{"source/kafka", "kafka.fetch.max.wait", "kafka.fetch.max.wait.ms"},
		{"sink/kafka", "kafka.sasl.pasword", "kafka.sasl.password"},
		{"sink/kafka", "kafka.lingr.ms", "kafka.linger.ms"},
		{"sink/kafka", "KAFKA.Compresion.Type", "kafka.compression.type"},
	} {
		kind, name, _ := strings.Cut(tc.format, "/")
		spec := optionsSpec(t, kind, name)
		opts := map[string]string{}
		for k, v := range minimal[tc.format] {
			opts[k] = v
		}
		opts[tc.option] = "x"
		probs := spec.Problems(opts, also(kind)...)
		var ue *options.UnknownError
		if len(probs) != 1 || !errors.As(probs[0], &ue) || ue.Option != tc.option || ue.Suggestion != tc.suggestion {
			t.Errorf("%s %s: problems %v, want one unknown option suggesting %q", tc.format, tc.option, probs, tc.suggestion)
			continue
		}
		if msg := probs[0].Error(); !strings.Contains(msg, "Kafka client settings") {
			t.Errorf("%s: %q does not say what kafka.* names must be", tc.format, msg)
		}
	}
	for _, tc := range []struct {
		format string
		names  []string
	}{
		{"source/kafka", []string{"kafka.max.poll.records", "kafka.max.poll.interval.ms", "kafka.Group.Id", "kafka.queued.min.messages"}},
		{"sink/kafka", []string{"kafka.max.in.flight.requests.per.connection", "kafka.retries", "kafka.queue.buffering.max.ms"}},
	} {
		kind, name, _ := strings.Cut(tc.format, "/")
		spec := optionsSpec(t, kind, name)
		opts := map[string]string{}
		for k, v := range minimal[tc.format] {
			opts[k] = v
		}
		for _, n := range tc.names {
			opts[n] = "1"
		}
		if probs := spec.Problems(opts, also(kind)...); len(probs) > 0 {
			t.Errorf("%s: client settings refused: %v", tc.format, probs)
		}
		names := make([]string, 0, len(opts))
		for k := range opts {
			names = append(names, k)
		}
		got, want := spec.PassedThrough(names), slices.Sorted(slices.Values(tc.names))
		if !slices.Equal(got, want) {
			t.Errorf("%s: PassedThrough = %v, want %v", tc.format, got, want)
		}
	}
}

func optionsSpec(t *testing.T, kind, name string) *options.Spec {
	t.Helper()
	if kind == "source" {
		f, err := Source(name)
		if err != nil {
			t.Fatal(err)
		}
		return f.Options
	}
	f, err := Sink(name)
	if err != nil {
		t.Fatal(err)
	}
	return f.Options
}

func also(kind string) []*options.Spec {
	if kind == "source" {
		return []*options.Spec{AdmissionOptions}
	}
	return []*options.Spec{QueryOptions}
}
