package admission

import (
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

// Input is everything one batch is planned from. Plan reads nothing else:
// no clock, no source, no global state.
type Input struct {
	// BatchID is the batch being planned; it rotates Split's tie-breaks,
	// so a batch re-planned with the same inputs gets the same ranges.
	BatchID int64
	// Now is the engine's clock at planning (maxTriggerDelay is measured
	// on it).
	Now time.Time
	// Once is true under Trigger.Once, which ignores read limits (the
	// memory budget still applies).
	Once bool
	// Limits are the settings in force (after any SetLimits).
	Limits Limits
	// Start and Latest are what a partitioned source reported
	// (source.Partitioned.Available): where the batch starts on every
	// partition and the latest offsets. Both nil for a Limited source.
	Start, Latest partition.Offsets
	// History is what earlier batches of this run measured.
	History History
	// LagSeconds is the query's current time lag (0 or NaN if unknown),
	// for adaptive admission's maxLagSeconds.
	LagSeconds float64
	// Reserved is memory of the budget held by others besides the fetch
	// buffers (a sink's upload buffers, sink.Budgeted): batches get what
	// is left.
	Reserved int64
	// ExtraBytesPerRecord is memory each admitted record may add that the
	// batch's measured size does not show and that outlives the batch's
	// rows (a stateful query's state: an entry per new key). The budget
	// limit divides the room by the measured bytes per record plus it.
	ExtraBytesPerRecord int64
}

// Decision is the plan of one batch: how much it may take and why.
type Decision struct {
	// Mode is ModeStatic or ModeAdaptive.
	Mode string
	// Limit is the records the batch may admit at most; 0 = no limit.
	Limit int64
	// Reason says what set the limit ("maxOffsetsPerTrigger",
	// "adaptive: estimate", "memory budget", ...): progress
	// sluice.admission.reason and offsets/N conf.
	Reason string
	// Target, CostPerRecord and Overhead are adaptive admission's aim and
	// estimates (zero in static mode).
	Target        time.Duration
	CostPerRecord time.Duration
	Overhead      time.Duration
	// Limits are the settings the batch was planned under.
	Limits Limits

	// ReadLimit is what a Limited source must honour: Limit as MaxRows,
	// plus the file source's caps.
	ReadLimit source.ReadLimit
	// End is a partitioned source's batch end (Input.Start when Delayed).
	End partition.Offsets
	// Delayed is true when minOffsetsPerTrigger holds the batch back: too
	// few records are available and maxTriggerDelay has not passed.
	Delayed bool
	// Released is true when the minOffsetsPerTrigger check let this
	// trigger through; the caller records Input.Now as
	// History.LastRelease (Spark's lastTriggerMillis).
	Released bool
	// Bound is true when the limit decided how far the batch reads: it
	// ends short of what is available (partitioned sources; the engine
	// sets it for limited sources, which cut their own batches).
	Bound bool
}

// History is what admission remembers between batches of one run (Spark
// too keeps lastTriggerMillis in memory only: a restart starts afresh).
type History struct {
	// Batches are the most recent batches' measurements, oldest first (at
	// most HistorySize).
	Batches []BatchStat
	// LastRelease is when minOffsetsPerTrigger last let a batch through;
	// zero before the first, so the first check never delays.
	LastRelease time.Time
}

// HistorySize is how many batches History keeps.
const HistorySize = 16

// Add appends a finished batch, dropping the oldest beyond HistorySize.
func (h *History) Add(s BatchStat) {
	h.Batches = append(h.Batches, s)
	if n := len(h.Batches); n > HistorySize {
		h.Batches = append(h.Batches[:0:0], h.Batches[n-HistorySize:]...)
	}
}

// BufferShare is the part of a memory budget held back for the source's
// buffers (Kafka fetch buffers, socket lines): a quarter. The planner
// admits records into the rest; sources size their buffers to it
// (source.Budgeted).
func BufferShare(budget int64) int64 { return budget / 4 }

// InitialBytesPerRecord is assumed under a memory budget before any batch
// has measured the in-memory size of a record.
const InitialBytesPerRecord = 2048

// Plan decides one batch. It is a pure function of its input:
//
//  1. The record cap: none under Trigger.Once; adaptive admission's choice
//     (bounded by min/maxOffsetsPerTrigger); maxOffsetsPerTrigger; or, when
//     that is unset, the source's per-partition default times the
//     partitions of Latest.
//  2. The memory budget lowers the cap to what fits beside BufferShare
//     and what others reserved (Input.Reserved: sink upload buffers, a
//     stateful query's state and exchange), at the bytes per record
//     measured on recent batches.
//  3. minOffsetsPerTrigger (partitioned sources, not under Once): fewer
//     new records than that within maxTriggerDelay of the last release
//     delay the batch, as Spark's delayBatch does.
//  4. Partitioned sources: Split spreads the cap over the partitions by
//     backlog, rotating ties by BatchID.
//
// Limited sources get the cap and the file caps in ReadLimit and cut the
// batch themselves: their offsets (files, whole seconds, lines) are not
// records per partition, so only they know where a batch can end.
// minOffsetsPerTrigger is a Kafka option in Spark and applies to
// partitioned sources only; the per-partition default needs partitions.
func Plan(in Input) Decision {
	lim := in.Limits
	d := Decision{Mode: lim.Mode, Limits: lim, Target: lim.Target()}
	maxRows, maxReason := lim.MaxOffsetsPerTrigger, "maxOffsetsPerTrigger"
	if maxRows == 0 && lim.DefaultMaxPerPartition > 0 && len(in.Latest) > 0 {
		maxRows = int64(len(in.Latest)) * lim.DefaultMaxPerPartition
		maxReason = fmt.Sprintf("default limit: %d per partition × %d partitions", lim.DefaultMaxPerPartition, len(in.Latest))
	}
	files, bytes := lim.MaxFilesPerTrigger, lim.MaxBytesPerTrigger
	switch {
	case in.Once:
		files, bytes = 0, 0
		d.Reason = "all available (Trigger.Once ignores read limits)"
	case lim.Mode == ModeAdaptive:
		a := Adaptive(AdaptiveConfig{
			Target: lim.Target(), Min: lim.MinOffsetsPerTrigger, Max: maxRows, MaxLagSeconds: lim.MaxLagSeconds,
		}, in.History.Batches, in.LagSeconds)
		d.Limit = a.Limit
		d.Reason, d.CostPerRecord, d.Overhead, d.Target = "adaptive: "+a.Reason, a.CostPerRecord, a.Overhead, a.Target
	case maxRows > 0:
		d.Limit, d.Reason = maxRows, maxReason
	case bytes > 0:
		d.Reason = "maxBytesPerTrigger"
	case files > 0:
		d.Reason = "maxFilesPerTrigger"
	default:
		d.Reason = "all available"
	}
	if lim.MemoryBudget > 0 {
		reserve := BufferShare(lim.MemoryBudget) + in.Reserved
		b := BudgetLimit(lim.MemoryBudget, reserve, in.ExtraBytesPerRecord, in.History.Batches)
		reason := "memory budget"
		if b < 0 {
			b = max(1, max(lim.MemoryBudget-reserve, lim.MemoryBudget/10)/(InitialBytesPerRecord+max(0, in.ExtraBytesPerRecord)))
			reason = "memory budget (first batch: assumed 2 KiB per record)"
		}
		if d.Limit == 0 || b < d.Limit {
			d.Limit, d.Reason = b, reason
		}
	}
	d.ReadLimit = source.ReadLimit{MaxRows: d.Limit, MaxFiles: files, MaxBytes: bytes}
	if in.Latest == nil {
		return d
	}
	if !in.Once && lim.MinOffsetsPerTrigger > 0 {
		avail := partition.Total(in.Start, in.Latest)
		if in.Now.Sub(in.History.LastRelease) < lim.MaxTriggerDelay && avail < lim.MinOffsetsPerTrigger {
			d.Delayed, d.End = true, maps.Clone(in.Start)
			d.Reason = fmt.Sprintf("minOffsetsPerTrigger: %d of %d records available, waiting up to maxTriggerDelay %s",
				avail, lim.MinOffsetsPerTrigger, lim.MaxTriggerDelay)
			return d
		}
		d.Released = true
	}
	d.End = Split(d.Limit, in.Start, in.Latest, in.BatchID)
	d.Bound = d.Limit > 0 && partition.Total(d.End, in.Latest) > 0
	return d
}

// Conf records the decision in the batch's offsets/N file (Spark's pinned
// confs): the mode, limit and reason, and the settings in force.
func (d Decision) Conf() map[string]string {
	m := map[string]string{
		"sluice.admission.mode":   d.Mode,
		"sluice.admission.limit":  strconv.FormatInt(d.Limit, 10),
		"sluice.admission.reason": d.Reason,
	}
	if d.Limits.MaxOffsetsPerTrigger > 0 {
		m["sluice.maxOffsetsPerTrigger"] = strconv.FormatInt(d.Limits.MaxOffsetsPerTrigger, 10)
	}
	if d.Limits.TriggerInterval > 0 {
		m["sluice.triggerIntervalMs"] = strconv.FormatInt(d.Limits.TriggerInterval.Milliseconds(), 10)
	}
	if d.Limits.MemoryBudget > 0 {
		m["sluice.memory.budget"] = strconv.FormatInt(d.Limits.MemoryBudget, 10)
	}
	return m
}

// Replayed is the decision of a batch re-run from its offsets/N file:
// the logged mode and limit, under the limits now in force.
func Replayed(conf map[string]string, now Limits) Decision {
	d := Decision{Mode: conf["sluice.admission.mode"], Reason: "replay of the logged batch", Limits: now}
	if n, err := strconv.ParseInt(conf["sluice.admission.limit"], 10, 64); err == nil {
		d.Limit = n
	}
	return d
}
