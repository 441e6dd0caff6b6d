package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/loadgen"
	"github.com/sluice-stream/sluice/internal/procstat"
	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/sparktext"
	"github.com/sluice-stream/sluice/progress"
)

// latencyRun produces at rate for d on a fresh topic while the seed query
// (default trigger; a child process, or this process with
// LatencyInProcess) reads it, then computes each record's latency: the end
// of the batch that committed it minus its produce timestamp. The first
// second (a fifth of a shorter run) is a warm-up and not counted.
//
// With async, the query runs with Spark's asynchronous progress tracking
// (sink option asyncProgressTrackingEnabled, default interval): its batches
// wait for no checkpoint write, at the price of at-least-once after a
// crash. The label says so.
func latencyRun(ctx context.Context, b *broker.Broker, label string, rate float64, d time.Duration, async bool, cfg *Config) (Latency, error) {
	profile := ""
	if cfg.LatencyCPUProfile != "" {
		profile = LatencyProfilePath(cfg.LatencyCPUProfile, label, async)
	}
	if async {
		label += ", " + asyncLabel
	}
	topic := fmt.Sprintf("bench-latency-%d", time.Now().UnixNano())
	addr := b.Addr()
	var brokerPID int
	if cfg.LatencyInProcess {
		if err := b.CreateTopic(ctx, broker.TopicSpec{Name: topic, Partitions: int32(cfg.Partitions)}); err != nil {
			return Latency{}, err
		}
		defer func() { _ = b.DeleteRecords(context.Background(), topic, 0, -1) }()
	} else {
		// A fresh broker of its own for this run (latencyprocs.go).
		bc, err := startBrokerChild(ctx, cfg, topic, cfg.Partitions)
		if err != nil {
			return Latency{}, err
		}
		defer bc.stop()
		addr, brokerPID = bc.addr, bc.pid()
	}
	dir, done, err := cfg.scratchDir("lat-")
	if err != nil {
		return Latency{}, err
	}
	defer done()
	setup := queryrun.Setup{}
	if async {
		setup.SinkOptions = map[string]string{"asyncProgressTrackingEnabled": "true"}
	}
	p, err := seedPipeline(dir, addr, topic, setup)
	if err != nil {
		return Latency{}, err
	}
	var runner queryrun.Runner = &queryrun.ChildRunner{Command: cfg.Command, CPUProfile: profile}
	if cfg.LatencyInProcess {
		runner = &queryrun.InProcessRunner{Logger: cfg.Logger}
	}
	progressFile := filepath.Join(dir, "progress.jsonl")
	q, err := runner.Start(ctx, p, progressFile)
	if err != nil {
		return Latency{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = q.Stop()
		}
	}()
	batches := func() []*progress.Progress {
		ps, _ := queryrun.ReadProgress(progressFile) // a line being written reads as none yet
		return ps
	}
	shape, _ := loadgen.NewShape(loadgen.ShapeOrders, 0, 1)
	cfg.Logf("latency (%s): producing %.0f rec/s for %s with the query running...", label, rate, d)
	cpu0 := childrenCPU(q.PID(), brokerPID)
	loadStart := time.Now()
	var load loadResult
	if cfg.LatencyInProcess {
		var r loadgen.Result
		r, err = loadgen.Run(ctx, loadgen.Config{Brokers: []string{addr}, Topic: topic, Profile: loadgen.Steady{Rate: rate},
			Duration: d, Shape: shape, Keys: loadgen.Keys{Count: 1000}, MaxBuffered: 100_000, Logger: cfg.Logger,
			ClientOpts: []kgo.Opt{kgo.ProducerLinger(LatencyProducerLinger)}})
		load = fromLoadgen(r)
	} else {
		load, err = loadgenChild(ctx, cfg, addr, topic, rate, d)
	}
	if err != nil {
		return Latency{}, err
	}
	// Wait for the query to commit everything.
	deadline := time.Now().Add(time.Minute)
	for {
		var rows int64
		for _, p := range batches() {
			rows += p.NumInputRows
		}
		if rows >= load.Acked || time.Now().After(deadline) || ctx.Err() != nil || isDone(q) {
			break // all committed, or the query died (Stop reports why)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cpu1 := childrenCPU(q.PID(), brokerPID)
	stopped = true
	if err := q.Stop(); err != nil {
		return Latency{}, fmt.Errorf("latency query: %w", err)
	}
	ps := batches()
	lat, first, err := recordLatencies(ctx, addr, topic, ps, load.Acked, min(time.Second, d/5))
	if err != nil {
		return Latency{}, err
	}
	if !cfg.LatencyInProcess && first.After(loadStart) {
		// The load generator's process took a moment to start: its load
		// began a tick before its first record's timestamp.
		loadStart = first.Add(-loadgen.DefaultTick)
	}
	l := Latency{Label: label, AsyncProgress: async, AskedPerSec: rate, AchievedPerSec: load.Achieved, Records: int64(len(lat)), Batches: len(ps),
		ProducerBound: load.Throttled || load.Achieved < 0.95*rate, OwnProcesses: !cfg.LatencyInProcess,
		ProducerLingerMs: float64(LatencyProducerLinger) / float64(time.Millisecond)}
	loadEnd := loadStart.Add(load.Duration).UnixMilli()
	var inTime, all, lastEnd int64
	for _, p := range ps {
		if st, err := progress.ParseTime(p.Timestamp); err == nil {
			end := st.UnixMilli() + p.BatchDuration
			if end <= loadEnd {
				inTime += p.NumInputRows
			}
			all += p.NumInputRows
			lastEnd = max(lastEnd, end)
		}
		l.MaxBatchMs = max(l.MaxBatchMs, p.BatchDuration)
	}
	l.ProcessedPerSec = float64(inTime) / load.Duration.Seconds()
	if inTime == 0 && all > 0 && lastEnd > loadStart.UnixMilli() {
		// No batch ended inside the load (a short run on a loaded machine
		// whose first batch took longer than the load): the rate at which
		// the query got through what it read, from the load's start to its
		// last batch's end, instead of 0.
		l.ProcessedPerSec = float64(all) / (float64(lastEnd-loadStart.UnixMilli()) / 1000)
	}
	if len(lat) > 0 {
		slices.SortFunc(lat, func(a, b recordLatency) int { return cmp.Compare(a.total, b.total) })
		q := func(f float64) float64 { return float64(lat[max(0, int(math.Ceil(f*float64(len(lat))))-1)].total) }
		l.P50Ms, l.P99Ms, l.MaxMs = q(0.5), q(0.99), float64(lat[len(lat)-1].total)
		l.Tail = tailOf(lat, l.P99Ms, ps)
		l.Phases = phasesOf(ps)
	}
	if !cfg.LatencyInProcess && cpu0.ok && cpu1.ok && load.CPU >= 0 {
		l.CPU = &LatencyCPU{QuerySec: (cpu1.query - cpu0.query).Seconds(), BrokerSec: (cpu1.broker - cpu0.broker).Seconds(), LoadgenSec: load.CPU.Seconds()}
	}
	cfg.Logf("latency (%s): asked %.0f rec/s, produced %.0f, processed %.0f during the load; p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d records in %d batches (longest %d ms)",
		label, rate, l.AchievedPerSec, l.ProcessedPerSec, l.P50Ms, l.P99Ms, l.MaxMs, l.Records, l.Batches, l.MaxBatchMs)
	if t := l.Tail; t != nil {
		batches := fmt.Sprintf("%d batches", t.Batches)
		if t.Batches == 1 {
			batches = "1 batch"
		}
		cfg.Logf("latency (%s): the slowest 1 %% (%d records in %s) waited %.0f ms on average before their batch started, then %.0f ms in it (%.0f ms of it the offsets and commit log writes); all batches: %s",
			label, t.Records, batches, t.BeforeBatchMs, t.BatchMs, t.LogWritesMs, l.Phases)
	}
	if c := l.CPU; c != nil {
		cfg.Logf("latency (%s): CPU over the load: query %.2f s, broker %.2f s, load generator %.2f s", label, c.QuerySec, c.BrokerSec, c.LoadgenSec)
	}
	return l, nil
}

// LatencyProfilePath is where the query of the latency run labelled label
// writes its CPU profile with Config.LatencyCPUProfile = prefix: e.g.
// PREFIX-light-load.pprof, PREFIX-light-load-async.pprof for the run
// with asynchronous progress tracking, PREFIX-at-50-of-capacity.pprof.
func LatencyProfilePath(prefix, label string, async bool) string {
	var b strings.Builder
	for _, f := range strings.FieldsFunc(strings.ToLower(label), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) {
		b.WriteString("-" + f)
	}
	if async {
		b.WriteString("-async")
	}
	return prefix + b.String() + ".pprof"
}

// procsCPU is the CPU time of a latency run's query and broker children.
type procsCPU struct {
	query, broker time.Duration
	ok            bool // both read
}

// childrenCPU reads the CPU time of the query and broker processes from
// /proc (not ok in process, or without /proc).
func childrenCPU(queryPID, brokerPID int) procsCPU {
	if queryPID <= 0 || brokerPID <= 0 {
		return procsCPU{}
	}
	q, err1 := procstat.CPU(queryPID)
	b, err2 := procstat.CPU(brokerPID)
	return procsCPU{query: q, broker: b, ok: err1 == nil && err2 == nil}
}

// asyncLabel marks the latency runs with asynchronous progress tracking.
const asyncLabel = "asyncProgressTrackingEnabled (opt-in, at-least-once)"

// isDone reports whether the query process has ended (on its own: a
// failure Stop reports).
func isDone(p queryrun.Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

// recordLatency is one record's latency (ms): to the end of the batch
// that committed it, and to that batch's start; batch indexes the
// progress reports.
type recordLatency struct {
	total, before int32
	batch         int32
}

// recordLatencies reads the topic back for the records' produce
// timestamps and returns, for every record produced after the warm-up, the
// end and the start of the batch that committed it minus its timestamp,
// and the earliest timestamp.
func recordLatencies(ctx context.Context, addr, topic string, ps []*progress.Progress, want int64, warmup time.Duration) ([]recordLatency, time.Time, error) {
	type span struct {
		start, end      int64
		startMs, doneMs int64
		batch           int32
	}
	spans := map[int32][]span{}
	for i, p := range ps {
		st, err := progress.ParseTime(p.Timestamp)
		if err != nil {
			return nil, time.Time{}, err
		}
		done := st.UnixMilli() + p.BatchDuration
		for _, s := range p.Sources {
			a, b := sparktext.PartitionOffsets(s.StartOffset), sparktext.PartitionOffsets(s.EndOffset)
			for part, e := range b {
				spans[part] = append(spans[part], span{start: a[part], end: e, startMs: st.UnixMilli(), doneMs: done, batch: int32(i)})
			}
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, time.Time{}, err
	}
	defer cl.Close()
	var lat []recordLatency
	var first int64 = math.MaxInt64
	type rec struct {
		part     int32
		off, tms int64
	}
	var recs []rec
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for int64(len(recs)) < want {
		f := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, time.Time{}, fmt.Errorf("read back %s: got %d of %d records: %w", topic, len(recs), want, err)
		}
		f.EachRecord(func(r *kgo.Record) {
			recs = append(recs, rec{r.Partition, r.Offset, r.Timestamp.UnixMilli()})
			first = min(first, r.Timestamp.UnixMilli())
		})
	}
	for _, r := range recs {
		if r.tms < first+warmup.Milliseconds() {
			continue // warm-up
		}
		for _, s := range spans[r.part] {
			if r.off >= s.start && r.off < s.end {
				lat = append(lat, recordLatency{total: int32(max(0, s.doneMs-r.tms)), before: int32(max(0, s.startMs-r.tms)), batch: s.batch})
				break
			}
		}
	}
	return lat, time.UnixMilli(first), nil
}

// tailOf describes the records at or above the p99: where their latency
// went, on average.
func tailOf(lat []recordLatency, p99 float64, ps []*progress.Progress) *LatencyTail {
	t := &LatencyTail{}
	batches := map[int32]bool{}
	var before, in, logs float64
	for _, r := range lat {
		if float64(r.total) < p99 {
			continue
		}
		t.Records++
		batches[r.batch] = true
		p := ps[r.batch]
		before += float64(r.before)
		in += float64(p.BatchDuration)
		logs += float64(p.DurationMs[progress.DurWALCommit] + p.DurationMs[progress.DurCommitOffsets])
	}
	if t.Records == 0 {
		return nil
	}
	n := float64(t.Records)
	t.Batches = len(batches)
	t.BeforeBatchMs, t.BatchMs, t.LogWritesMs = before/n, in/n, logs/n
	return t
}

// phasesOf sums each durationMs part over the run's batches.
func phasesOf(ps []*progress.Progress) Phases {
	var ph Phases
	for _, p := range ps {
		ph.BatchMs += p.BatchDuration
		ph.LatestOffsetMs += p.DurationMs[progress.DurLatestOffset]
		ph.WalCommitMs += p.DurationMs[progress.DurWALCommit]
		ph.AddBatchMs += p.DurationMs[progress.DurAddBatch]
		ph.CommitOffsetsMs += p.DurationMs[progress.DurCommitOffsets]
	}
	return ph
}
