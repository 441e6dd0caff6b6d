// Package rehearse runs the seed's backpressure checklist unattended: one
// query through four phases of load against Kafka — a steady baseline, a
// spike with no read limit, the spike with maxOffsetsPerTrigger and a tuned
// trigger, the spike with adaptive admission and a memory budget — and
// judges each phase stable or not from what it measured (progress, broker
// offsets, process memory), writing a report directory with the verdicts,
// the figures, charts and the raw data. A fifth phase, run only when asked
// for, puts a stateful query (the orders parsed with from_json, a
// watermark, a tumbling-window count per customer, append mode) through the
// same spike with adaptive admission and the memory budget, and judges its
// state memory too.
package rehearse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/loadgen"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/procstat"
	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/report"
	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/progress"
)

// Profile is the load and the knobs of a rehearsal.
type Profile struct {
	Name string
	// Partitions of each phase's topic; Workers is sluice.workers (0:
	// leave the engine's default).
	Partitions, Workers int
	// Trigger is the processingTime interval of the query.
	Trigger time.Duration
	// BaseRate is the steady arrival rate; SpikeFactor multiplies it from
	// Warmup for SpikeFor; After is how long phases 2–5 go on after the
	// spike; Baseline is the length of phase 1.
	BaseRate, SpikeFactor           float64
	Warmup, SpikeFor, After         time.Duration
	Baseline                        time.Duration
	SinkDelayPerRow, SinkDelayBatch time.Duration
	// RecordBytes is the minimum value size (order JSON padded).
	RecordBytes int
	// MemoryBudget is phase 4's sluice.memory.budget.
	MemoryBudget int64
	// Headroom is the share of the measured capacity phase 3's
	// maxOffsetsPerTrigger admits per trigger (e.g. 0.8).
	Headroom float64
	// AdaptiveTarget is phase 4's sluice.targetBatchDuration as a share of
	// the trigger interval.
	AdaptiveTarget float64
	// Window is the tumbling window of phase 5's count per key, and
	// WatermarkDelay the delay of its watermark on the orders' ts.
	Window, WatermarkDelay time.Duration
	// StatefulBudget is phase 5's sluice.memory.budget. A stateful query
	// reserves half of its budget for state and an eighth for the
	// exchange, so batches of phase 4's size need a larger budget.
	StatefulBudget int64
}

// Quick is the CI profile: the four phases in well under a minute. The
// sink costs 400 µs per row on each of 4 workers (≈ 10,000 rows/s); the
// spike (8 × 2,000 rows/s for 3 s) exceeds that, so a backlog builds.
func Quick() Profile {
	return Profile{
		Name: "quick", Partitions: 4, Workers: 4, Trigger: 500 * time.Millisecond,
		BaseRate: 2000, SpikeFactor: 8, Warmup: 2500 * time.Millisecond, SpikeFor: 3 * time.Second, After: 5500 * time.Millisecond,
		Baseline: 5 * time.Second, SinkDelayPerRow: 400 * time.Microsecond,
		RecordBytes: 1024, MemoryBudget: 16 << 20, Headroom: 0.8, AdaptiveTarget: 1,
		Window: 2 * time.Second, WatermarkDelay: time.Second, StatefulBudget: 64 << 20,
	}
}

// Default is closer to the seed: a 5-second trigger, a 10× spike lasting a
// minute on 8 partitions; about ten minutes in all. The sink costs 800 µs
// per row on each of 8 workers (≈ 10,000 rows/s); the spike brings
// 15,000 rows/s.
func Default() Profile {
	return Profile{
		Name: "default", Partitions: 8, Workers: 8, Trigger: 5 * time.Second,
		BaseRate: 1500, SpikeFactor: 10, Warmup: 15 * time.Second, SpikeFor: time.Minute, After: 100 * time.Second,
		Baseline: time.Minute, SinkDelayPerRow: 800 * time.Microsecond,
		RecordBytes: 256, MemoryBudget: 64 << 20, Headroom: 0.8, AdaptiveTarget: 1,
		Window: 10 * time.Second, WatermarkDelay: 5 * time.Second, StatefulBudget: 256 << 20,
	}
}

// Validate reports a profile that cannot run.
func (p Profile) Validate() error {
	switch {
	case p.Partitions < 1:
		return fmt.Errorf("rehearse: %d partitions", p.Partitions)
	case p.Trigger <= 0:
		return fmt.Errorf("rehearse: trigger %s must be positive", p.Trigger)
	case p.BaseRate <= 0 || p.SpikeFactor < 1 || math.IsInf(p.BaseRate*p.SpikeFactor, 0):
		return fmt.Errorf("rehearse: base rate %v and spike factor %v: want a positive rate and a factor ≥ 1", p.BaseRate, p.SpikeFactor)
	case p.Warmup <= 0 || p.SpikeFor <= 0 || p.After <= 0 || p.Baseline <= 0:
		return errors.New("rehearse: warm-up, spike, after-spike and baseline durations must be positive")
	case p.Headroom <= 0 || p.Headroom > 1:
		return fmt.Errorf("rehearse: headroom %v must be in (0, 1]", p.Headroom)
	case p.AdaptiveTarget <= 0 || p.AdaptiveTarget > 2:
		return fmt.Errorf("rehearse: adaptive target %v × trigger must be in (0, 2]", p.AdaptiveTarget)
	case p.MemoryBudget < 0 || p.StatefulBudget < 0 || p.RecordBytes < 0 || p.Workers < 0:
		return errors.New("rehearse: memory budgets, record size and workers must not be negative")
	case p.Window < 0 || p.WatermarkDelay < 0:
		return fmt.Errorf("rehearse: phase 5's window %s and watermark delay %s must not be negative", p.Window, p.WatermarkDelay)
	}
	return nil
}

// CheckPhases reports phase numbers that do not exist and settings the
// selected phases cannot run with (phase 5 needs a window of at least a
// millisecond).
func (p Profile) CheckPhases(phases []int) error {
	for _, n := range phases {
		if n < 1 || n > LastPhase {
			return fmt.Errorf("rehearse: phase %d does not exist (1–%d)", n, LastPhase)
		}
		if n == StatefulPhase && p.Window < time.Millisecond {
			return fmt.Errorf("rehearse: phase %d's window %s must be at least 1ms", n, p.Window)
		}
	}
	return nil
}

// Phases: 1–4 are the seed's checklist and run by default; StatefulPhase
// runs only when asked for.
const (
	StatefulPhase = 5
	LastPhase     = StatefulPhase
)

// DefaultPhases are the phases run when none are given.
var DefaultPhases = []int{1, 2, 3, 4}

// PhaseSpec is what one phase runs.
type PhaseSpec struct {
	N     int    `json:"phase"`
	Name  string `json:"name"`
	Title string `json:"title"`
	Spike bool   `json:"spike"`
	// Duration of the load.
	Duration time.Duration `json:"-"`
	Trigger  time.Duration `json:"-"`
	// Read limits and admission of the phase (0/false: none).
	MaxOffsetsPerTrigger int64         `json:"maxOffsetsPerTrigger,omitempty"`
	Adaptive             bool          `json:"adaptive,omitempty"`
	TargetBatch          time.Duration `json:"-"`
	MemoryBudget         int64         `json:"memoryBudgetBytes,omitempty"`
	// Stateful phases run StatefulQuery: a Window tumbling count per key
	// behind a watermark WatermarkDelay behind the latest event time.
	Stateful       bool          `json:"stateful,omitempty"`
	Window         time.Duration `json:"-"`
	WatermarkDelay time.Duration `json:"-"`
	// Notes explain how the settings were chosen.
	Notes []string `json:"notes,omitempty"`
}

// MarshalJSON adds the durations in milliseconds.
func (s PhaseSpec) MarshalJSON() ([]byte, error) {
	type plain PhaseSpec
	return json.Marshal(struct {
		plain
		DurationMs    int64 `json:"durationMs"`
		TriggerMs     int64 `json:"triggerMs"`
		TargetBatchMs int64 `json:"targetBatchMs,omitempty"`
		WindowMs      int64 `json:"windowMs,omitempty"`
		WatermarkMs   int64 `json:"watermarkDelayMs,omitempty"`
	}{plain(s), s.Duration.Milliseconds(), s.Trigger.Milliseconds(), s.TargetBatch.Milliseconds(),
		s.Window.Milliseconds(), s.WatermarkDelay.Milliseconds()})
}

// Settings renders the phase's settings in words.
func (s PhaseSpec) Settings() string {
	parts := []string{"processingTime " + s.Trigger.String()}
	if s.Stateful {
		parts = append(parts, fmt.Sprintf("from_json → watermark %s → %s tumbling window count per customer, append", s.WatermarkDelay, s.Window))
	}
	if s.MaxOffsetsPerTrigger > 0 {
		parts = append(parts, "maxOffsetsPerTrigger "+report.Number(s.MaxOffsetsPerTrigger))
	}
	if s.Adaptive {
		parts = append(parts, "adaptive admission (target "+s.TargetBatch.String()+")")
	}
	if s.MemoryBudget > 0 {
		parts = append(parts, "memory budget "+report.Bytes(s.MemoryBudget))
	}
	if len(parts) == 1 {
		parts = append(parts, "no read limit")
	}
	return strings.Join(parts, ", ")
}

// Phase is a phase's spec, what it measured and its verdict.
type Phase struct {
	Spec    PhaseSpec      `json:"spec"`
	Verdict Verdict        `json:"verdict"`
	Data    PhaseData      `json:"-"`
	Load    loadgen.Result `json:"-"`
	Dir     string         `json:"dir"`
}

// Config configures a rehearsal.
type Config struct {
	Profile Profile
	// Query is the query to rehearse (nil: queryrun.SeedQuery).
	Query *queryrun.Query
	// Bootstrap is a Kafka cluster to use; "" starts an embedded broker.
	Bootstrap string
	// KafkaOptions are client security options (kafka.security.protocol…)
	// for the load generator, the sampler and the query's source.
	KafkaOptions map[string]string
	// TopicPrefix names the phase topics (default "rehearse").
	TopicPrefix string
	// Dir is the report directory (created).
	Dir string
	// Runner starts the phase queries.
	Runner queryrun.Runner
	// Phases selects phases by number (default 1–4; phase 5, the stateful
	// one, runs only when listed).
	Phases []int
	// MaxOffsetsPerTrigger overrides phase 3's computed limit (0: compute).
	MaxOffsetsPerTrigger int64
	// Out receives the human-readable account as it happens (nil: none).
	Out    io.Writer
	Logger *slog.Logger
}

// Result is a finished rehearsal.
type Result struct {
	Profile  Profile `json:"-"`
	Phases   []*Phase
	Capacity float64
	Broker   string
	Runner   string
	Query    *queryrun.Query
	Started  time.Time
	Took     time.Duration
}

// Final returns the last phase run, or nil.
func (r *Result) Final() *Phase {
	if len(r.Phases) == 0 {
		return nil
	}
	return r.Phases[len(r.Phases)-1]
}

// Run runs the rehearsal and writes its report into cfg.Dir. The error is
// about the rehearsal itself (a broker, a query that failed to start…),
// never about a phase being unstable: see Result.Final().Verdict.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Profile.Validate(); err != nil {
		return nil, err
	}
	if cfg.Runner == nil {
		return nil, errors.New("rehearse: no runner")
	}
	if cfg.Query == nil {
		cfg.Query = queryrun.SeedQuery()
	}
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = "rehearse"
	}
	if len(cfg.Phases) == 0 {
		cfg.Phases = slices.Clone(DefaultPhases)
	}
	if err := cfg.Profile.CheckPhases(cfg.Phases); err != nil {
		return nil, err
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("rehearse: report directory: %w", err)
	}
	res := &Result{Profile: cfg.Profile, Query: cfg.Query, Runner: cfg.Runner.Describe(), Started: time.Now(), Capacity: math.NaN()}
	var secOpts []kgo.Opt
	if len(cfg.KafkaOptions) > 0 {
		var err error
		if secOpts, err = kafkaClientOpts(cfg.KafkaOptions); err != nil {
			return nil, err
		}
	}
	addr := cfg.Bootstrap
	if addr == "" {
		b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0", Logger: log})
		if err != nil {
			return nil, err
		}
		defer b.Close()
		addr = b.Addr()
		res.Broker = "embedded kfake broker on " + addr
	} else {
		res.Broker = "Kafka at " + addr
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(addr, ",")...)}, secOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("rehearse: admin client: %w", err)
	}
	defer cl.Close()
	r := &rehearsal{cfg: cfg, res: res, addr: addr, adm: kadm.NewClient(cl), secOpts: secOpts, out: out, log: log,
		runID: strconv.FormatInt(time.Now().Unix(), 36)}
	fmt.Fprintf(out, "rehearsal (%s profile) of %s\non the %s; report in %s\n", cfg.Profile.Name, cfg.Query.Origin, res.Broker, cfg.Dir)
	for _, n := range cfg.Phases {
		if ctx.Err() != nil {
			break // interrupted: report the phases done
		}
		spec := r.plan(n)
		ph, err := r.runPhase(ctx, spec)
		if err != nil {
			return res, err
		}
		res.Phases = append(res.Phases, ph)
		// The unlimited spike's big batches amortise the fixed cost of a
		// batch best: its capacity is the query's. Without phase 2, any
		// capacity measured helps phase 3 choose its limit.
		// Phase 5 runs another query: its capacity is its own.
		if c := float64(ph.Verdict.PhaseCapacityRowsPerSec); !math.IsNaN(c) && !ph.Spec.Stateful {
			switch {
			case n == 2:
				res.Capacity, r.capFromPhase2 = c, true
			case !r.capFromPhase2 && (math.IsNaN(res.Capacity) || c > res.Capacity):
				res.Capacity = c
			}
		}
		printVerdict(out, ph)
	}
	// Re-judge the drain figures of every phase against the final capacity.
	for _, ph := range res.Phases {
		ph.Verdict = Analyze(ph.Data, r.capacityFor(ph.Spec.N))
	}
	res.Took = time.Since(res.Started)
	if err := WriteReport(cfg.Dir, res); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

type rehearsal struct {
	cfg           Config
	res           *Result
	addr          string
	adm           *kadm.Client
	secOpts       []kgo.Opt
	out           io.Writer
	log           *slog.Logger
	runID         string
	capFromPhase2 bool
}

// capacityFor is the capacity used for phase n's minimum drain time: the
// unlimited spike phase's when it ran, else the phase's own (always its own
// for the stateful phase, which runs another query).
func (r *rehearsal) capacityFor(n int) float64 {
	if r.capFromPhase2 && n != StatefulPhase {
		return r.res.Capacity
	}
	return math.NaN()
}

// plan decides phase n's settings from the profile and what earlier
// phases measured.
func (r *rehearsal) plan(n int) PhaseSpec {
	p := r.cfg.Profile
	spikeDur := p.Warmup + p.SpikeFor + p.After
	s := PhaseSpec{N: n, Trigger: p.Trigger, Spike: n > 1, Duration: spikeDur}
	switch n {
	case 1:
		s.Name, s.Title, s.Duration = "baseline", "Baseline at steady load", p.Baseline
	case 2:
		s.Name, s.Title = "spike-unlimited", "Spike with no read limit"
	case 3:
		s.Name, s.Title = "spike-max-offsets", "Spike with maxOffsetsPerTrigger and a tuned trigger"
		var earlier []*progress.Progress
		for _, ph := range r.res.Phases {
			earlier = append(earlier, ph.Data.Progress...)
		}
		if f := FixedCost(earlier); f > 0 && 10*f > s.Trigger {
			s.Trigger = (10*f + 99*time.Millisecond).Truncate(100 * time.Millisecond)
			s.Notes = append(s.Notes, fmt.Sprintf("trigger raised from %s to %s: the fixed cost of a batch (median %s, measured) should stay under a tenth of it",
				p.Trigger, s.Trigger, f))
		} else if f > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("trigger kept at %s: the fixed cost of a batch (median %s, measured) is under a tenth of it", s.Trigger, f))
		}
		capacity := r.res.Capacity
		switch {
		case r.cfg.MaxOffsetsPerTrigger > 0:
			s.MaxOffsetsPerTrigger = r.cfg.MaxOffsetsPerTrigger
			s.Notes = append(s.Notes, "maxOffsetsPerTrigger given on the command line")
		case !math.IsNaN(capacity):
			s.MaxOffsetsPerTrigger = max(1, int64(math.Round(p.Headroom*capacity*s.Trigger.Seconds())))
			s.Notes = append(s.Notes, fmt.Sprintf("maxOffsetsPerTrigger = %.2f headroom × %s rows/s measured capacity × %s trigger = %s",
				p.Headroom, report.Number(int64(capacity)), s.Trigger, report.Number(s.MaxOffsetsPerTrigger)))
		default:
			s.MaxOffsetsPerTrigger = max(1, int64(math.Round(p.BaseRate*p.SpikeFactor*s.Trigger.Seconds())))
			s.Notes = append(s.Notes, "capacity not measured (phase 2 not run): maxOffsetsPerTrigger set to one trigger of spike arrivals")
		}
	case 4:
		s.Name, s.Title = "spike-adaptive-budget", "Spike with adaptive admission and a memory budget"
		s.Adaptive = true
		s.TargetBatch = time.Duration(float64(p.Trigger) * p.AdaptiveTarget).Round(time.Millisecond)
		s.MemoryBudget = p.MemoryBudget
	case StatefulPhase:
		s.Name, s.Title = "spike-stateful", "Stateful window count under the spike, adaptive admission and a memory budget"
		s.Adaptive = true
		s.TargetBatch = time.Duration(float64(p.Trigger) * p.AdaptiveTarget).Round(time.Millisecond)
		s.MemoryBudget = p.StatefulBudget
		s.Stateful, s.Window, s.WatermarkDelay = true, p.Window, p.WatermarkDelay
		s.Notes = append(s.Notes, "the query is sluice's own windowed count (phase5/pipeline.yaml), whatever --pipeline says; spark.sql.shuffle.partitions = the topic's partitions")
		if s.MemoryBudget > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("state may hold %s, half of the budget, and the exchange buffers at most an eighth; batches are planned in what is left (docs/stateful.md)",
				report.Bytes(engine.StateShare(s.MemoryBudget))))
		}
	}
	if n == 1 {
		s.Spike = false
	}
	return s
}

// StateMemoryFailure returns the line of err that says the query stopped
// because its state passed its share of the memory budget (or a store's
// limit), "" when err is not that. A child process's error carries the
// engine's message as text; an in-process one the error itself.
func StateMemoryFailure(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	match := func(line string) bool {
		return strings.Contains(line, "would take state memory to") || strings.Contains(line, "over the state store limit of")
	}
	if !errors.Is(err, state.ErrStateMemoryExceeded) && !match(msg) {
		return ""
	}
	for _, line := range strings.Split(msg, "\n") {
		if match(line) {
			return strings.TrimSpace(line)
		}
	}
	return strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0])
}

func lookupFold(m map[string]string, key string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// kafkaClientOpts applies security options to the rehearsal's own
// clients.
func kafkaClientOpts(kv map[string]string) ([]kgo.Opt, error) {
	opts, err := kafkaauth.ClientOpts(options.New(kv))
	if err != nil {
		return nil, fmt.Errorf("rehearse: kafka options: %w", err)
	}
	return opts, nil
}

// runPhase runs one phase and judges it.
func (r *rehearsal) runPhase(ctx context.Context, spec PhaseSpec) (*Phase, error) {
	p := r.cfg.Profile
	dir := filepath.Join(r.cfg.Dir, fmt.Sprintf("phase%d", spec.N))
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("rehearse: clean %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rehearse: %w", err)
	}
	topic := fmt.Sprintf("%s-%s-p%d", r.cfg.TopicPrefix, r.runID, spec.N)
	if err := r.createTopic(ctx, topic, int32(p.Partitions)); err != nil {
		return nil, err
	}
	defer r.deleteTopic(topic)

	pq := queryrun.Setup{
		Name: fmt.Sprintf("rehearse-phase%d", spec.N), Bootstrap: r.addr, Topic: topic,
		Checkpoint: filepath.Join(dir, "checkpoint"), Trigger: spec.Trigger,
		SourceOptions: map[string]string{}, SinkOptions: map[string]string{}, Options: map[string]string{},
	}
	for k, v := range r.cfg.KafkaOptions {
		pq.SourceOptions[k] = v
	}
	if spec.MaxOffsetsPerTrigger > 0 {
		pq.SourceOptions["maxOffsetsPerTrigger"] = strconv.FormatInt(spec.MaxOffsetsPerTrigger, 10)
	}
	if spec.Adaptive {
		pq.SourceOptions["sluice.admission"] = "adaptive"
		pq.SourceOptions["sluice.targetBatchDuration"] = spec.TargetBatch.String()
	}
	if spec.MemoryBudget > 0 {
		pq.Options["sluice.memory.budget"] = strconv.FormatInt(spec.MemoryBudget, 10)
	}
	query := r.cfg.Query
	if spec.Stateful {
		query = StatefulQuery(spec.Window, spec.WatermarkDelay, r.cfg.Query)
		if _, set := lookupFold(query.Options, "spark.sql.shuffle.partitions"); !set {
			pq.Options["spark.sql.shuffle.partitions"] = strconv.Itoa(p.Partitions)
		}
	}
	if p.Workers > 0 {
		if _, set := lookupFold(query.Options, "sluice.workers"); !set {
			pq.Options["sluice.workers"] = strconv.Itoa(p.Workers)
		}
	}
	if p.SinkDelayPerRow > 0 {
		pq.SinkOptions["sluice.sink.delayPerRow"] = p.SinkDelayPerRow.String()
	}
	if p.SinkDelayBatch > 0 {
		pq.SinkOptions["sluice.sink.delayPerBatch"] = p.SinkDelayBatch.String()
	}
	pipelineFile := filepath.Join(dir, "pipeline.yaml")
	if err := query.WritePipeline(pipelineFile, pq); err != nil {
		return nil, err
	}
	progressFile := filepath.Join(dir, "progress.jsonl")

	fmt.Fprintf(r.out, "\nphase %d: %s — %s, %s of load\n", spec.N, spec.Title, spec.Settings(), spec.Duration)
	for _, n := range spec.Notes {
		fmt.Fprintf(r.out, "  %s\n", n)
	}
	proc, err := r.cfg.Runner.Start(ctx, pipelineFile, progressFile)
	if err != nil {
		return nil, fmt.Errorf("rehearse: phase %d: start the query: %w", spec.N, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = proc.Stop()
		}
	}()

	var prof loadgen.Profile = loadgen.Steady{Rate: p.BaseRate}
	if spec.Spike {
		prof = loadgen.Spike{Base: p.BaseRate, Factor: p.SpikeFactor, At: p.Warmup, For: p.SpikeFor}
	}
	shape, err := loadgen.NewShape(loadgen.ShapeOrders, p.RecordBytes, int64(spec.N))
	if err != nil {
		return nil, err
	}
	// Sample end offsets and memory while the load runs.
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	smp := &sampler{adm: r.adm, topic: topic, pid: proc.PID(), peak: -1}
	wg.Add(1)
	go func() {
		defer wg.Done()
		smp.run(sctx)
	}()
	// A query that dies ends the load at once.
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	go func() {
		select {
		case <-proc.Done():
			cancelLoad()
		case <-loadCtx.Done():
		}
	}()
	start := time.Now()
	load, lerr := loadgen.Run(loadCtx, loadgen.Config{
		Brokers: strings.Split(r.addr, ","), ClientOpts: r.secOpts, Topic: topic, Partitions: int32(p.Partitions),
		Profile: prof, Duration: spec.Duration, Shape: shape, Keys: loadgen.Keys{Count: loadgen.DefaultKeys}, Seed: int64(spec.N),
		Logger: r.log,
		OnSecond: func(s loadgen.Second) {
			if s.Throttled() {
				fmt.Fprintf(r.out, "  load: %s\n", s)
			}
		},
	})
	end := start.Add(load.Duration)
	stopSampling()
	wg.Wait()
	stopped = true
	perr := proc.Stop()
	// A stateful query stopped by its state memory is a verdict, not a
	// failure of the rehearsal.
	stateFailure := ""
	if spec.Stateful {
		stateFailure = StateMemoryFailure(perr)
	}
	if perr != nil && stateFailure == "" { // first: a dead query also cuts the load short
		return nil, fmt.Errorf("phase %d: %w", spec.N, perr)
	}
	// The query's death cancels the load: that is no error of its own.
	if lerr != nil && (stateFailure == "" || !errors.Is(lerr, context.Canceled)) {
		return nil, fmt.Errorf("rehearse: phase %d: load: %w", spec.N, lerr)
	}
	ps, err := queryrun.ReadProgress(progressFile)
	if err != nil {
		return nil, err
	}
	peak := max(smp.peak, proc.PeakRSS())
	if proc.PID() == 0 {
		peak = -1
	}
	d := PhaseData{
		Start: start, SpikeStart: start, SpikeEnd: start, End: end, Trigger: spec.Trigger, BaseRate: p.BaseRate,
		Progress: ps, Ends: smp.ends, Memory: smp.mem, PeakRSS: peak, MemoryBudget: spec.MemoryBudget,
		Stateful: spec.Stateful, StateFailure: stateFailure,
	}
	if spec.Stateful && spec.MemoryBudget > 0 {
		d.StateShare = engine.StateShare(spec.MemoryBudget)
	}
	if spec.Spike {
		d.SpikeStart, d.SpikeEnd = start.Add(p.Warmup), start.Add(p.Warmup+p.SpikeFor)
	}
	if load.Throttled() {
		spec.Notes = append(spec.Notes, fmt.Sprintf("the broker did not keep up with the load: %s", load))
	}
	ph := &Phase{Spec: spec, Data: d, Load: load, Dir: dir}
	ph.Verdict = Analyze(d, r.capacityFor(spec.N))
	if err := writePhaseData(dir, ph); err != nil {
		return nil, err
	}
	return ph, nil
}

func (r *rehearsal) createTopic(ctx context.Context, topic string, partitions int32) error {
	resp, err := r.adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("rehearse: create topic %s: %w", topic, err)
	}
	// Wait until the topic's metadata is visible.
	for i := 0; i < 100; i++ {
		tds, err := r.adm.ListTopics(ctx, topic)
		if err == nil && tds.Error() == nil && len(tds[topic].Partitions) == int(partitions) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("rehearse: topic %s did not appear", topic)
}

// deleteTopic frees the phase's records (the embedded broker keeps them in
// memory).
func (r *rehearsal) deleteTopic(topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.adm.DeleteTopics(ctx, topic); err != nil {
		r.log.Warn("rehearse: delete topic", "topic", topic, "err", err)
	}
}

// sampler samples the phase topic's end offsets and the query process's
// memory every SampleEvery.
type sampler struct {
	adm   *kadm.Client
	topic string
	pid   int
	ends  []EndSample
	mem   []MemSample
	peak  int64
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(SampleEvery)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) sample(ctx context.Context) {
	if s.pid > 0 {
		if rss, hwm, err := procstat.Memory(s.pid); err == nil {
			s.mem = append(s.mem, MemSample{UnixMs: time.Now().UnixMilli(), RSS: rss})
			s.peak = max(s.peak, hwm)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	offs, err := s.adm.ListEndOffsets(lctx, s.topic)
	if err != nil || offs.Error() != nil {
		return
	}
	es := EndSample{UnixMs: time.Now().UnixMilli(), Ends: map[int32]int64{}}
	offs.Each(func(o kadm.ListedOffset) { es.Ends[o.Partition] = o.Offset })
	if len(es.Ends) > 0 {
		s.ends = append(s.ends, es)
	}
}

// printVerdict prints a phase's verdict in a few lines.
func printVerdict(w io.Writer, ph *Phase) {
	v := ph.Verdict
	word := "UNSTABLE"
	if v.Stable {
		word = "STABLE"
	}
	fmt.Fprintf(w, "  verdict: %s\n", word)
	for _, c := range v.Criteria {
		mark := "ok  "
		if !c.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "    %s %-15s %s\n", mark, c.Name, c.Detail)
	}
	if st := v.State; st != nil {
		fmt.Fprintf(w, "  state: %s\n", stateText(*st))
	}
}
