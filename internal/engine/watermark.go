package engine

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/internal/watermark"
)

// Spark's settings a checkpoint pins: written to every offsets/N, and on
// restart the checkpoint's value wins over the session's.
const (
	ConfShufflePartitions   = "spark.sql.shuffle.partitions"
	ConfWatermarkPolicy     = "spark.sql.streaming.multipleWatermarkPolicy"
	ConfStateProvider       = state.OptProviderClass
	ConfAggStateFormat      = "spark.sql.streaming.aggregation.stateFormatVersion"
	ConfJoinStateFormat     = "spark.sql.streaming.join.stateFormatVersion"
	ConfFMGSStateFormat     = "spark.sql.streaming.flatMapGroupsWithState.stateFormatVersion"
	ConfStateCodec          = state.OptCompressionCodec
	ConfStrictDistribution  = "spark.sql.streaming.statefulOperator.useStrictDistribution"
	ConfNoDataMicroBatches  = "spark.sql.streaming.noDataMicroBatches.enabled"
	ConfShuffleBufferSize   = "sluice.shuffle.bufferSize"
	DefaultShufflePartition = 200
	// DefaultShuffleBuffer bounds the exchange when the query has no memory
	// budget.
	DefaultShuffleBuffer = 64 << 20
)

// pinnedConfs are the pinned keys with the value a new query records when
// the session sets none, and the value Spark substitutes when an older
// checkpoint lacks the key ("" = no fallback: the session's value is used,
// with a warning).
var pinnedConfs = []struct{ key, def, missing string }{
	{ConfShufflePartitions, strconv.Itoa(DefaultShufflePartition), ""},
	{ConfWatermarkPolicy, "min", "min"},
	{ConfStateProvider, state.SparkHDFSProviderClass, ""},
	{ConfAggStateFormat, "2", "1"},
	{ConfJoinStateFormat, "2", "1"},
	{ConfFMGSStateFormat, "2", "1"},
	{ConfStateCodec, "lz4", "lz4"},
	{ConfStrictDistribution, "true", "false"},
}

// settings are the query's resolved stateful settings.
type settings struct {
	partitions  int
	policy      watermark.Policy
	noData      bool
	state       state.Config
	stateBudget int64 // 0: none
	shuffleSize int64
}

// resolveConf merges the session conf with the conf the checkpoint
// pinned: for every pinned key the checkpoint's value wins; a key an older
// checkpoint lacks takes Spark's fallback (or the session's value, with a
// warning). The result is what every offsets/N of this run records.
func (q *Query) resolveConf() map[string]string {
	conf := map[string]string{}
	for k, v := range q.cfg.Conf {
		conf[k] = v
	}
	for _, p := range pinnedConfs {
		session, set := lookupFold(q.cfg.Conf, p.key)
		if !set {
			session = p.def
		}
		deleteFold(conf, p.key)
		conf[p.key] = session
		if !q.hasPinned {
			continue
		}
		if v, ok := lookupFold(q.pinned, p.key); ok {
			if v != session && set {
				q.log.Warn("the checkpoint's value of a pinned setting wins over the session's", "key", p.key, "checkpoint", v, "session", session)
			}
			conf[p.key] = v
		} else if p.missing != "" {
			conf[p.key] = p.missing
		} else if q.cfg.Stateful != nil {
			q.log.Warn("the checkpoint does not record a pinned setting; using the session's", "key", p.key, "value", session)
		}
	}
	return conf
}

func lookupFold(m map[string]string, key string) (string, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

func deleteFold(m map[string]string, key string) {
	for k := range m {
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
}

// initStateful resolves the pinned conf and prepares the watermark
// tracker and, for a stateful query, its state stores.
func (q *Query) initStateful() error {
	q.conf = q.resolveConf()
	n, err := strconv.Atoi(q.conf[ConfShufflePartitions])
	if err != nil || n < 1 {
		return &options.Error{Option: ConfShufflePartitions, Value: q.conf[ConfShufflePartitions], Allowed: "allowed: a positive number of partitions"}
	}
	policy, err := watermark.ParsePolicy(q.conf[ConfWatermarkPolicy])
	if err != nil {
		return fmt.Errorf("%s: %w", ConfWatermarkPolicy, err)
	}
	noData := true
	if v, ok := lookupFold(q.cfg.Conf, ConfNoDataMicroBatches); ok {
		if noData, err = strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			return &options.Error{Option: ConfNoDataMicroBatches, Value: v, Allowed: "allowed: true, false"}
		}
	}
	q.settings = settings{partitions: n, policy: policy, noData: noData}
	q.tracker = watermark.NewTracker(policy)
	q.tracker.SetGlobal(q.recoveredWm)
	if q.cfg.Stateful == nil {
		return nil
	}
	sc, err := state.ParseConfig(q.conf)
	if err != nil {
		return err
	}
	if v, ok := lookupFold(q.cfg.Conf, state.OptMinBatchesToRetain); ok {
		if m, err := strconv.Atoi(v); err == nil && m > 0 {
			q.cfg.MinBatchesToRetain = m
		}
	}
	budget := q.Limits().MemoryBudget
	q.settings.shuffleSize = DefaultShuffleBuffer
	if v, ok := lookupFold(q.cfg.Conf, ConfShuffleBufferSize); ok {
		size, err := options.ParseBytes(v)
		if err != nil || size <= 0 {
			return &options.Error{Option: ConfShuffleBufferSize, Value: v, Allowed: `allowed: a size such as "64MiB"`}
		}
		q.settings.shuffleSize = size
	}
	if budget > 0 {
		// State takes half the budget, the exchange an eighth; admission
		// plans batches in what is left beside the source's buffers.
		q.settings.stateBudget = StateShare(budget)
		q.settings.shuffleSize = min(q.settings.shuffleSize, ShuffleShare(budget))
		sc.Budget = state.NewBudget(q.settings.stateBudget)
		if sc.Provider == state.DiskProvider {
			if _, set := lookupFold(q.cfg.Conf, state.OptDiskMemory); !set {
				sc.DiskMemory = max(state.MinDiskMemory, q.settings.stateBudget/int64(n))
			}
			// Every partition's disk store takes its allowance when it
			// opens: say so now rather than fail in the first batch.
			if need := sc.DiskMemory * int64(n); need > q.settings.stateBudget {
				return fmt.Errorf("the disk state store takes %s per shuffle partition (%s): %d partitions need %s, over the state share (half) of sluice.memory.budget, %s; "+
					"lower spark.sql.shuffle.partitions, lower %s or raise sluice.memory.budget",
					state.FormatBytes(sc.DiskMemory), state.OptDiskMemory, n, state.FormatBytes(need), state.FormatBytes(q.settings.stateBudget), state.OptDiskMemory)
			}
		}
		q.stateReserve = q.settings.stateBudget + q.settings.shuffleSize
	} else {
		sc.Budget = state.NewBudget(0) // unlimited, still counted
	}
	q.settings.state = sc
	q.states = newStateStores(q.cp.StateStore(), q.cfg.Stateful.Operators(), sc, n)
	// A query whose first batch is batch 0 starts from state version 0,
	// which is empty whatever files a failed run left (versions past the
	// one a batch opens are never served): its state is measured — nothing
	// — and the first batch need not hold back the whole state share.
	q.stateBytes, q.stateRows, q.stateMeasured = 0, 0, q.nextBatch == 0
	if sc.SchemaCheck {
		// A query changed in a way its state cannot follow fails here, at
		// start, rather than in its first batch.
		for i, op := range q.cfg.Stateful.Operators() {
			if _, err := state.CheckSchema(q.states.files, i, op.Schemas); err != nil {
				return fmt.Errorf("state operator %d (%s): %w", i, op.Name, err)
			}
		}
	}
	return nil
}

// stateReservation is what a stateful query holds back from the budget
// when a batch is planned, and the memory each admitted record may add to
// the state. The exchange's buffer is always held back. The disk
// provider's stores take their allowance when they open, so its whole
// share is. The memory provider's state is held back at its measured
// size, once per version the batch keeps cached (one at Spark's default
// maxBatchesToRetainInMemory of 2: the version before the batch's base,
// which still held what the last batch evicted, is retired as the batch
// starts), and each record may add one entry of the measured
// average size (InitialStateEntryBytes before there is any): the batch's
// rows and the state they may add fit in the budget together, and
// admission follows the state as it grows or shrinks, where holding back
// the whole share starved batches of a query whose state is small. Until
// a batch of this run committed, the whole share is held back (state
// restored from the checkpoint is not measured yet), unless the run starts
// at batch 0, whose state is empty. While the last batch's state commits
// in the background, what that batch may have added (stateGrowth) is held
// back too.
func (q *Query) stateReservation() (reserve, perRecord int64) {
	if q.stateReserve == 0 {
		return 0, 0
	}
	if q.settings.state.Provider != state.MemoryProvider || !q.stateMeasured {
		return q.stateReserve, 0
	}
	perRecord = InitialStateEntryBytes
	if q.stateRows > 0 {
		perRecord = max(1, q.stateBytes/q.stateRows)
	}
	// The versions a batch holds in memory: its base and, with
	// maxBatchesToRetainInMemory above 2, older ones; the one before the
	// base is retired as the batch starts (state.Retirer).
	versions := int64(max(1, q.settings.state.MaxBatchesToRetainInMemory-1))
	return q.settings.shuffleSize + min(q.settings.stateBudget, versions*q.stateBytes+q.stateGrowth), perRecord
}

// InitialStateEntryBytes is the state entry size admission assumes before
// the state holds any entry.
const InitialStateEntryBytes = 256

// StateShare is the part of a memory budget state stores may hold: half.
func StateShare(budget int64) int64 { return budget / 2 }

// ShuffleShare is the part of a memory budget the exchange may buffer.
func ShuffleShare(budget int64) int64 { return budget / 8 }

// needsNoDataBatch reports whether the watermark moved past the one the
// last executed batch used while a stateful operator would act on it.
func (q *Query) needsNoDataBatch() bool {
	return q.cfg.Stateful != nil && q.settings.noData && q.ranBatch &&
		q.cfg.Stateful.NoDataBatches() && q.tracker.Global() > q.lastUsedWm
}

// updateWatermark folds the batch's event times into the tracker: the
// result is the next batch's watermark (commits/N nextBatchWatermarkMs).
func (q *Query) updateWatermark(info *BatchInfo) {
	if q.cfg.Watermarks == nil {
		info.NextWatermarkMs = q.tracker.Global()
		return
	}
	stats := q.cfg.Watermarks.Collect()
	info.NextWatermarkMs = q.tracker.Update(stats, q.cfg.Watermarks.Delays())
	info.EventTime = &EventTimeInfo{WatermarkMs: info.WatermarkMs}
	if len(stats) > 0 {
		info.EventTime.Stats = stats[0]
	}
}
