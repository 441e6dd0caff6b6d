// Package rate holds sluice's two synthetic sources: "rate", a clock that
// generates rowsPerSecond rows of (timestamp, value) for every second since
// the query started (Spark's RateStreamProvider), and "rate-micro-batch",
// which generates exactly rowsPerBatch rows per batch independent of the
// wall clock (Spark's RatePerMicroBatchProvider).
//
// Both are deterministic functions of their offsets: a batch replayed after
// a restart produces the same rows.
package rate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/source"
)

// chunkRows is how many rows a task emits per batch.Batch.
const chunkRows = 4096

// Schema is the schema of both rate sources: timestamp, value.
func Schema() batch.Schema {
	return batch.Schema{Fields: []batch.Field{
		{Name: "timestamp", Type: batch.Timestamp, Nullable: true},
		{Name: "value", Type: batch.Long, Nullable: true},
	}}
}

// Spec describes the "rate" source's options.
var Spec = &options.Spec{What: "rate source", Fields: []options.Field{
	{Name: "rowsPerSecond", Type: options.Int, Min: 1, Default: "1", Doc: "Rows generated per second of the query's run time."},
	{Name: "rampUpTime", Type: options.String, Default: "0", Hint: `allowed: a non-negative duration such as "5s", "2 minutes" or a number of seconds`,
		Doc: "Time to ramp up to rowsPerSecond (a number of seconds or an interval, truncated to whole seconds)."},
	numPartitionsField,
	{Name: "maxRowsPerTrigger", Type: options.Int, Min: 1,
		Doc: "Caps the rows of a batch (a sluice extension; whole seconds, so one second is always admitted). Unset: no cap, as in Spark."},
}}

// numPartitionsField is shared by both rate formats.
var numPartitionsField = options.Field{Name: "numPartitions", Type: options.Int, Min: 1, DefaultDoc: "the number of CPUs",
	Doc: "Tasks per batch (at most 1048576); rows are spread over them by value."}

// Format registers "rate".
var Format = source.Format{
	Name:       "rate",
	Summary:    "Spark's load generator: rowsPerSecond rows of (timestamp, value) for every second the query runs",
	Options:    Spec,
	SchemaDoc:  "fixed: `timestamp timestamp, value bigint`",
	Replayable: true,
	Schema: func(v options.Values, _ source.Env) (batch.Schema, error) {
		_, err := parseConfig(v)
		return Schema(), err
	},
	Open: func(v options.Values, env source.Env) (source.Source, error) {
		cfg, err := parseConfig(v)
		if err != nil {
			return nil, err
		}
		return newSource(cfg, env.Logger), nil
	},
}

// Config is the parsed "rate" source configuration.
type Config struct {
	RowsPerSecond int64
	// RampUpSeconds is rampUpTime truncated to whole seconds.
	RampUpSeconds int64
	NumPartitions int
	// MaxRowsPerTrigger caps rows per batch (a sluice extension; 0 = no
	// cap, Spark's behaviour). The cap works in whole seconds: a batch
	// covers at least one second even if that second alone exceeds it.
	MaxRowsPerTrigger int64
}

// ParseConfig validates the "rate" source options.
func ParseConfig(m map[string]string) (*Config, error) {
	v, err := Spec.Read(m)
	if err != nil {
		return nil, err
	}
	return parseConfig(v)
}

func parseConfig(v options.Values) (*Config, error) {
	c := &Config{RowsPerSecond: v.Int64("rowsPerSecond"), MaxRowsPerTrigger: v.Int64("maxRowsPerTrigger")}
	var err error
	if c.RampUpSeconds, err = wholeSeconds(v, "rampUpTime"); err != nil {
		return nil, err
	}
	if c.NumPartitions, err = numPartitions(v); err != nil {
		return nil, err
	}
	if float64(c.RowsPerSecond)*float64(c.RampUpSeconds+1) > 1<<62 {
		return nil, &options.Error{Option: "rampUpTime", Value: strconv.FormatInt(c.RampUpSeconds, 10) + "s",
			Allowed: fmt.Sprintf("too long for rowsPerSecond=%d: the generated values would overflow", c.RowsPerSecond)}
	}
	return c, nil
}

// wholeSeconds parses a time option as Spark's timeStringAsSec does: a bare
// number is seconds, otherwise an interval truncated to whole seconds.
func wholeSeconds(o options.Values, name string) (int64, error) {
	v, ok := o.Get(name)
	if !ok {
		return 0, nil
	}
	s := strings.TrimSpace(v)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	d, err := options.ParseInterval(s)
	if err != nil || d < 0 {
		return 0, &options.Error{Option: name, Value: v, Allowed: `allowed: a non-negative duration such as "5s", "2 minutes" or a number of seconds`}
	}
	return int64(d / time.Second), nil
}

func numPartitions(v options.Values) (int, error) {
	if !v.Has("numPartitions") {
		return runtime.NumCPU(), nil
	}
	n := v.Int64("numPartitions")
	if n > 1<<20 {
		return 0, &options.Error{Option: "numPartitions", Value: strconv.FormatInt(n, 10), Allowed: "allowed: an integer between 1 and 1048576"}
	}
	return int(n), nil
}

// ValueAtSecond is how many rows the rate source has generated after
// seconds whole seconds: rows grow linearly during ramp-up (the speed at
// second s is s·⌊rowsPerSecond/(rampUp+1)⌋) and then stay at rowsPerSecond.
func ValueAtSecond(seconds, rowsPerSecond, rampUpSeconds int64) int64 {
	delta := rowsPerSecond / (rampUpSeconds + 1)
	if seconds <= rampUpSeconds {
		// delta·s·(s+1)/2, halving the even factor first to delay overflow.
		if seconds%2 == 1 {
			return (seconds + 1) / 2 * delta * seconds
		}
		return seconds / 2 * delta * (seconds + 1)
	}
	return ValueAtSecond(rampUpSeconds, rowsPerSecond, rampUpSeconds) + (seconds-rampUpSeconds)*rowsPerSecond
}

// Offset is a "rate" source position: whole seconds elapsed since the
// query's start time, which travels inside every offset so that the
// offsets alone determine the rows (JSON {"startTimeMs":…,"seconds":…}).
type Offset struct {
	StartTimeMs int64 `json:"startTimeMs"`
	Seconds     int64 `json:"seconds"`
}

// JSON implements source.Offset.
func (o Offset) JSON() string {
	return fmt.Sprintf(`{"startTimeMs":%d,"seconds":%d}`, o.StartTimeMs, o.Seconds)
}

// Source is the "rate" source.
type Source struct {
	cfg        *Config
	log        *slog.Logger
	maxSeconds int64

	mu  sync.Mutex
	now func() time.Time
}

// New creates a "rate" source. It does no I/O.
func New(opts map[string]string, logger *slog.Logger) (*Source, error) {
	cfg, err := ParseConfig(opts)
	if err != nil {
		return nil, err
	}
	return newSource(cfg, logger), nil
}

func newSource(cfg *Config, logger *slog.Logger) *Source {
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.RampUpSeconds > 0 && cfg.RowsPerSecond/(cfg.RampUpSeconds+1) == 0 {
		logger.Warn("rate source: rowsPerSecond is smaller than rampUpTime+1 seconds, so no rows are generated during ramp-up",
			"rowsPerSecond", cfg.RowsPerSecond, "rampUpTimeSeconds", cfg.RampUpSeconds)
	}
	s := &Source{cfg: cfg, log: logger, now: time.Now}
	s.maxSeconds = maxSeconds(cfg.RowsPerSecond, cfg.RampUpSeconds)
	return s
}

// maxSeconds is the largest second whose value fits in an int64.
// ParseConfig bounds rowsPerSecond·(rampUp+1), so the ramp-up part fits.
func maxSeconds(rps, ramp int64) int64 {
	rampPart := ValueAtSecond(ramp, rps, ramp)
	return ramp + (math.MaxInt64-rampPart)/rps
}

// SetClock replaces the wall clock (tests).
func (s *Source) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

func (s *Source) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// Config returns the parsed options.
func (s *Source) Config() *Config { return s.cfg }

// Description implements source.Source.
func (s *Source) Description() string {
	return fmt.Sprintf("RateStreamV2[rowsPerSecond=%d, rampUpTimeSeconds=%d, numPartitions=%d]",
		s.cfg.RowsPerSecond, s.cfg.RampUpSeconds, s.cfg.NumPartitions)
}

// Schema implements source.Source.
func (s *Source) Schema() batch.Schema { return Schema() }

// DefaultReadLimit maps maxRowsPerTrigger to a row cap; without it the
// source reads everything, as Spark's does.
func (s *Source) DefaultReadLimit() source.ReadLimit {
	return source.ReadLimit{MaxRows: s.cfg.MaxRowsPerTrigger}
}

// InitialOffset records the query's start time: second 0.
func (s *Source) InitialOffset(context.Context) (source.Offset, error) {
	return Offset{StartTimeMs: s.clock().UnixMilli(), Seconds: 0}, nil
}

// ParseOffset implements source.Source.
func (s *Source) ParseOffset(js string) (source.Offset, error) {
	var o Offset
	if err := strictUnmarshal(js, &o); err != nil {
		return nil, fmt.Errorf("rate source: parse offset %q: %w", js, err)
	}
	if o.Seconds < 0 {
		return nil, fmt.Errorf("rate source: parse offset %q: negative seconds", js)
	}
	return o, nil
}

func strictUnmarshal(js string, v any) error {
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

func asOffset(o source.Offset) (Offset, error) {
	switch v := o.(type) {
	case Offset:
		return v, nil
	case *Offset:
		return *v, nil
	}
	return Offset{}, fmt.Errorf("rate source: offset %T is not a rate offset", o)
}

// Latest implements source.Source: the end is the current whole second
// since the start time. With a MaxRows limit the end is the last second
// whose rows still fit (at least one second).
func (s *Source) Latest(_ context.Context, startOff source.Offset, limit source.ReadLimit) (source.Offset, source.Offset, error) {
	start, err := asOffset(startOff)
	if err != nil {
		return nil, nil, err
	}
	elapsed := s.clock().UnixMilli() - start.StartTimeMs
	if elapsed < 0 {
		s.log.Warn("rate source: the clock is before the query's start time; waiting", "startTimeMs", start.StartTimeMs)
		return start, start, nil
	}
	secs := elapsed / 1000
	if secs > s.maxSeconds {
		return nil, nil, fmt.Errorf("rate source: second %d would overflow the 64-bit value counter at rowsPerSecond=%d (max second %d)",
			secs, s.cfg.RowsPerSecond, s.maxSeconds)
	}
	latest := Offset{StartTimeMs: start.StartTimeMs, Seconds: secs}
	if secs <= start.Seconds {
		return start, latest, nil
	}
	end := secs
	if limit.MaxRows > 0 {
		base := s.value(start.Seconds)
		// Largest e in [start+1, secs] with value(e)-base ≤ MaxRows.
		lo, hi := start.Seconds+1, secs
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			if s.value(mid)-base <= limit.MaxRows {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		end = lo
	}
	return Offset{StartTimeMs: start.StartTimeMs, Seconds: end}, latest, nil
}

func (s *Source) value(sec int64) int64 {
	return ValueAtSecond(sec, s.cfg.RowsPerSecond, s.cfg.RampUpSeconds)
}

// Open implements source.Source: one task per partition; value v goes to
// partition (v − first value) mod numPartitions and gets a timestamp
// interpolated between the covered seconds.
func (s *Source) Open(_ context.Context, startOff, endOff source.Offset) (source.Reader, error) {
	start, err := asOffset(startOff)
	if err != nil {
		return nil, err
	}
	end, err := asOffset(endOff)
	if err != nil {
		return nil, err
	}
	if start.StartTimeMs != end.StartTimeMs || end.Seconds < start.Seconds {
		return nil, fmt.Errorf("rate source: invalid range %s → %s", start.JSON(), end.JSON())
	}
	if end.Seconds > s.maxSeconds {
		return nil, fmt.Errorf("rate source: second %d would overflow the 64-bit value counter (max second %d)", end.Seconds, s.maxSeconds)
	}
	from, to := s.value(start.Seconds), s.value(end.Seconds)
	msPerValue := 0.0
	if to > from {
		msPerValue = float64((end.Seconds-start.Seconds)*1000) / float64(to-from)
	}
	r := &reader{}
	baseMs := start.StartTimeMs + start.Seconds*1000
	for p := 0; p < s.cfg.NumPartitions; p++ {
		t := &task{partition: p, step: int64(s.cfg.NumPartitions), first: from, from: from + int64(p), to: to,
			timestamp: func(v int64) int64 {
				return int64(math.Round(float64(baseMs)+float64(v-from)*msPerValue)) * 1000
			}}
		r.tasks = append(r.tasks, t)
	}
	return r, nil
}

// Commit implements source.Source; generated rows need no release.
func (s *Source) Commit(context.Context, source.Offset) error { return nil }

// Close implements source.Source.
func (s *Source) Close() error { return nil }

// task generates values from, from+step, … below to.
type task struct {
	partition int
	step      int64
	first     int64 // the batch's first value
	from, to  int64
	// timestamp maps a value to its timestamp in microseconds.
	timestamp func(v int64) int64
}

func (t *task) String() string {
	return fmt.Sprintf("rate-%d[%d,%d)", t.partition, t.first, t.to)
}

// Size is the number of values the task generates.
func (t *task) Size() int64 {
	if t.from >= t.to {
		return 0
	}
	return (t.to-t.from-1)/t.step + 1
}

type reader struct {
	tasks []source.Task
}

func (r *reader) Tasks() []source.Task { return r.tasks }

func (r *reader) Read(ctx context.Context, st source.Task, emit source.Emit) error {
	t, ok := st.(*task)
	if !ok {
		return fmt.Errorf("rate source: task %v is not a rate task", st)
	}
	return generate(ctx, t.from, t.to, t.step, t.timestamp, emit)
}

func (r *reader) Close() error { return nil }

// generate emits rows for from, from+step, … < to in chunks.
func generate(ctx context.Context, from, to, step int64, ts func(int64) int64, emit source.Emit) error {
	if from >= to {
		return nil
	}
	sch := Schema()
	left := (to-from-1)/step + 1 // values still to generate
	for i := int64(0); left > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(int64(chunkRows), left)
		tcol := batch.NewColumn(batch.Timestamp, int(n))
		vcol := batch.NewColumn(batch.Long, int(n))
		for k := int64(0); k < n; k++ {
			v := from + (i+k)*step
			tcol.AppendInt(ts(v))
			vcol.AppendInt(v)
		}
		i += n
		left -= n
		if err := emit(ctx, batch.New(sch, []*batch.Column{tcol, vcol}, int(n))); err != nil {
			return err
		}
	}
	return nil
}

var _ source.Limited = (*Source)(nil)
var _ source.LimitDefaults = (*Source)(nil)
