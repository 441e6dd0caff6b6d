package rate

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/source"
)

// MicroBatchSpec describes the "rate-micro-batch" source's options.
var MicroBatchSpec = &options.Spec{What: "rate-micro-batch source", Fields: []options.Field{
	{Name: "rowsPerBatch", Type: options.Int, Min: 1, Required: true, Doc: "Rows generated per batch, whatever the batch's duration."},
	numPartitionsField,
	{Name: "startTimestamp", Type: options.Int, Min: 0, Default: "0", Doc: "Timestamp of the first batch's rows, in milliseconds since the epoch."},
	{Name: "advanceMillisPerBatch", Type: options.Int, Min: 0, Default: "1000", Doc: "How far the rows' timestamp advances per batch, in milliseconds."},
}}

// MicroBatchFormat registers "rate-micro-batch".
var MicroBatchFormat = source.Format{
	Name:       "rate-micro-batch",
	Summary:    "Spark's per-batch generator: exactly rowsPerBatch rows per batch, independent of the clock",
	Options:    MicroBatchSpec,
	SchemaDoc:  "fixed: `timestamp timestamp, value bigint`",
	Replayable: true,
	Schema: func(v options.Values, _ source.Env) (batch.Schema, error) {
		_, err := parseMicroBatchConfig(v)
		return Schema(), err
	},
	Open: func(v options.Values, env source.Env) (source.Source, error) {
		cfg, err := parseMicroBatchConfig(v)
		if err != nil {
			return nil, err
		}
		return newMicroBatch(cfg, env.Logger), nil
	},
}

// MicroBatchConfig is the parsed "rate-micro-batch" configuration.
type MicroBatchConfig struct {
	RowsPerBatch          int64
	NumPartitions         int
	StartTimestampMs      int64
	AdvanceMillisPerBatch int64
}

// ParseMicroBatchConfig validates the "rate-micro-batch" source options.
func ParseMicroBatchConfig(m map[string]string) (*MicroBatchConfig, error) {
	v, err := MicroBatchSpec.Read(m)
	if err != nil {
		return nil, err
	}
	return parseMicroBatchConfig(v)
}

func parseMicroBatchConfig(v options.Values) (*MicroBatchConfig, error) {
	if !v.Has("rowsPerBatch") {
		return nil, &options.Error{Option: "rowsPerBatch", Allowed: "required: a positive integer"}
	}
	c := &MicroBatchConfig{RowsPerBatch: v.Int64("rowsPerBatch"), StartTimestampMs: v.Int64("startTimestamp"),
		AdvanceMillisPerBatch: v.Int64("advanceMillisPerBatch")}
	var err error
	if c.NumPartitions, err = numPartitions(v); err != nil {
		return nil, err
	}
	return c, nil
}

// MicroBatchOffset is a "rate-micro-batch" position: the number of rows
// generated so far and the timestamp of the next batch's rows, Spark's
// {"offset":…,"timestamp":…}.
type MicroBatchOffset struct {
	Offset    int64 `json:"offset"`
	Timestamp int64 `json:"timestamp"`
}

// JSON implements source.Offset.
func (o MicroBatchOffset) JSON() string {
	return fmt.Sprintf(`{"offset":%d,"timestamp":%d}`, o.Offset, o.Timestamp)
}

// MicroBatchSource is the "rate-micro-batch" source: batch k holds exactly
// the values [k·rowsPerBatch, (k+1)·rowsPerBatch), all stamped
// startTimestamp + k·advanceMillisPerBatch, whatever the wall clock says.
type MicroBatchSource struct {
	cfg *MicroBatchConfig
	log *slog.Logger

	mu           sync.Mutex
	availableNow bool
	target       *MicroBatchOffset // AvailableNow: the one batch's end
}

// NewMicroBatch creates a "rate-micro-batch" source. It does no I/O.
func NewMicroBatch(opts map[string]string, logger *slog.Logger) (*MicroBatchSource, error) {
	cfg, err := ParseMicroBatchConfig(opts)
	if err != nil {
		return nil, err
	}
	return newMicroBatch(cfg, logger), nil
}

func newMicroBatch(cfg *MicroBatchConfig, logger *slog.Logger) *MicroBatchSource {
	if logger == nil {
		logger = slog.Default()
	}
	return &MicroBatchSource{cfg: cfg, log: logger}
}

// Config returns the parsed options.
func (s *MicroBatchSource) Config() *MicroBatchConfig { return s.cfg }

// Description implements source.Source.
func (s *MicroBatchSource) Description() string {
	return fmt.Sprintf("RatePerMicroBatchStream[rowsPerBatch=%d, numPartitions=%d, startTimestamp=%d, advanceMillisPerBatch=%d]",
		s.cfg.RowsPerBatch, s.cfg.NumPartitions, s.cfg.StartTimestampMs, s.cfg.AdvanceMillisPerBatch)
}

// Schema implements source.Source.
func (s *MicroBatchSource) Schema() batch.Schema { return Schema() }

// InitialOffset is row 0 at startTimestamp.
func (s *MicroBatchSource) InitialOffset(context.Context) (source.Offset, error) {
	return MicroBatchOffset{Offset: 0, Timestamp: s.cfg.StartTimestampMs}, nil
}

// ParseOffset implements source.Source.
func (s *MicroBatchSource) ParseOffset(js string) (source.Offset, error) {
	var o MicroBatchOffset
	if err := strictUnmarshal(js, &o); err != nil {
		return nil, fmt.Errorf("rate-micro-batch source: parse offset %q: %w", js, err)
	}
	if o.Offset < 0 {
		return nil, fmt.Errorf("rate-micro-batch source: parse offset %q: negative offset", js)
	}
	return o, nil
}

func asMicroBatchOffset(o source.Offset) (MicroBatchOffset, error) {
	switch v := o.(type) {
	case MicroBatchOffset:
		return v, nil
	case *MicroBatchOffset:
		return *v, nil
	}
	return MicroBatchOffset{}, fmt.Errorf("rate-micro-batch source: offset %T is not a rate-micro-batch offset", o)
}

// PrepareAvailableNow makes the source yield exactly one more batch.
func (s *MicroBatchSource) PrepareAvailableNow(context.Context) error {
	s.mu.Lock()
	s.availableNow, s.target = true, nil
	s.mu.Unlock()
	return nil
}

// Latest implements source.Source: always one batch of rowsPerBatch rows
// after start (the read limit is ignored: the batch size is the option).
// Under AvailableNow only the first call advances.
func (s *MicroBatchSource) Latest(_ context.Context, startOff source.Offset, _ source.ReadLimit) (source.Offset, source.Offset, error) {
	start, err := asMicroBatchOffset(startOff)
	if err != nil {
		return nil, nil, err
	}
	if start.Offset > math.MaxInt64-s.cfg.RowsPerBatch {
		return nil, nil, fmt.Errorf("rate-micro-batch source: offset %d + rowsPerBatch %d overflows", start.Offset, s.cfg.RowsPerBatch)
	}
	next := MicroBatchOffset{Offset: start.Offset + s.cfg.RowsPerBatch, Timestamp: start.Timestamp + s.cfg.AdvanceMillisPerBatch}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.availableNow {
		if s.target == nil {
			s.target = &next
		}
		if start.Offset >= s.target.Offset {
			return start, start, nil
		}
		return *s.target, *s.target, nil
	}
	return next, next, nil
}

// Open implements source.Source: values [start.offset, end.offset), value v
// in partition (v − start.offset) mod numPartitions, every row stamped
// start.timestamp.
func (s *MicroBatchSource) Open(_ context.Context, startOff, endOff source.Offset) (source.Reader, error) {
	start, err := asMicroBatchOffset(startOff)
	if err != nil {
		return nil, err
	}
	end, err := asMicroBatchOffset(endOff)
	if err != nil {
		return nil, err
	}
	if end.Offset < start.Offset {
		return nil, fmt.Errorf("rate-micro-batch source: invalid range %s → %s", start.JSON(), end.JSON())
	}
	tsMicros := start.Timestamp * 1000
	r := &reader{}
	for p := 0; p < s.cfg.NumPartitions; p++ {
		r.tasks = append(r.tasks, &task{partition: p, step: int64(s.cfg.NumPartitions), first: start.Offset,
			from: start.Offset + int64(p), to: end.Offset,
			timestamp: func(int64) int64 { return tsMicros }})
	}
	return r, nil
}

// Commit implements source.Source; generated rows need no release.
func (s *MicroBatchSource) Commit(context.Context, source.Offset) error { return nil }

// Close implements source.Source.
func (s *MicroBatchSource) Close() error { return nil }

var _ source.Limited = (*MicroBatchSource)(nil)
var _ source.AvailableNow = (*MicroBatchSource)(nil)
