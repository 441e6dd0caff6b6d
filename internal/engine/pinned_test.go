package engine

import (
	"log/slog"
	"testing"

	"github.com/sluice-stream/sluice/internal/state"
)

// The checkpoint's pinned settings win over the session's; keys an older
// checkpoint lacks take Spark's fallbacks (or the session's value when
// Spark has none).
func TestResolveConf(t *testing.T) {
	session := map[string]string{
		ConfShufflePartitions: "7", ConfWatermarkPolicy: "max", ConfAggStateFormat: "2", "spark.sql.ansi.enabled": "true",
	}
	cases := []struct {
		name   string
		pinned map[string]string // nil: a new query
		want   map[string]string
	}{
		{"new query: the session's values and the defaults", nil, map[string]string{
			ConfShufflePartitions: "7", ConfWatermarkPolicy: "max", ConfStateProvider: state.SparkHDFSProviderClass,
			ConfAggStateFormat: "2", ConfStrictDistribution: "true", ConfStateCodec: "lz4", "spark.sql.ansi.enabled": "true"}},
		{"the checkpoint wins", map[string]string{ConfShufflePartitions: "3", ConfWatermarkPolicy: "min",
			ConfStateProvider: state.SparkRocksDBProviderClass, ConfAggStateFormat: "2", ConfJoinStateFormat: "2", ConfFMGSStateFormat: "2",
			ConfStateCodec: "lz4", ConfStrictDistribution: "true"}, map[string]string{
			ConfShufflePartitions: "3", ConfWatermarkPolicy: "min", ConfStateProvider: state.SparkRocksDBProviderClass}},
		{"an old checkpoint: Spark's fallbacks", map[string]string{ConfShufflePartitions: "4"}, map[string]string{
			ConfShufflePartitions: "4", ConfWatermarkPolicy: "min", ConfAggStateFormat: "1", ConfJoinStateFormat: "1",
			ConfFMGSStateFormat: "1", ConfStrictDistribution: "false", ConfStateCodec: "lz4",
			// No fallback in Spark: the session's (here the default).
			ConfStateProvider: state.SparkHDFSProviderClass}},
		{"no recorded partitions: the session's", map[string]string{ConfWatermarkPolicy: "max"}, map[string]string{
			ConfShufflePartitions: "7", ConfWatermarkPolicy: "max"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &Query{cfg: Config{Conf: session}, log: slog.New(slog.DiscardHandler), pinned: c.pinned, hasPinned: c.pinned != nil}
			got := q.resolveConf()
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}
