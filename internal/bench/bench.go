// Package bench is the benchmark suite behind `sluice bench`: sluice
// against a raw franz-go consumer on the same embedded broker, measured in
// the same run — throughput with the default trigger and with
// maxOffsetsPerTrigger, many partitions against few, produce-to-commit
// latency at half the end-to-end capacity and at a light load, CPU per
// million records, an idle query's CPU, and peak memory with and without
// a memory budget. The queries that must be measured apart from the
// broker and the load run as child `sluice run` processes through
// internal/queryrun, the runner the rehearsal uses; /proc figures come
// from internal/procstat. Results are ratios against the baseline of the
// same run, compared with the project's targets.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/orders"
)

// Result is what `sluice bench --json` prints. The first fields are
// the original throughput benchmark's; the suite's measurements follow,
// each omitted when not run.
type Result struct {
	Records              int     `json:"records"`
	RecordBytes          int     `json:"record_bytes"`
	Partitions           int     `json:"partitions"`
	Rounds               int     `json:"rounds"`
	RawRecordsPerSec     float64 `json:"raw_records_per_sec"`
	SluiceRecordsPerSec  float64 `json:"sluice_records_per_sec"`
	Ratio                float64 `json:"ratio"`
	MaxOffsetsPerTrigger int64   `json:"max_offsets_per_trigger,omitempty"`
	SluiceBatches        int64   `json:"sluice_batches"`

	Machine        *Machine    `json:"machine,omitempty"`
	MaxOffsets     *Throughput `json:"throughput_max_offsets,omitempty"`
	ManyPartitions *Partitions `json:"many_partitions,omitempty"`
	Latency        []Latency   `json:"latency,omitempty"`
	// EndToEndCapacity is what producer, broker and query sustain together
	// on this machine (the latency probe's min of produced and processed
	// rates); the 50 % latency run loads half of it.
	EndToEndCapacity float64 `json:"end_to_end_capacity_per_sec,omitempty"`
	// EndToEndCapacityGiven says EndToEndCapacity was given
	// (Config.LatencyCapacity), not probed.
	EndToEndCapacityGiven bool    `json:"end_to_end_capacity_given,omitempty"`
	CPU                   *CPU    `json:"cpu,omitempty"`
	Idle                  *Idle   `json:"idle,omitempty"`
	Memory                *Memory `json:"memory,omitempty"`
	// Stateful is the windowed count per key against the stateless
	// query (`--only stateful`).
	Stateful *Stateful `json:"stateful,omitempty"`
	// Scaleout is group mode with 1, 2 and 4 member processes
	// (`--only scaleout`).
	Scaleout *Scaleout `json:"scaleout,omitempty"`
	Targets  []Target  `json:"targets,omitempty"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs   int    `json:"cpus"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Go     string `json:"go"`
	Host   string `json:"host"`
	Date   string `json:"date"`
	Load1m string `json:"load_1m,omitempty"`
}

// Throughput is sluice with maxOffsetsPerTrigger against the same
// raw baseline.
type Throughput struct {
	MaxOffsetsPerTrigger int64   `json:"max_offsets_per_trigger"`
	SluiceRecordsPerSec  float64 `json:"sluice_records_per_sec"`
	RawRecordsPerSec     float64 `json:"raw_records_per_sec"`
	Ratio                float64 `json:"ratio"`
	Batches              int64   `json:"batches"`
}

// Partitions is sluice on many partitions against few, same records.
type Partitions struct {
	Many                int     `json:"many"`
	Few                 int     `json:"few"`
	ManyRecordsPerSec   float64 `json:"many_records_per_sec"`
	FewRecordsPerSec    float64 `json:"few_records_per_sec"`
	RawManyRecordsPerSc float64 `json:"raw_many_records_per_sec"`
	// Ratio is many over few partitions (sluice on both); RawRatio sluice
	// over raw franz-go on the many partitions, the target's ratio.
	Ratio    float64 `json:"ratio"`
	RawRatio float64 `json:"raw_ratio"`
}

// Latency is produce-timestamp → sink-commit latency at a rate.
type Latency struct {
	Label          string  `json:"label"`
	AskedPerSec    float64 `json:"asked_per_sec"`
	AchievedPerSec float64 `json:"achieved_per_sec"`
	// ProcessedPerSec is what the query committed during the load, per
	// second of load.
	ProcessedPerSec float64 `json:"processed_per_sec"`
	Records         int64   `json:"records"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	MaxMs           float64 `json:"max_ms"`
	Batches         int     `json:"batches"`
	// MaxBatchMs is the longest batch: a latency spike with short batches
	// happened before the records reached the query.
	MaxBatchMs    int64 `json:"max_batch_ms"`
	ProducerBound bool  `json:"producer_bound"`
	// AsyncProgress: the query ran with asyncProgressTrackingEnabled
	// (opt-in, at-least-once); such a run is reported beside the default
	// one and never counts for a target.
	AsyncProgress bool `json:"async_progress_tracking,omitempty"`
	// OwnProcesses: the run's broker and load generator ran in processes
	// of their own (a fresh `sluice broker` and `sluice loadgen`), apart
	// from the bench process and the query; false with LatencyInProcess,
	// where all three share the bench process and its collector.
	OwnProcesses bool `json:"own_processes"`
	// ProducerLingerMs is the load generator's producer linger in the run
	// (LatencyProducerLinger): a record's latency starts at its timestamp,
	// before the linger.
	ProducerLingerMs float64 `json:"producer_linger_ms"`
	// Tail is where the slowest 1 % of the records' latency went; Phases
	// the run's batch time by part. Both vary less from run to run than
	// the p99 itself on a shared machine.
	Tail   *LatencyTail `json:"tail,omitempty"`
	Phases Phases       `json:"phases"`
	// CPU is what each process used while the run loaded the machine
	// (OwnProcesses runs only): the three share its cores, so what the
	// broker and the load generator take is CPU the query waits for.
	CPU *LatencyCPU `json:"cpu,omitempty"`
}

// LatencyCPU is the CPU seconds of a latency run's processes: the query's
// and the broker's from the load's start until the query had committed
// every record (/proc, 10 ms ticks), the load generator's over its life.
type LatencyCPU struct {
	QuerySec   float64 `json:"query_sec"`
	BrokerSec  float64 `json:"broker_sec"`
	LoadgenSec float64 `json:"loadgen_sec"`
}

// LatencyTail is where the records at or above a run's p99 spent their
// latency, as means in milliseconds.
type LatencyTail struct {
	Records int64 `json:"records"`
	Batches int   `json:"batches"`
	// BeforeBatchMs: from the produce timestamp to the start of the batch
	// that read the record (the producer's linger and send, the broker, the
	// fetch, and the batches before it); BatchMs: that batch's duration,
	// LogWritesMs of which its offsets/N and commits/N writes (walCommit +
	// commitOffsets).
	BeforeBatchMs float64 `json:"before_batch_ms"`
	BatchMs       float64 `json:"batch_ms"`
	LogWritesMs   float64 `json:"log_writes_ms"`
}

// Phases sums a run's batches' durations (batchDuration) and their
// durationMs parts, in milliseconds.
type Phases struct {
	BatchMs         int64 `json:"batch_ms"`
	LatestOffsetMs  int64 `json:"latest_offset_ms"`
	WalCommitMs     int64 `json:"wal_commit_ms"`
	AddBatchMs      int64 `json:"add_batch_ms"`
	CommitOffsetsMs int64 `json:"commit_offsets_ms"`
}

// String is the sums in a line.
func (p Phases) String() string {
	return fmt.Sprintf("%d ms of batches: latestOffset %d, walCommit %d, addBatch %d, commitOffsets %d",
		p.BatchMs, p.LatestOffsetMs, p.WalCommitMs, p.AddBatchMs, p.CommitOffsetsMs)
}

// CPU is CPU time per million records drained, in child processes.
type CPU struct {
	Records              int     `json:"records"`
	SluiceCPUSecPerMil   float64 `json:"sluice_cpu_sec_per_million"`
	RawCPUSecPerMil      float64 `json:"raw_cpu_sec_per_million"`
	Ratio                float64 `json:"ratio"`
	SluiceWallRecsPerSec float64 `json:"sluice_child_records_per_sec"`
}

// Idle is the CPU an idle query uses.
type Idle struct {
	Seconds       float64 `json:"seconds"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	PercentOfCore float64 `json:"percent_of_core"`
	// Method is how CPUSeconds was read: IdleMethodSchedstat (the
	// scheduler's nanoseconds per thread), IdleMethodTicks (clock ticks of
	// 10 ms) or IdleMethodRusage (the child's whole life).
	Method string `json:"method"`
	// TickCPUSeconds is the same interval in clock ticks (/proc/PID/stat),
	// for comparison with runs before the method changed.
	TickCPUSeconds float64 `json:"tick_cpu_seconds"`
}

// Ways an idle query's CPU is read (Idle.Method).
const (
	IdleMethodSchedstat = "schedstat"
	IdleMethodTicks     = "clock ticks"
	IdleMethodRusage    = "rusage"
)

// Memory is peak RSS draining a backlog with a budget and with
// sluice.memory.budget: unlimited.
type Memory struct {
	Records          int     `json:"records"`
	RecordBytes      int     `json:"record_bytes"`
	BudgetBytes      int64   `json:"budget_bytes"`
	LimitBytes       int64   `json:"limit_bytes"`
	PeakWithBudget   int64   `json:"peak_rss_with_budget"`
	PeakWithout      int64   `json:"peak_rss_without_budget"`
	Ratio            float64 `json:"ratio"`
	SinkDelayPerRow  string  `json:"sink_delay_per_row"`
	WithinBudgetPlus bool    `json:"within_budget_plus_overhead"`
}

// Target is a target the project is judged by and whether it was met.
type Target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target string  `json:"target"`
	Met    bool    `json:"met"`
}

// Parts lists the suite's default measurements, in order.
var Parts = []string{"throughput", "partitions", "latency", "cpu", "idle", "memory", "stateful"}

// OptInParts are measurements that run only when --only names them:
// "scaleout" starts up to four member processes of a group-mode query.
var OptInParts = []string{"scaleout"}

// AllParts is Parts and OptInParts.
func AllParts() []string { return slices.Concat(Parts, OptInParts) }

// Config is what to measure and how big.
type Config struct {
	// Records are preloaded for the throughput, partition and CPU
	// measurements, of about RecordBytes bytes each, over Partitions
	// partitions; ManyPartitions is the many-partition comparison's.
	Records, RecordBytes, Partitions, ManyPartitions int
	// Rounds of each measurement alternate sluice and raw; medians are
	// reported.
	Rounds int
	// MaxOffsetsPerTrigger also limits the main sluice rounds (0: none);
	// SuiteMaxOffsets is the limit of the suite's limited run (0: no such
	// run).
	MaxOffsetsPerTrigger, SuiteMaxOffsets int64
	// CPUProfile, when set, receives a CPU profile of the first sluice
	// round (of the first stateful round when the throughput rounds do
	// not run); the first maxOffsetsPerTrigger round's and many-partition
	// round's go beside it (ProfilePath).
	CPUProfile string
	// Only names the measurements to run (nil: all of Parts).
	Only []string
	// Idle is how long an idle query's CPU is measured.
	Idle time.Duration
	// LatencyFor is the length of each latency run; LightRate the rate of
	// the light-load run (0: skipped). LatencyInProcess runs the latency
	// query inside this process instead of a child.
	LatencyFor       time.Duration
	LightRate        float64
	LatencyInProcess bool
	// LatencyCapacity, if positive, is taken as the end-to-end capacity
	// (records/s) instead of probing it: the 50 % runs load half of it.
	// On a shared machine the probe swings 2–3× between back-to-back runs,
	// so builds compared at their own probes run at different rates.
	LatencyCapacity float64
	// LatencyCPUProfile, if set, makes each latency run's query process
	// write a CPU profile of its run to LatencyCPUProfile-NAME.pprof
	// (LatencyProfilePath); runs with LatencyInProcess write none.
	LatencyCPUProfile string
	// MemoryRecords of MemoryRecordBytes are drained with and without the
	// MemoryBudget (bytes).
	MemoryRecords, MemoryRecordBytes int
	MemoryBudget                     int64
	// ShufflePartitions is the stateful measurement's
	// spark.sql.shuffle.partitions (0: Spark's default, 200).
	ShufflePartitions int
	// ScaleoutRecords are preloaded for the scale-out measurement (0:
	// Records). Two members take about a second to form their group;
	// the rate is measured after that, so the backlog must last seconds
	// beyond it for a steady figure.
	ScaleoutRecords int
	// Command returns the command running sluice with the given
	// arguments (the child processes).
	Command func(args ...string) *exec.Cmd
	// Logger receives the queries' and the broker's logs (errors only is
	// a good choice); Logf the progress lines.
	Logger *slog.Logger
	Logf   func(format string, args ...any)

	// workDir holds every run's checkpoint and files until Run returns
	// (scratchDir); "" outside Run.
	workDir string
}

// scratchDir makes a directory for one run's checkpoint and files. Under
// Run it is inside the bench's work directory, which is removed when the
// bench ends, not after each run: on ext4 without a journal (this
// project's benchmark VMs) the kernel skips every inode freed in the last
// minute or so when it allocates one, so a run's file creations paid for
// the files earlier runs had just deleted — a latency run's thousands of
// log files, a stateful round's 3,800 state files — and each measurement
// depended on what ran before it. done removes the directory only
// outside Run.
func (c *Config) scratchDir(pattern string) (dir string, done func(), err error) {
	if c.workDir != "" {
		dir, err = os.MkdirTemp(c.workDir, pattern)
		return dir, func() {}, err
	}
	dir, err = os.MkdirTemp("", pattern)
	return dir, func() { os.RemoveAll(dir) }, err
}

// Validate checks the sizes and the measurement names.
func (c *Config) Validate() error {
	for _, p := range c.Only {
		if !slices.Contains(AllParts(), p) {
			return fmt.Errorf("%q is not a measurement (allowed: %s)", p, strings.Join(AllParts(), ", "))
		}
	}
	switch {
	case c.Records < 1 || c.Rounds < 1 || c.Partitions < 1 || c.ManyPartitions < 1 || c.RecordBytes < 0:
		return errors.New("--records, --rounds, --partitions and --many-partitions must be positive")
	case c.MemoryRecords < 1 || c.MemoryRecordBytes < 1:
		return errors.New("--memory-records and --memory-record-bytes must be positive")
	case c.MemoryBudget <= 0:
		return errors.New("the memory budget must be positive")
	case c.LatencyCapacity < 0:
		return errors.New("--latency-capacity must not be negative")
	case c.LatencyCPUProfile != "" && c.LatencyInProcess:
		return errors.New("--latency-cpuprofile profiles the latency runs' query processes: not with --latency-in-process")
	case c.Command == nil:
		return errors.New("bench: no command to run sluice children with")
	}
	return nil
}

// Run measures what cfg asks for on an embedded broker.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	want := map[string]bool{}
	for _, p := range Parts {
		want[p] = len(cfg.Only) == 0 || slices.Contains(cfg.Only, p)
	}
	for _, p := range OptInParts {
		want[p] = slices.Contains(cfg.Only, p)
	}
	logf := cfg.Logf
	work, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	cfg.workDir = work
	b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0", Logger: cfg.Logger,
		Topics: []broker.TopicSpec{{Name: "bench", Partitions: int32(cfg.Partitions)}}})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	host, _ := os.Hostname()
	res := &Result{Records: cfg.Records, RecordBytes: cfg.RecordBytes, Partitions: cfg.Partitions, Rounds: cfg.Rounds,
		MaxOffsetsPerTrigger: cfg.MaxOffsetsPerTrigger,
		Machine: &Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(), Host: host,
			Date: time.Now().UTC().Format(time.RFC3339), Load1m: loadAverage()}}

	// The latency part needs the throughput rounds' drain rate only to
	// probe its capacity: with the capacity given, --only latency runs
	// the latency runs alone.
	probe := want["latency"] && cfg.LatencyCapacity <= 0
	if want["throughput"] || want["partitions"] || want["cpu"] || probe || want["stateful"] {
		if err := preload(ctx, b, "bench", cfg.Records, cfg.RecordBytes, int32(cfg.Partitions), logf); err != nil {
			return nil, err
		}
	}
	if want["throughput"] || probe {
		if err := throughputRounds(ctx, b.Addr(), res, &cfg); err != nil {
			return nil, err
		}
	}
	if want["partitions"] {
		if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "bench-many", Partitions: int32(cfg.ManyPartitions)}); err != nil {
			return nil, err
		}
		if err := preload(ctx, b, "bench-many", cfg.Records, cfg.RecordBytes, int32(cfg.ManyPartitions), logf); err != nil {
			return nil, err
		}
		pr, err := manyPartitions(ctx, b.Addr(), &cfg)
		if err != nil {
			return nil, err
		}
		res.ManyPartitions = pr
		_ = b.DeleteRecords(ctx, "bench-many", 0, -1) // free the broker's memory (best effort)
	}
	if want["cpu"] {
		c, err := cpuChildren(ctx, b.Addr(), &cfg)
		if err != nil {
			return nil, err
		}
		res.CPU = c
	}
	if want["latency"] {
		// The drain rate measured above has the machine to itself; with a
		// producer and the broker's ingest on the same cores the system
		// takes less. Probe that end-to-end capacity first, then load at
		// half of it.
		if drain := res.SluiceRecordsPerSec; drain > 0 || cfg.LatencyCapacity > 0 {
			capacity := cfg.LatencyCapacity
			if capacity > 0 {
				res.EndToEndCapacityGiven = true
				logf("end-to-end capacity given (--latency-capacity), not probed: %.0f rec/s", capacity)
			} else {
				probe, err := latencyRun(ctx, b, "capacity probe", drain, min(cfg.LatencyFor, 5*time.Second), false, &cfg)
				if err != nil {
					return nil, err
				}
				res.Latency = append(res.Latency, probe)
				capacity = min(probe.AchievedPerSec, probe.ProcessedPerSec)
				logf("end-to-end capacity on this machine (producer, broker and query together): %.0f rec/s", capacity)
			}
			res.EndToEndCapacity = capacity
			for _, async := range []bool{false, true} {
				l, err := latencyRun(ctx, b, "at 50 % of capacity", capacity/2, cfg.LatencyFor, async, &cfg)
				if err != nil {
					return nil, err
				}
				res.Latency = append(res.Latency, l)
			}
		}
		if cfg.LightRate > 0 {
			for _, async := range []bool{false, true} {
				l, err := latencyRun(ctx, b, "light load", cfg.LightRate, cfg.LatencyFor, async, &cfg)
				if err != nil {
					return nil, err
				}
				res.Latency = append(res.Latency, l)
			}
		}
	}
	if want["idle"] {
		id, err := idleChild(ctx, b, &cfg)
		if err != nil {
			return nil, err
		}
		res.Idle = id
	}
	if want["memory"] {
		m, err := memoryChildren(ctx, b, &cfg)
		if err != nil {
			return nil, err
		}
		res.Memory = m
	}
	if want["stateful"] {
		sc := cfg
		if want["throughput"] || want["latency"] {
			sc.CPUProfile = "" // the throughput rounds' profile
		}
		st, err := statefulRounds(ctx, b.Addr(), &sc)
		if err != nil {
			return nil, err
		}
		res.Stateful = st
	}
	if want["scaleout"] {
		so, err := scaleoutRounds(ctx, b, &cfg)
		if err != nil {
			return nil, err
		}
		res.Scaleout = so
	}
	res.Targets = Targets(res)
	return res, nil
}

// loadAverage returns the 1-minute load average from /proc, or "".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return ""
}

func preload(ctx context.Context, b *broker.Broker, topic string, n, size int, parts int32, logf func(string, ...any)) error {
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer prod.Close()
	logf("preloading %d records of ~%d B over %d partitions of %s...", n, size, parts, topic)
	t0 := time.Now()
	if err := orders.Preload(ctx, prod, topic, n, size, parts); err != nil {
		return fmt.Errorf("preload %s: %w", topic, err)
	}
	logf("preloaded in %s", time.Since(t0).Round(time.Millisecond))
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
