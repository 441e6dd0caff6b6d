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

// A stateful query holds back the exchange's buffer and its state: the
// whole state share until a batch of the run measured the state, then the
// memory provider's measured size once per version a batch keeps cached
// (maxBatchesToRetainInMemory − 1, at least 1; capped at the share) with
// an entry's size per admitted record; the disk provider's whole share
// always.
func TestStateReservation(t *testing.T) {
	const budget = 128 << 20
	q := &Query{}
	q.settings.stateBudget, q.settings.shuffleSize = StateShare(budget), ShuffleShare(budget)
	q.settings.state = state.DefaultConfig()
	q.stateReserve = q.settings.stateBudget + q.settings.shuffleSize
	if r, per := q.stateReservation(); r != q.stateReserve || per != 0 {
		t.Fatalf("before a batch: %d, %d; want the whole share %d", r, per, q.stateReserve)
	}
	q.stateBytes, q.stateRows, q.stateMeasured = 0, 0, true
	if r, per := q.stateReservation(); r != q.settings.shuffleSize || per != InitialStateEntryBytes {
		t.Fatalf("empty state: %d, %d; want %d, %d", r, per, q.settings.shuffleSize, InitialStateEntryBytes)
	}
	q.stateBytes, q.stateRows = 9<<20, 9<<20/160
	if r, per := q.stateReservation(); r != q.settings.shuffleSize+9<<20 || per != 160 {
		t.Fatalf("9 MiB of state: %d, %d; want %d, 160", r, per, q.settings.shuffleSize+9<<20)
	}
	q.settings.state.MaxBatchesToRetainInMemory = 3
	if r, _ := q.stateReservation(); r != q.settings.shuffleSize+18<<20 {
		t.Fatalf("9 MiB of state, 3 versions retained: %d, want %d", r, q.settings.shuffleSize+18<<20)
	}
	q.settings.state.MaxBatchesToRetainInMemory = 0
	if r, _ := q.stateReservation(); r != q.settings.shuffleSize+9<<20 {
		t.Fatalf("9 MiB of state, no cache: %d, want %d", r, q.settings.shuffleSize+9<<20)
	}
	q.settings.state.MaxBatchesToRetainInMemory = 2
	q.stateBytes = 70 << 20
	if r, _ := q.stateReservation(); r != q.stateReserve {
		t.Fatalf("state over half its share: %d, want the share capped at %d", r, q.stateReserve)
	}
	q.settings.state.Provider = state.DiskProvider
	q.stateBytes = 1 << 20
	if r, per := q.stateReservation(); r != q.stateReserve || per != 0 {
		t.Fatalf("disk provider: %d, %d; want the whole share %d", r, per, q.stateReserve)
	}
	q.stateReserve = 0 // a stateless query, or no budget
	if r, per := q.stateReservation(); r != 0 || per != 0 {
		t.Fatalf("no reserve: %d, %d", r, per)
	}
}
