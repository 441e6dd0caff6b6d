package progress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// Sluice is the value of the extra "sluice" key of a progress report:
// sluice's own measurements, which Spark does not report. It is grouped by
// subject; a nil group is left out (not measured), and a present group has
// all its fields meaningful — a 0 is a real 0. Inside a group a Double or
// Ratio set to NaN means "unknown" and is left out.
//
// To extend it, add a field to a group or a new pointer group with
// omitempty; readers ignore keys they do not know.
type Sluice struct {
	Health     *HealthInfo     `json:"health,omitempty"`
	Lag        *LagInfo        `json:"lag,omitempty"`
	Timing     *TimingInfo     `json:"timing,omitempty"`
	Throughput *ThroughputInfo `json:"throughput,omitempty"`
	Checkpoint *CheckpointInfo `json:"checkpoint,omitempty"`
	Memory     *MemoryInfo     `json:"memory,omitempty"`
	Admission  *AdmissionInfo  `json:"admission,omitempty"`
	Diagnosis  *DiagnosisInfo  `json:"diagnosis,omitempty"`
	// DeadLetters counts the batch's rows routed to the dead-letter sink
	// (omitted when the query has none).
	DeadLetters *int64 `json:"deadLetters,omitempty"`
	// Group names the consumer-group member that ran the batch (group
	// mode, the kafka source's sluice.group; omitted otherwise).
	Group *GroupInfo `json:"group,omitempty"`
}

// GroupInfo is the member of a consumer group that ran a batch in group
// mode, and the partitions it owned when the batch was planned.
type GroupInfo struct {
	// Group is the consumer group (sluice.group).
	Group string `json:"group"`
	// Member is the member's name (sluice.group.member); MemberID the id
	// the group coordinator gave it, as kafka-consumer-groups shows it.
	Member   string `json:"member"`
	MemberID string `json:"memberId"`
	// Partitions are "topic-partition" names, sorted.
	Partitions []string `json:"partitions"`
}

// DiagnosisInfo says what limited the batch (package diagnose).
type DiagnosisInfo struct {
	// Limiting is the stage with the largest share of the batch's time:
	// "source fetch", "transform", "sink write", "store write", "state"
	// (a stateful query's stage 2 and state commits), "checkpoint", "planning";
	// or "read limit" when a static read limit, not the work, holds the
	// query back (the first finding then says by how much to raise it).
	Limiting string `json:"limiting,omitempty"`
	// Shares maps each stage to its share of the batch's wall time.
	Shares map[string]Ratio `json:"shares,omitempty"`
	// Waves is ⌈tasks ÷ workers⌉.
	Waves int `json:"waves"`
	// Findings are the observations with numeric advice, most important
	// first.
	Findings []string `json:"findings,omitempty"`
}

// HealthInfo is the query's Burrow-style lag status (worst partition).
type HealthInfo struct {
	// Status is one of OK, WARN, STALL, STOP, REWIND, ERR.
	Status string `json:"status"`
	// Reason explains the status in words and numbers.
	Reason string `json:"reason,omitempty"`
}

// LagInfo is how far the query is behind its sources.
type LagInfo struct {
	// Records is the total of offsets behind the latest offsets, over all
	// partitions.
	Records int64 `json:"records"`
	// Seconds is the largest time lag of any partition (the worst
	// partition, never an average that hides it).
	Seconds Double `json:"seconds,omitzero"`
	// DrainETASeconds predicts when the backlog is gone at the measured
	// capacity and arrival rate; +Inf (written as null) means never.
	DrainETASeconds ETA `json:"drainEtaSeconds"`
	// ArrivalRowsPerSecond is the growth rate of the latest offsets.
	ArrivalRowsPerSecond Double `json:"arrivalRowsPerSecond,omitzero"`
	// CapacityRowsPerSecond is records processed per second of busy time.
	CapacityRowsPerSecond Double `json:"capacityRowsPerSecond,omitzero"`
	// Partitions lists every partition's lag.
	Partitions []PartitionLag `json:"partitions,omitempty"`
}

// PartitionLag is one partition's lag and status.
type PartitionLag struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	OffsetsBehind int64  `json:"offsetsBehind"`
	LagSeconds    Double `json:"lagSeconds,omitzero"`
	// LagMethod says how LagSeconds was found: caught-up, interpolated,
	// extrapolated, record-timestamp (see package lag).
	LagMethod string `json:"lagMethod,omitempty"`
	Status    string `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// TimingInfo tells whether the query keeps up with its trigger and where
// the time goes.
type TimingInfo struct {
	// TriggerIntervalMs is the processingTime interval; 0 for the default
	// (as fast as possible) trigger.
	TriggerIntervalMs int64 `json:"triggerIntervalMs"`
	// BatchDurationVsTrigger is batchDuration / trigger interval; above 1
	// the query falls behind its trigger. NaN without an interval.
	BatchDurationVsTrigger Ratio `json:"batchDurationVsTrigger,omitzero"`
	// SchedulingDelayMs is how late the batch started compared with its
	// trigger boundary.
	SchedulingDelayMs int64 `json:"schedulingDelayMs"`
	// BusyRatio is the share of wall time the query was busy running a
	// batch, Flink's busy time: the batch duration over the time since the
	// previous batch ended (idle time waiting for the trigger counted; the
	// trigger interval for the first batch). 1 = batches run back to back;
	// 0.5 = the query idles half of each trigger.
	BusyRatio Ratio `json:"busyRatio,omitzero"`
	// WorkerUtilization is the workers' busy share of the batch itself:
	// Σ task time ÷ (batch duration × workers). 1 = every worker busy all
	// batch long.
	WorkerUtilization Ratio `json:"workerUtilization,omitzero"`
	// TaskSkew is the slowest task's duration over the median task's.
	TaskSkew Ratio `json:"taskSkew,omitzero"`
}

// ThroughputInfo is the byte-denominated counterpart of the row rates.
type ThroughputInfo struct {
	NumInputBytes           int64  `json:"numInputBytes"`
	InputBytesPerSecond     Double `json:"inputBytesPerSecond,omitzero"`
	ProcessedBytesPerSecond Double `json:"processedBytesPerSecond,omitzero"`
}

// CheckpointInfo is the size of the checkpoint directory.
type CheckpointInfo struct {
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
}

// MemoryInfo is the memory held by buffered data.
type MemoryInfo struct {
	BufferedBytes int64 `json:"bufferedBytes"`
	// BudgetBytes is the memory budget in force; 0 when there is none.
	BudgetBytes int64 `json:"budgetBytes,omitempty"`
	// BudgetOrigin says where the budget comes from: "sluice.memory.budget",
	// "derived: a quarter of … (cgroup v2 memory.max), at most 128MiB" when
	// the option is unset, or "unlimited" when it opted out.
	BudgetOrigin string `json:"budgetOrigin,omitempty"`
}

// AdmissionInfo is the read limit applied to this batch and why.
type AdmissionInfo struct {
	// Limit is the records admitted at most in this batch; 0 = no limit.
	Limit int64 `json:"limit"`
	// LimitBound is true when the limit held the batch back: it ended
	// short of what was available.
	LimitBound bool `json:"limitBound"`
	// LimitBytes is the byte cap; 0 = none.
	LimitBytes int64 `json:"limitBytes,omitempty"`
	// Reason says what set the limit, e.g. "maxOffsetsPerTrigger",
	// "adaptive: estimate", "memory budget".
	Reason string `json:"reason,omitempty"`
	// Mode is "static" (Spark's) or "adaptive".
	Mode string `json:"mode,omitempty"`
	// TargetBatchDurationMs is what adaptive admission aimed at.
	TargetBatchDurationMs int64 `json:"targetBatchDurationMs,omitempty"`
	// CostPerRecordUs is the controller's estimate of a record's cost.
	CostPerRecordUs float64 `json:"costPerRecordUs,omitempty"`
	// MaxOffsetsPerTrigger is the configured cap in force (0 = none); it
	// shows runtime changes (SetLimits).
	MaxOffsetsPerTrigger int64 `json:"maxOffsetsPerTrigger,omitempty"`
	// MemoryBudgetBytes is the memory budget in force (0 = none).
	MemoryBudgetBytes int64 `json:"memoryBudgetBytes,omitempty"`
}

// ETA is a predicted duration in seconds where +Inf means "never"; JSON
// writes it with one decimal, or null for never.
type ETA float64

// Never is the ETA of a backlog that will not drain.
func Never() ETA { return ETA(math.Inf(1)) }

// IsNever reports whether e means never (any non-finite value).
func (e ETA) IsNever() bool { return !finite(float64(e)) }

// MarshalJSON writes seconds with one decimal HALF_UP, or null for never.
func (e ETA) MarshalJSON() ([]byte, error) { return marshalFixed(float64(e), 1), nil }

// UnmarshalJSON reads a number, or null as never.
func (e *ETA) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*e = Never()
		return nil
	}
	f, err := unmarshalFloat(b)
	*e = ETA(f)
	return err
}

// The unmarshal methods below make absent Double/Ratio fields read as NaN,
// the value that omitted them.

type lagInfoJSON LagInfo

// UnmarshalJSON reads a lag group; absent doubles read as NaN.
func (l *LagInfo) UnmarshalJSON(b []byte) error {
	v := lagInfoJSON{Seconds: NaN(), ArrivalRowsPerSecond: NaN(), CapacityRowsPerSecond: NaN(), DrainETASeconds: Never()}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("progress: unmarshal sluice.lag: %w", err)
	}
	*l = LagInfo(v)
	return nil
}

type partitionLagJSON PartitionLag

// UnmarshalJSON reads a partition lag; an absent lagSeconds reads as NaN.
func (l *PartitionLag) UnmarshalJSON(b []byte) error {
	v := partitionLagJSON{LagSeconds: NaN()}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("progress: unmarshal sluice.lag.partitions: %w", err)
	}
	*l = PartitionLag(v)
	return nil
}

type timingInfoJSON TimingInfo

// UnmarshalJSON reads a timing group; absent ratios read as NaN.
func (t *TimingInfo) UnmarshalJSON(b []byte) error {
	n := Ratio(math.NaN())
	v := timingInfoJSON{BatchDurationVsTrigger: n, BusyRatio: n, WorkerUtilization: n, TaskSkew: n}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("progress: unmarshal sluice.timing: %w", err)
	}
	*t = TimingInfo(v)
	return nil
}

type throughputInfoJSON ThroughputInfo

// UnmarshalJSON reads a throughput group; absent doubles read as NaN.
func (t *ThroughputInfo) UnmarshalJSON(b []byte) error {
	v := throughputInfoJSON{InputBytesPerSecond: NaN(), ProcessedBytesPerSecond: NaN()}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("progress: unmarshal sluice.throughput: %w", err)
	}
	*t = ThroughputInfo(v)
	return nil
}
