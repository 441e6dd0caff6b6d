// Package diagnose names what limits a batch: it splits the batch's time
// into source fetch, transform, sink write and checkpoint, measures skew and
// how tasks fit on the workers, and turns that into findings with numeric
// advice ("sink write is 78 % of batch time; admitting more will not help").
//
// Flink shows that a task is backpressured and leaves the reasoning to the
// operator; here the reasoning is a pure, tested function of one batch's
// measurements.
package diagnose

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Task is one task's measurements.
type Task struct {
	Name string
	Rows int64
	// Fetch is time waiting for the source; Transform and Sink are time in
	// the expressions and in the sink writer (Write + Close); Overhead is
	// task set-up (opening the writer).
	Fetch, Transform, Sink, Overhead time.Duration
	// Store is the part of Sink spent waiting for the sink's storage
	// (uploads to an object store, disk writes).
	Store time.Duration
	Total time.Duration
}

// Batch is what one batch measured.
type Batch struct {
	Duration   time.Duration // the whole trigger
	Checkpoint time.Duration // offsets + commit log writes
	Planning   time.Duration // latest offsets
	SinkCommit time.Duration // the sink's batch commit
	Workers    int
	// TriggerInterval is the processingTime interval (0 for the default
	// trigger). A batch that uses less than half of it is not under
	// pressure: its shares are reported, but nothing is blamed.
	TriggerInterval time.Duration
	Tasks           []Task
	// Backlog per partition (name → offsets behind latest) at planning.
	Backlog map[string]int64

	// Shuffle are the stage-2 tasks of a stateful query, one per shuffle
	// partition (Rows: the rows the exchange gave it; Sink: its sink
	// writes; the rest of Total is merging, state updates and emission).
	// Tasks are then the stage-1 (source) tasks.
	Shuffle []Task
	// StateCommit is the wall time of committing the batch's state stores.
	StateCommit time.Duration
	// Operators are the stateful operators, in plan order.
	Operators []Operator
}

// Operator is one stateful operator's time in a batch (summed over its
// state stores, as Spark's progress sums them).
type Operator struct {
	ID   int
	Name string // progress operatorName, e.g. stateStoreSave
	// Update, Removal and Commit are allUpdatesTimeMs, allRemovalsTimeMs
	// and commitTimeMs.
	Update, Removal, Commit time.Duration
	// Rows is numRowsTotal, Stores numStateStoreInstances.
	Rows   int64
	Stores int64
}

// Stage names.
const (
	StageFetch      = "source fetch"
	StageTransform  = "transform"
	StageSink       = "sink write"
	StageStore      = "store write"
	StageCheckpoint = "checkpoint"
	StagePlanning   = "planning"
	// StageState is a stateful query's stage 2 (merging, state updates,
	// eviction) and the commit of its state stores.
	StageState = "state"
)

// Finding is one observation with advice.
type Finding struct {
	Kind    string `json:"kind"` // stage, skew, parallelism, overhead
	Message string `json:"message"`
}

// Result is the diagnosis of a batch.
type Result struct {
	// Limiting is the stage that took the largest share of the batch.
	Limiting string `json:"limiting"`
	// Shares maps each stage to its share of the batch's time (0..1).
	Shares map[string]float64 `json:"shares"`
	// Skew is the slowest task's time ÷ the median task time.
	Skew float64 `json:"skew"`
	// Waves is ⌈tasks ÷ workers⌉.
	Waves    int       `json:"waves"`
	Findings []Finding `json:"findings,omitempty"`
}

// Summary is the first finding's message, or the limiting stage.
func (r Result) Summary() string {
	if len(r.Findings) > 0 {
		return r.Findings[0].Message
	}
	if r.Limiting == "" {
		return ""
	}
	return fmt.Sprintf("%s is the largest share (%.0f %%)", r.Limiting, 100*r.Shares[r.Limiting])
}

func pct(f float64) string { return fmt.Sprintf("%.0f %%", 100*f) }

// Analyze diagnoses one batch.
func Analyze(b Batch) Result {
	r := Result{Shares: map[string]float64{}}
	if b.Duration <= 0 {
		return r
	}
	workers := max(b.Workers, 1)
	var fetch, transform, sink, store, overhead time.Duration
	var totals []time.Duration
	for _, t := range b.Tasks {
		fetch += t.Fetch
		transform += t.Transform
		st := min(t.Store, t.Sink)
		sink += t.Sink - st
		store += st
		overhead += t.Overhead
		totals = append(totals, t.Total)
	}
	// Task time runs on `workers` slots in parallel; convert each stage's
	// task-seconds into wall-clock share of the batch. Sequential parts
	// (planning, checkpoint, sink commit) count as they are.
	par := float64(min(workers, max(len(b.Tasks), 1)))
	wall := float64(b.Duration)
	share := func(d time.Duration, parallel bool) float64 {
		v := float64(d)
		if parallel {
			v /= par
		}
		return math.Min(v/wall, 1)
	}
	r.Shares[StageFetch] = share(fetch, true)
	r.Shares[StageTransform] = share(transform, true)
	r.Shares[StageSink] = share(sink, true) + share(b.SinkCommit, false)
	if store > 0 {
		r.Shares[StageStore] = share(store, true)
	}
	if len(b.Shuffle) > 0 || b.StateCommit > 0 {
		// Stage 2 runs on the same workers after stage 1.
		var stateWork, stageSink time.Duration
		for _, t := range b.Shuffle {
			stateWork += max(t.Total-t.Sink, 0)
			stageSink += t.Sink
		}
		spar := float64(min(workers, max(len(b.Shuffle), 1)))
		r.Shares[StageState] = math.Min((float64(stateWork)/spar+float64(b.StateCommit))/wall, 1)
		r.Shares[StageSink] = math.Min(r.Shares[StageSink]+float64(stageSink)/spar/wall, 1)
	}
	r.Shares[StageCheckpoint] = share(b.Checkpoint, false)
	r.Shares[StagePlanning] = share(b.Planning, false)
	stages := []string{StageFetch, StageTransform, StageSink, StageStore, StageState, StageCheckpoint, StagePlanning}
	r.Limiting = slices.MaxFunc(stages, func(a, c string) int { return cmp.Compare(r.Shares[a], r.Shares[c]) })

	relaxed := b.TriggerInterval > 0 && b.Duration < b.TriggerInterval/2
	switch top := r.Shares[r.Limiting]; {
	case top < 0.4 || relaxed:
		// No stage dominates; say nothing about stages.
	case r.Limiting == StageSink:
		r.Findings = append(r.Findings, Finding{"stage", fmt.Sprintf("sink write is %s of batch time; admitting more will not help — speed up or scale the sink", pct(top))})
	case r.Limiting == StageStore:
		r.Findings = append(r.Findings, Finding{"stage", fmt.Sprintf("waiting for the store (uploads, disk writes) is %s of batch time: the store is the bottleneck — admitting more will not help; raise sluice.storage.uploadConcurrency or the upload memory (sluice.memory.budget), write fewer, larger files (maxRecordsPerFile, sluice.targetFileSize), or run closer to the store", pct(top))})
	case r.Limiting == StageFetch:
		r.Findings = append(r.Findings, Finding{"stage", fmt.Sprintf("source fetch is %s of batch time; the broker or network limits throughput — check fetch sizes (kafka.fetch.max.bytes) and broker load", pct(top))})
	case r.Limiting == StageTransform:
		advice := "the transform is CPU-bound"
		if len(b.Tasks) > workers {
			advice += fmt.Sprintf("; more workers (now %d for %d tasks) would help", workers, len(b.Tasks))
		}
		r.Findings = append(r.Findings, Finding{"stage", fmt.Sprintf("transform is %s of batch time; %s", pct(top), advice)})
	case r.Limiting == StageCheckpoint:
		r.Findings = append(r.Findings, Finding{"stage", fmt.Sprintf("checkpoint writes are %s of batch time; batches are too small for their fixed cost — raise the trigger interval or the admission limit", pct(top))})
	case r.Limiting == StageState:
		r.Findings = append(r.Findings, Finding{"stage", stateFinding(b, top)})
	case r.Limiting == StagePlanning:
		r.Findings = append(r.Findings, Finding{"stage", fmt.Sprintf("planning (listing offsets) is %s of batch time; the broker answers slowly or batches are tiny", pct(top))})
	}

	// Skew across tasks.
	if len(totals) >= 2 {
		s := slices.Clone(totals)
		slices.Sort(s)
		med := s[len(s)/2]
		if len(s)%2 == 0 {
			med = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		if med > 0 {
			r.Skew = float64(s[len(s)-1]) / float64(med)
		}
		if r.Skew >= 2 && s[len(s)-1] > b.Duration/4 && !relaxed {
			slow := slices.MaxFunc(b.Tasks, func(a, c Task) int { return cmp.Compare(a.Total, c.Total) })
			r.Findings = append(r.Findings, Finding{"skew", fmt.Sprintf("task %s took %.1f× the median task; the batch waits for it", slow.Name, r.Skew)})
		}
	}
	// Skew across shuffle partitions (stage 2): compared among the
	// partitions that received rows, so that keys spread over few of many
	// partitions are not blamed for the empty ones.
	if f, ok := shuffleSkew(b); ok && !relaxed {
		r.Findings = append(r.Findings, f)
	}
	// Backlog skew.
	var totalBacklog int64
	for _, v := range b.Backlog {
		totalBacklog += v
	}
	if totalBacklog > 0 && len(b.Backlog) >= 2 && !relaxed {
		names := make([]string, 0, len(b.Backlog))
		for k := range b.Backlog {
			names = append(names, k)
		}
		slices.Sort(names)
		top := slices.MaxFunc(names, func(a, c string) int { return cmp.Compare(b.Backlog[a], b.Backlog[c]) })
		frac := float64(b.Backlog[top]) / float64(totalBacklog)
		fair := 1 / float64(len(b.Backlog))
		if frac >= 0.5 && frac >= 2*fair {
			r.Findings = append(r.Findings, Finding{"skew", fmt.Sprintf("partition %s holds %s of the backlog: skew — its task bounds the batch; repartition hot keys or raise its share (minPartitions)", top, pct(frac))})
		}
	}
	// Parallelism fit.
	if n := len(b.Tasks); n > 0 && !relaxed {
		r.Waves = (n + workers - 1) / workers
		if r.Waves >= 4 {
			per := perTaskOverhead(b.Tasks)
			ovShare := float64(per) * float64(r.Waves) / wall
			msg := fmt.Sprintf("%d tasks on %d workers = %d waves", n, workers, r.Waves)
			if per > 0 {
				msg += fmt.Sprintf("; per-task overhead %s is %s of the batch", per.Round(100*time.Microsecond), pct(math.Min(ovShare, 1)))
			}
			if ovShare >= 0.2 || r.Waves >= 10 {
				msg += " — fewer, larger partitions or more workers would help"
				r.Findings = append(r.Findings, Finding{"parallelism", msg})
			}
		}
	}
	// Most important first: stage, then skew, then parallelism (stable).
	return r
}

// stateFinding names the stateful operator that takes the most time and
// says what would help.
func stateFinding(b Batch, share float64) string {
	if len(b.Operators) == 0 {
		return fmt.Sprintf("stateful processing (stage 2 and state commits) is %s of batch time", pct(share))
	}
	op := slices.MaxFunc(b.Operators, func(x, y Operator) int {
		return cmp.Compare(x.Update+x.Removal+x.Commit, y.Update+y.Removal+y.Commit)
	})
	msg := fmt.Sprintf("stateful operator %d (%s) is the bottleneck: state is %s of batch time (updates %s, evictions %s, commits %s over %d state stores; %s keys)",
		op.ID, op.Name, pct(share), op.Update.Round(time.Millisecond), op.Removal.Round(time.Millisecond), op.Commit.Round(time.Millisecond), op.Stores, count(float64(op.Rows)))
	if op.Commit > op.Update+op.Removal {
		msg += fmt.Sprintf(" — committing %d stores every batch dominates: lower spark.sql.shuffle.partitions (pinned by a new checkpoint) or admit larger batches", op.Stores)
	} else {
		msg += " — state updates are CPU-bound: more workers, fewer keys (coarser windows or keys), or a shorter watermark delay so state is evicted sooner"
	}
	return msg
}

// shuffleSkew reports a stage-2 task that takes much longer than the
// median of the shuffle partitions that received rows.
func shuffleSkew(b Batch) (Finding, bool) {
	var busy []Task
	var rows int64
	for _, t := range b.Shuffle {
		if t.Rows > 0 {
			busy = append(busy, t)
			rows += t.Rows
		}
	}
	if len(busy) < 2 {
		return Finding{}, false
	}
	totals := make([]time.Duration, len(busy))
	for i, t := range busy {
		totals[i] = t.Total
	}
	slices.Sort(totals)
	med := totals[len(totals)/2]
	if len(totals)%2 == 0 {
		med = (totals[len(totals)/2-1] + totals[len(totals)/2]) / 2
	}
	slow := slices.MaxFunc(busy, func(x, y Task) int { return cmp.Compare(x.Total, y.Total) })
	if med <= 0 || float64(slow.Total) < 2*float64(med) || slow.Total <= b.Duration/4 {
		return Finding{}, false
	}
	return Finding{"skew", fmt.Sprintf("shuffle partition %s took %.1f× the median stage-2 task with %s of the rows: skewed keys — the batch waits for it; spread the hot key (add a salt column to the grouping) or raise spark.sql.shuffle.partitions",
		strings.TrimPrefix(slow.Name, "shuffle-"), float64(slow.Total)/float64(med), pct(float64(slow.Rows)/float64(rows)))}, true
}

// perTaskOverhead estimates a task's fixed cost as the intercept of a
// least-squares fit of task time against rows, bounded below by 0 and above
// by the shortest task; with no spread in rows it is the shortest task.
func perTaskOverhead(tasks []Task) time.Duration {
	n := float64(len(tasks))
	var sx, sy, sxx, sxy float64
	minT := time.Duration(math.MaxInt64)
	for _, t := range tasks {
		x, y := float64(t.Rows), float64(t.Total)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
		minT = min(minT, t.Total)
	}
	den := n*sxx - sx*sx
	if den <= 0 {
		return minT
	}
	slope := (n*sxy - sx*sy) / den
	icept := (sy - slope*sx) / n
	if icept < 0 {
		icept = 0
	}
	return min(time.Duration(icept), minT)
}

// Line renders the result for a one-line CLI summary.
func (r Result) Line() string {
	var parts []string
	for _, f := range r.Findings {
		parts = append(parts, f.Message)
	}
	return strings.Join(parts, "; ")
}

// StageReadLimit is the Limiting "stage" when the read limit, not the
// work, bounds a batch.
const StageReadLimit = "read limit"

// Limit is what ReadLimit needs to tell whether a static read limit holds
// a query back: the limit, how the recent batches used their trigger,
// what is waiting and what is arriving.
type Limit struct {
	// Option names the setting at fault, e.g. "maxOffsetsPerTrigger".
	Option string
	// Limit is the records a batch may admit (0: no limit).
	Limit int64
	// Bound: the batch admitted Limit records and left records behind.
	Bound bool
	// TriggerInterval is the processingTime interval (0: default trigger).
	TriggerInterval time.Duration
	// Duration is a recent batch's mean duration (the whole trigger);
	// Processing is the mean of its part that grows with the records
	// (running the tasks and the sink write), the rest being fixed cost.
	Duration, Processing time.Duration
	// Rows is the mean records a recent batch read.
	Rows float64
	// Backlog is the records behind now; Arrival the records arriving per
	// second (NaN: unknown, counted as none).
	Backlog int64
	Arrival float64
}

// Fill is the share of the trigger interval a suggested limit aims to
// fill, leaving room for variation.
const Fill = 0.8

// ReadLimit reports a read limit that binds: the last batch admitted the
// limit while records were left behind, and the recent batches used less
// than Fill of their trigger interval, so a larger limit would still fit.
// The finding gives the measured capacity, the admitted rate, a larger
// limit — the one that would fill Fill of the trigger (from a fit of batch
// time = fixed cost + records × cost per record), or, if smaller, the
// backlog plus one trigger's arrivals, the most a batch could find — and
// the time it would take to drain the backlog at that limit, or says that
// even that limit does not keep up with the arrivals.
func ReadLimit(l Limit) (Finding, bool) {
	if !l.Bound || l.Limit <= 0 || l.Backlog <= 0 || l.TriggerInterval <= 0 || l.Rows <= 0 ||
		l.Duration <= 0 || l.Processing <= 0 || float64(l.Duration) >= Fill*float64(l.TriggerInterval) {
		return Finding{}, false
	}
	interval := l.TriggerInterval.Seconds()
	perRecord := l.Processing.Seconds() / l.Rows
	fixed := max(0, (l.Duration - l.Processing).Seconds())
	capacity := l.Rows / l.Duration.Seconds()
	admitting := float64(l.Limit) / interval
	arrival := l.Arrival
	if math.IsNaN(arrival) || arrival < 0 {
		arrival = 0
	}
	// No larger than what fills Fill of the trigger, nor than what the
	// next batch could find: the backlog plus a trigger's arrivals.
	suggest := roundNice((Fill*interval - fixed) / perRecord)
	if need := roundUpNice(float64(l.Backlog) + arrival*interval); need < suggest {
		suggest = need
	}
	if suggest <= float64(l.Limit) {
		return Finding{}, false
	}
	option := l.Option
	if option == "" {
		option = "maxOffsetsPerTrigger"
	}
	msg := fmt.Sprintf("read limit is binding: capacity ≈ %s/s, admitting %s/s; ", count(roundSig(capacity)), count(admitting))
	if drain := suggest/interval - arrival; drain > 0 {
		msg += fmt.Sprintf("raising %s to ≈ %s would drain in %s", option, count(suggest), secs(float64(l.Backlog)/drain))
	} else {
		msg += fmt.Sprintf("even %s ≈ %s (the most a %s trigger fits) would not keep up with %s/s arriving: lengthen the trigger or scale out",
			option, count(suggest), l.TriggerInterval, count(arrival))
	}
	return Finding{Kind: "limit", Message: msg}, true
}

// WithReadLimit puts a read-limit finding first and sets Limiting to
// StageReadLimit; stage findings that say admitting more will not help are
// dropped, since the read limit is what holds the batch back.
func (r Result) WithReadLimit(f Finding) Result {
	out := r
	out.Limiting = StageReadLimit
	out.Findings = []Finding{f}
	for _, g := range r.Findings {
		if g.Kind != "stage" {
			out.Findings = append(out.Findings, g)
		}
	}
	return out
}

// roundNice rounds v down to two significant digits (27,431 → 27,000).
func roundNice(v float64) float64 {
	if v < 100 {
		return math.Floor(v)
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-1)
	return math.Floor(v/p) * p
}

// roundUpNice rounds v up to two significant digits (27,431 → 28,000).
func roundUpNice(v float64) float64 {
	if v < 100 {
		return math.Ceil(v)
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-1)
	return math.Ceil(v/p) * p
}

// roundSig rounds v to two significant digits (10,909 → 11,000).
func roundSig(v float64) float64 {
	if v < 100 {
		return math.Round(v)
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-1)
	return math.Round(v/p) * p
}

// count renders a number with thousands separators, e.g. "27,000".
func count(v float64) string {
	n := int64(math.Round(v))
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// secs renders seconds for people: "12 s", "3m20s".
func secs(s float64) string {
	if s < 60 {
		return fmt.Sprintf("%.0f s", math.Ceil(s))
	}
	return (time.Duration(math.Ceil(s)) * time.Second).String()
}
