package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// Admission modes.
const (
	AdmissionStatic   = "static"   // Spark's: maxOffsetsPerTrigger as given
	AdmissionAdaptive = "adaptive" // sluice's controller (admission.Adaptive)
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
	// Mode is AdmissionStatic or AdmissionAdaptive.
	Mode string `json:"admission"`
	// TargetBatchDuration is what adaptive admission aims for (default:
	// the trigger interval, or 1 s with the default trigger).
	TargetBatchDuration time.Duration `json:"-"`
	// MaxLagSeconds lets adaptive admission double its target while the
	// query is further behind than this (0 = off).
	MaxLagSeconds float64 `json:"maxLagSeconds,omitempty"`
	// MemoryBudget caps the bytes of a batch in flight (0 = none).
	MemoryBudget int64 `json:"memoryBudgetBytes,omitempty"`
}

// MarshalJSON adds the durations in milliseconds.
func (l Limits) MarshalJSON() ([]byte, error) {
	type plain Limits
	return json.Marshal(struct {
		plain
		TriggerIntervalMs     int64 `json:"triggerIntervalMs"`
		TargetBatchDurationMs int64 `json:"targetBatchDurationMs"`
		MaxTriggerDelayMs     int64 `json:"maxTriggerDelayMs,omitempty"`
	}{plain(l), l.TriggerInterval.Milliseconds(), l.target().Milliseconds(), l.MaxTriggerDelay.Milliseconds()})
}

func (l Limits) target() time.Duration {
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

// apply returns l with u applied, or an error naming the field at fault.
func (l Limits) apply(u LimitsUpdate, kind trigger.Kind) (Limits, error) {
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
			return l, fmt.Errorf("triggerIntervalMs: %d is negative (allowed: 0 = as fast as possible, or milliseconds)", *u.TriggerIntervalMs)
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
		case AdmissionStatic, AdmissionAdaptive:
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

// Limits returns the current limits.
func (q *Query) Limits() Limits {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limits
}

// SetLimits changes limits from the next batch on and returns the new ones.
func (q *Query) SetLimits(u LimitsUpdate) (Limits, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	nl, err := q.limits.apply(u, q.cfg.Trigger.Kind)
	if err != nil {
		return q.limits, err
	}
	old := q.limits
	q.limits = nl
	q.log.Info("limits changed; applied from the next batch", "old", fmt.Sprintf("%+v", old), "new", fmt.Sprintf("%+v", nl))
	return nl, nil
}

// currentTrigger is the trigger with the current interval.
func (q *Query) currentTrigger() trigger.Trigger {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.cfg.Trigger
	if t.Kind == trigger.Default || t.Kind == trigger.ProcessingTime {
		if q.limits.TriggerInterval > 0 {
			t = trigger.Trigger{Kind: trigger.ProcessingTime, Interval: q.limits.TriggerInterval}
		} else {
			t = trigger.Trigger{Kind: trigger.Default}
		}
	}
	return t
}

// AdmissionInfo is how a batch's size was decided.
type AdmissionInfo struct {
	Mode   string
	Limit  int64 // records; 0 = no limit
	Reason string
	Target time.Duration
	// CostPerRecord and Overhead are the adaptive controller's estimates.
	CostPerRecord time.Duration
	Overhead      time.Duration
	Limits        Limits
}

// initialBytesPerRecord is assumed for the first batch under a memory
// budget, before any record size has been measured.
const initialBytesPerRecord = 2048

// decide returns the read limit for the next batch and why.
func (q *Query) decide(once bool) (source.ReadLimit, AdmissionInfo) {
	lim := q.Limits()
	info := AdmissionInfo{Mode: lim.Mode, Limits: lim, Target: lim.target()}
	rl := source.ReadLimit{MaxRows: lim.MaxOffsetsPerTrigger, MinRows: lim.MinOffsetsPerTrigger, MaxTriggerDelay: lim.MaxTriggerDelay,
		MaxFiles: q.srcLimit.MaxFiles, MaxBytes: q.srcLimit.MaxBytes}
	switch {
	case once:
		rl = source.ReadLimit{}
		info.Reason = "all available (Trigger.Once ignores read limits)"
	case lim.Mode == AdmissionAdaptive:
		var lag float64
		if q.cfg.LagSeconds != nil {
			lag = q.cfg.LagSeconds()
		}
		d := admission.Adaptive(admission.AdaptiveConfig{
			Target: lim.target(), Min: lim.MinOffsetsPerTrigger, Max: lim.MaxOffsetsPerTrigger, MaxLagSeconds: lim.MaxLagSeconds,
		}, q.history, lag)
		rl.MaxRows = d.Limit
		info.Reason, info.CostPerRecord, info.Overhead, info.Target = "adaptive: "+d.Reason, d.CostPerRecord, d.Overhead, d.Target
	case lim.MaxOffsetsPerTrigger > 0:
		info.Reason = "maxOffsetsPerTrigger"
	default:
		info.Reason = "all available"
	}
	if lim.MemoryBudget > 0 {
		b := admission.BudgetLimit(lim.MemoryBudget, q.budgetReserve(), q.history)
		reason := "memory budget"
		if b < 0 {
			b = max(1, (lim.MemoryBudget-q.budgetReserve())/initialBytesPerRecord)
			reason = "memory budget (first batch: assumed 2 KiB per record)"
		}
		if rl.MaxRows == 0 || b < rl.MaxRows {
			rl.MaxRows = b
			info.Reason = reason
		}
	}
	info.Limit = rl.MaxRows
	return rl, info
}

// budgetReserve is the part of the memory budget held back for fetch
// buffers: a quarter of it.
func (q *Query) budgetReserve() int64 {
	return q.Limits().MemoryBudget / 4
}

// confOf records the limits a batch was planned under in its offsets file.
func (info AdmissionInfo) conf() map[string]string {
	m := map[string]string{
		"sluice.admission.mode":   info.Mode,
		"sluice.admission.limit":  strconv.FormatInt(info.Limit, 10),
		"sluice.admission.reason": info.Reason,
	}
	if info.Limits.MaxOffsetsPerTrigger > 0 {
		m["sluice.maxOffsetsPerTrigger"] = strconv.FormatInt(info.Limits.MaxOffsetsPerTrigger, 10)
	}
	if info.Limits.TriggerInterval > 0 {
		m["sluice.triggerIntervalMs"] = strconv.FormatInt(info.Limits.TriggerInterval.Milliseconds(), 10)
	}
	if info.Limits.MemoryBudget > 0 {
		m["sluice.memory.budget"] = strconv.FormatInt(info.Limits.MemoryBudget, 10)
	}
	return m
}

const historySize = 16

func (q *Query) remember(info *BatchInfo) {
	bytes := info.InputBytes
	if o, ok := q.cfg.Source.(source.RecordOverhead); ok {
		bytes += info.NumInputRows * o.MemoryPerRecord()
	}
	st := admission.BatchStat{
		Rows:       info.NumInputRows,
		Bytes:      bytes,
		Processing: info.Durations["addBatch"],
		Overhead:   info.Durations["triggerExecution"] - info.Durations["addBatch"],
		Limit:      info.Admission.Limit,
	}
	q.history = append(q.history, st)
	if len(q.history) > historySize {
		q.history = q.history[len(q.history)-historySize:]
	}
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
	dur := func(k string, v json.RawMessage) (*int64, error) {
		var s string
		if json.Unmarshal(v, &s) == nil {
			d, err := parseInterval(s)
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
			u.TriggerIntervalMs, err = dur(k, v)
		case "targetBatchDuration", "targetBatchDurationMs":
			u.TargetBatchDurationMs, err = dur(k, v)
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
