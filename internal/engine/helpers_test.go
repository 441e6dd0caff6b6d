package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/sink/sinktest"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/sourcetest"
)

var (
	quiet = slog.New(slog.DiscardHandler)
	// t0 is the fake clocks' start: 0.3 s past a whole second, so that
	// processingTime boundaries are visibly aligned.
	t0 = time.UnixMilli(1_700_000_000_300)
)

// recorder is an engine.Observer that keeps every batch's measurements
// and can act after a batch, in the query goroutine (deterministically
// between two batches).
type recorder struct {
	mu      sync.Mutex
	q       *engine.Query
	infos   []*engine.BatchInfo
	latest  []source.Offset
	idle    int
	idles   []*engine.IdleInfo
	termErr error
	// after, when set, runs after each batch is recorded.
	after func(q *engine.Query, info *engine.BatchInfo)
}

func (r *recorder) QueryStarted(q *engine.Query) {
	r.mu.Lock()
	r.q = q
	r.mu.Unlock()
}

func (r *recorder) OffsetsObserved(_ *engine.Query, latest source.Offset, _ time.Time) {
	r.mu.Lock()
	r.latest = append(r.latest, latest)
	r.mu.Unlock()
}

func (r *recorder) BatchCompleted(q *engine.Query, info *engine.BatchInfo) {
	r.mu.Lock()
	r.infos = append(r.infos, info)
	after := r.after
	r.mu.Unlock()
	if after != nil {
		after(q, info)
	}
}

func (r *recorder) Idle(_ *engine.Query, info *engine.IdleInfo) {
	r.mu.Lock()
	r.idle++
	r.idles = append(r.idles, info)
	r.mu.Unlock()
}

func (r *recorder) QueryTerminated(_ *engine.Query, err error) {
	r.mu.Lock()
	r.termErr = err
	r.mu.Unlock()
}

func (r *recorder) batches() []*engine.BatchInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*engine.BatchInfo(nil), r.infos...)
}

// rows lists each batch's input rows.
func (r *recorder) rows() []int64 {
	var out []int64
	for _, b := range r.batches() {
		out = append(out, b.NumInputRows)
	}
	return out
}

// run starts a query and waits for it to end (trigger once/availableNow,
// a cancelled context, or an error), with a generous safety timeout.
func run(t *testing.T, ctx context.Context, cfg engine.Config) error {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	q, err := engine.Start(ctx, cfg)
	if err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case <-q.Done():
		return q.Exception()
	case <-wait.Done():
		q.Stop()
		t.Fatal("query did not end within 60 s")
		return nil
	}
}

// byOffset identifies a fake-source row by partition and offset (the sink
// detects a row committed twice).
func byOffset(row []any) string { return fmt.Sprintf("%v-%v", row[3], row[4]) }

// readOffsets reads offsets/id of a stopped query's checkpoint.
func readOffsets(t *testing.T, dir string, id int64) (checkpoint.BatchMetadata, string) {
	t.Helper()
	cp, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	meta, offs, err := cp.ReadOffsets(id)
	if err != nil {
		t.Fatal(err)
	}
	return meta, offs[0]
}

func exists(dir, sub string, id int64) bool {
	_, err := os.Stat(filepath.Join(dir, sub, fmt.Sprint(id)))
	return err == nil
}

// ranges renders the ranges of one Open call, e.g. "t-0[0,30) t-1[0,30)".
func ranges(rs []sourcetest.Range) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%s[%d,%d)", r.Partition, r.Start, r.End)
	}
	return out
}

func offsetsOf(o source.Offset) partition.Offsets {
	return o.(source.PartitionedOffset).Partitions()
}

// deadLetterBad is a transform that passes rows through and routes rows
// whose value is "bad" to the dead-letter sink. It records the batch
// time every batch was run with.
type deadLetterBad struct {
	schema batch.Schema
	mu     sync.Mutex
	times  []time.Time
}

func (d *deadLetterBad) Schema() batch.Schema { return d.schema }

func (d *deadLetterBad) Apply(b *batch.Batch, batchTime time.Time) (*batch.Batch, []engine.DeadLetter, error) {
	d.mu.Lock()
	d.times = append(d.times, batchTime)
	d.mu.Unlock()
	val := b.Column("value")
	keep := make([]bool, b.N)
	var dls []engine.DeadLetter
	n := 0
	for i := 0; i < b.N; i++ {
		if string(val.Bytes[i]) == "bad" {
			dls = append(dls, engine.DeadLetter{Reason: "value is bad", Input: b, Row: i})
			continue
		}
		keep[i] = true
		n++
	}
	cols := make([]*batch.Column, len(b.Columns))
	for i, c := range b.Columns {
		cols[i] = c.Filter(keep, n)
	}
	return batch.New(b.Schema, cols, n), dls, nil
}

func (d *deadLetterBad) batchTimes() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.times...)
}

// newSink returns a fake sink keyed by source partition and offset.
func newSink(name string, ev *sinktest.Events) *sinktest.Sink {
	return sinktest.New(name, ev).KeyBy(byOffset)
}
