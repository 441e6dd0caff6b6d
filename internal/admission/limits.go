package admission

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// Admission modes (option sluice.admission).
const (
	ModeStatic   = "static"   // Spark's: maxOffsetsPerTrigger as given
	ModeAdaptive = "adaptive" // sluice's controller (Adaptive)
)

// Limits are the admission settings of a query. They start from the
// source's options and can be changed while the query runs (SetLimits); a
// change applies from the next planned batch, is logged, shows in progress
// and is recorded in that batch's offsets file.
type Limits struct {
	// MaxOffsetsPerTrigger and MinOffsetsPerTrigger: 0 = none.
	MaxOffsetsPerTrigger int64 `json:"maxOffsetsPerTrigger"`
	MinOffsetsPerTrigger int64 `json:"minOffsetsPerTrigger"`
	// MaxTriggerDelay goes with MinOffsetsPerTrigger.
	MaxTriggerDelay time.Duration `json:"-"`
	// TriggerInterval is the processingTime interval (0 = default trigger).
	TriggerInterval time.Duration `json:"-"`
	// Mode is ModeStatic or ModeAdaptive.
	Mode string `json:"admission"`
	// TargetBatchDuration is what adaptive admission aims for (default:
	// the trigger interval, or 1 s with the default trigger).
	TargetBatchDuration time.Duration `json:"-"`
	// MaxLagSeconds lets adaptive admission double its target while the
	// query is further behind than this (0 = off).
	MaxLagSeconds float64 `json:"maxLagSeconds,omitempty"`
	// MemoryBudget caps the bytes of a batch in flight (0 = none).
	MemoryBudget int64 `json:"memoryBudgetBytes,omitempty"`
	// MemoryBudgetOrigin says where the budget comes from: the option
	// sluice.memory.budget, a default derived from the memory limit
	// (DefaultBudget), or "unlimited" when the option opted out.
	MemoryBudgetOrigin string `json:"memoryBudgetOrigin,omitempty"`

	// The source's own caps, set from its options at start
	// (WithSourceDefaults) and not changeable at run time.
	//
	// DefaultMaxPerPartition stands in for MaxOffsetsPerTrigger while
	// that is 0: the batch may take this many records per partition of
	// the source (Event Hubs' maxEventsPerTrigger default of 1,000 per
	// partition).
	DefaultMaxPerPartition int64 `json:"-"`
	// MaxFilesPerTrigger and MaxBytesPerTrigger are the file source's
	// caps, applied by the source when it picks the batch's files.
	MaxFilesPerTrigger int64 `json:"-"`
	MaxBytesPerTrigger int64 `json:"-"`
}

// The memory budget of a query that sets none (sluice.memory.budget):
// DefaultBudget.
const (
	// DefaultBudgetDivisor: the budget is this fraction (a quarter) of the
	// memory the process may use.
	DefaultBudgetDivisor = 4
	// DefaultBudgetCap bounds the derived budget: larger batches do not
	// make a query faster (the per-batch cost is a few milliseconds), and a
	// process on a large machine should not hold gigabytes because it
	// could.
	DefaultBudgetCap = 128 << 20
	// DefaultBudgetFloor keeps a tiny limit from starving batches.
	DefaultBudgetFloor = 8 << 20
)

// DefaultBudget is the memory budget of a query that sets none, from the
// memory the process may use (its cgroup limit or the machine's memory;
// procstat.MemoryLimit): a quarter of it, at most DefaultBudgetCap and at
// least DefaultBudgetFloor. limit ≤ 0 (unknown) gives the cap.
func DefaultBudget(limit int64) int64 {
	if limit <= 0 {
		return DefaultBudgetCap
	}
	return max(DefaultBudgetFloor, min(DefaultBudgetCap, limit/DefaultBudgetDivisor))
}

// WithSourceDefaults fills what the source's options set (Spark's
// getDefaultReadLimit): maxOffsetsPerTrigger, minOffsetsPerTrigger with
// maxTriggerDelay, the per-partition default and the file caps. Limits
// given explicitly to the query win.
func (l Limits) WithSourceDefaults(d source.ReadLimit) Limits {
	if l.MaxOffsetsPerTrigger == 0 {
		l.MaxOffsetsPerTrigger = d.MaxRows
	}
	if l.MinOffsetsPerTrigger == 0 {
		l.MinOffsetsPerTrigger = d.MinRows
		l.MaxTriggerDelay = d.MaxTriggerDelay
	}
	l.DefaultMaxPerPartition = d.MaxRowsPerPartition
	l.MaxFilesPerTrigger, l.MaxBytesPerTrigger = d.MaxFiles, d.MaxBytes
	if l.Mode == "" {
		l.Mode = ModeStatic
	}
	return l
}

// MarshalJSON adds the durations in milliseconds.
func (l Limits) MarshalJSON() ([]byte, error) {
	type plain Limits
	return json.Marshal(struct {
		plain
		TriggerIntervalMs     int64 `json:"triggerIntervalMs"`
		TargetBatchDurationMs int64 `json:"targetBatchDurationMs"`
		MaxTriggerDelayMs     int64 `json:"maxTriggerDelayMs,omitempty"`
	}{plain(l), l.TriggerInterval.Milliseconds(), l.Target().Milliseconds(), l.MaxTriggerDelay.Milliseconds()})
}

// Target is the batch duration adaptive admission aims for: the
// configured target, else the trigger interval, else 1 s.
func (l Limits) Target() time.Duration {
	switch {
	case l.TargetBatchDuration > 0:
		return l.TargetBatchDuration
	case l.TriggerInterval > 0:
		return l.TriggerInterval
	}
	return time.Second
}

// LimitsUpdate changes some limits; nil fields stay as they are.
type LimitsUpdate struct {
	MaxOffsetsPerTrigger  *int64   `json:"maxOffsetsPerTrigger,omitempty"`
	MinOffsetsPerTrigger  *int64   `json:"minOffsetsPerTrigger,omitempty"`
	TriggerIntervalMs     *int64   `json:"triggerIntervalMs,omitempty"`
	TargetBatchDurationMs *int64   `json:"targetBatchDurationMs,omitempty"`
	Mode                  *string  `json:"admission,omitempty"`
	MaxLagSeconds         *float64 `json:"maxLagSeconds,omitempty"`
}

// Apply returns l with u applied, or an error naming the field at fault.
// kind is the query's trigger: once and availableNow queries have no
// interval to change.
func (l Limits) Apply(u LimitsUpdate, kind trigger.Kind) (Limits, error) {
	if u.MaxOffsetsPerTrigger != nil {
		if *u.MaxOffsetsPerTrigger < 0 {
			return l, fmt.Errorf("maxOffsetsPerTrigger: %d is negative (allowed: 0 = no limit, or a positive count)", *u.MaxOffsetsPerTrigger)
		}
		l.MaxOffsetsPerTrigger = *u.MaxOffsetsPerTrigger
	}
	if u.MinOffsetsPerTrigger != nil {
		if *u.MinOffsetsPerTrigger < 0 {
			return l, fmt.Errorf("minOffsetsPerTrigger: %d is negative (allowed: 0 = none, or a positive count)", *u.MinOffsetsPerTrigger)
		}
		l.MinOffsetsPerTrigger = *u.MinOffsetsPerTrigger
	}
	if l.MaxOffsetsPerTrigger > 0 && l.MinOffsetsPerTrigger > l.MaxOffsetsPerTrigger {
		return l, fmt.Errorf("minOffsetsPerTrigger (%d) is higher than maxOffsetsPerTrigger (%d)", l.MinOffsetsPerTrigger, l.MaxOffsetsPerTrigger)
	}
	if u.TriggerIntervalMs != nil {
		if kind == trigger.Once || kind == trigger.AvailableNow {
			return l, fmt.Errorf("triggerIntervalMs: a %s query has no interval", kind)
		}
		if *u.TriggerIntervalMs < 0 {
			return l, fmt.Errorf("triggerIntervalMs: %d is negative (allowed: 0 = as fast as possible, or whole milliseconds ≥ 1)", *u.TriggerIntervalMs)
		}
		l.TriggerInterval = time.Duration(*u.TriggerIntervalMs) * time.Millisecond
	}
	if u.TargetBatchDurationMs != nil {
		if *u.TargetBatchDurationMs < 0 {
			return l, fmt.Errorf("targetBatchDurationMs: %d is negative (allowed: 0 = the trigger interval, or milliseconds)", *u.TargetBatchDurationMs)
		}
		l.TargetBatchDuration = time.Duration(*u.TargetBatchDurationMs) * time.Millisecond
	}
	if u.Mode != nil {
		switch *u.Mode {
		case ModeStatic, ModeAdaptive:
			l.Mode = *u.Mode
		default:
			return l, fmt.Errorf("admission: %q is not a mode (allowed: static, adaptive)", *u.Mode)
		}
	}
	if u.MaxLagSeconds != nil {
		if *u.MaxLagSeconds < 0 {
			return l, fmt.Errorf("maxLagSeconds: %g is negative", *u.MaxLagSeconds)
		}
		l.MaxLagSeconds = *u.MaxLagSeconds
	}
	return l, nil
}

// limitsKeys are the keys ParseLimitsUpdate accepts.
var limitsKeys = []string{"maxOffsetsPerTrigger", "minOffsetsPerTrigger", "triggerInterval", "triggerIntervalMs",
	"targetBatchDuration", "targetBatchDurationMs", "admission", "maxLagSeconds"}

// ParseLimitsUpdate reads a limits change from JSON (the HTTP API and the
// UI's form): counts as numbers, durations as Spark interval strings
// ("2 seconds") or milliseconds (the *Ms keys, or a bare number), the
// admission mode as "static" or "adaptive". Unknown keys are errors.
func ParseLimitsUpdate(body []byte, parseInterval func(string) (time.Duration, error)) (LimitsUpdate, error) {
	var raw map[string]json.RawMessage
	var u LimitsUpdate
	if err := json.Unmarshal(body, &raw); err != nil {
		return u, fmt.Errorf("limits: the body must be a JSON object: %w", err)
	}
	num := func(k string, v json.RawMessage) (*int64, error) {
		var n int64
		if err := json.Unmarshal(v, &n); err != nil {
			var s string
			if json.Unmarshal(v, &s) == nil {
				if n, err = strconv.ParseInt(s, 10, 64); err == nil {
					return &n, nil
				}
			}
			return nil, fmt.Errorf("limits: %s must be an integer, got %s", k, v)
		}
		return &n, nil
	}
	dur := func(k string, v json.RawMessage, check func(string, time.Duration) error) (*int64, error) {
		var s string
		if json.Unmarshal(v, &s) == nil {
			d, err := parseInterval(s)
			if err == nil && check != nil {
				err = check(s, d)
			}
			if err != nil {
				return nil, fmt.Errorf("limits: %s: %v", k, err)
			}
			ms := d.Milliseconds()
			return &ms, nil
		}
		return num(k, v)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		var err error
		switch k {
		case "maxOffsetsPerTrigger":
			u.MaxOffsetsPerTrigger, err = num(k, v)
		case "minOffsetsPerTrigger":
			u.MinOffsetsPerTrigger, err = num(k, v)
		case "triggerInterval", "triggerIntervalMs":
			u.TriggerIntervalMs, err = dur(k, v, trigger.IntervalError)
		case "targetBatchDuration", "targetBatchDurationMs":
			u.TargetBatchDurationMs, err = dur(k, v, nil)
		case "admission":
			var s string
			if err = json.Unmarshal(v, &s); err == nil {
				u.Mode = &s
			} else {
				err = fmt.Errorf("limits: admission must be \"static\" or \"adaptive\", got %s", v)
			}
		case "maxLagSeconds":
			var f float64
			if err = json.Unmarshal(v, &f); err == nil {
				u.MaxLagSeconds = &f
			} else {
				err = fmt.Errorf("limits: maxLagSeconds must be a number, got %s", v)
			}
		default:
			err = fmt.Errorf("limits: unknown key %q (allowed: %s)", k, strings.Join(limitsKeys, ", "))
		}
		if err != nil {
			return u, err
		}
	}
	return u, nil
}
