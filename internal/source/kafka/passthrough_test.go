package kafka_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/testutil"
)

// A Kafka client setting the source does not use is accepted and named in
// a warning when the source opens; a misspelled one is refused.
func TestPassThroughSettingsWarned(t *testing.T) {
	opts := map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1", "subscribe": "t",
		"kafka.max.poll.records": "100", "kafka.receive.buffer.bytes": "65536"}
	v, err := kafka.Spec.Read(opts)
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	src, err := kafka.Format.Open(v, source.Env{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got := src.(*kafka.Source).Config().Ignored; !slices.Equal(got, []string{"kafka.max.poll.records", "kafka.receive.buffer.bytes"}) {
		t.Errorf("Ignored = %v", got)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "kafka.max.poll.records") {
		t.Errorf("log %q lacks the warning", l)
	}
	opts["kafka.sasl.pasword"] = "Hunter2"
	_, err = kafka.ParseConfig(opts)
	if options.OptionOf(err) != "kafka.sasl.pasword" || !strings.Contains(err.Error(), `did you mean "kafka.sasl.password"`) {
		t.Errorf("misspelled setting: err = %v", err)
	}
}
