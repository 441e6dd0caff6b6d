package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/progress"
)

// StatefulKeys is how many distinct keys the stateful measurement groups
// by: the last four digits of the preloaded orders' sequential ids.
const StatefulKeys = 10_000

// Stateful is a windowed count per key (Kafka → from_json → 10-second
// tumbling window count per key, with a watermark, append mode → noop)
// against the stateless seed query on the same records, alternating in the
// same run.
type Stateful struct {
	Records int    `json:"records"`
	Keys    int    `json:"keys"`
	Window  string `json:"window"`
	// ShufflePartitions is the query's spark.sql.shuffle.partitions: the
	// state store instances a batch commits.
	ShufflePartitions      int     `json:"shuffle_partitions"`
	Watermark              string  `json:"watermark"`
	StatefulRecordsPerSec  float64 `json:"stateful_records_per_sec"`
	StatelessRecordsPerSec float64 `json:"stateless_records_per_sec"`
	// Ratio is stateful over stateless records/s (medians); Met says
	// whether it reaches TargetStateful.
	Ratio   float64 `json:"ratio"`
	Target  float64 `json:"target"`
	Met     bool    `json:"met"`
	Batches int64   `json:"batches"`
	// PeakStateRows and PeakStateBytes are the largest numRowsTotal and
	// memoryUsedBytes a batch of the last stateful round reported.
	PeakStateRows  int64 `json:"peak_state_rows"`
	PeakStateBytes int64 `json:"peak_state_bytes"`
	// StatefulCPUSecPerMillion and StatelessCPUSecPerMillion are this
	// process's CPU (user + system; the embedded broker's share included,
	// alike for both) per million records over each query's measured run,
	// medians of the rounds: on a busy machine, where records/s depend on
	// what else runs, they still compare the two queries' costs.
	// CPURatio is stateless over stateful CPU per record (higher is
	// better, comparable with Ratio).
	StatefulCPUSecPerMillion  float64 `json:"stateful_cpu_sec_per_million"`
	StatelessCPUSecPerMillion float64 `json:"stateless_cpu_sec_per_million"`
	CPURatio                  float64 `json:"cpu_ratio"`
}

// statefulRounds alternates the stateless seed query and the windowed
// count over the preloaded topic and reports their medians.
func statefulRounds(ctx context.Context, addr string, cfg *Config) (*Stateful, error) {
	st := &Stateful{Records: cfg.Records, Keys: StatefulKeys, Window: "10 seconds", Watermark: "10 seconds", Target: TargetStateful,
		ShufflePartitions: cfg.ShufflePartitions}
	if st.ShufflePartitions <= 0 {
		st.ShufflePartitions = 200 // Spark's default
	}
	// The rounds' checkpoints are removed when the bench ends (or, outside
	// Run, after the last round), not each after its own: removing a round's 200 × batches state files took
	// CPU inside the round's measurement (0.14 s of 4.9 s in a profile),
	// and on ext4 without a journal (this bench's VMs) the next round's
	// file creations then skip over every recently deleted inode (the
	// kernel's recently_deleted check), which made them several times
	// dearer: one round's cleanup charged to the next.
	chkRoot, done, err := cfg.scratchDir("stateful-")
	if err != nil {
		return nil, err
	}
	defer done()
	var less, full, lessCPU, fullCPU []float64
	perMillion := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(cfg.Records) }
	// The stateless baseline's round 1 would otherwise be the first read
	// after a preload.
	if err := warmUp(ctx, addr, cfg.Records, "stateful", cfg); err != nil {
		return nil, err
	}
	for r := 0; r < cfg.Rounds; r++ {
		cpu0 := selfCPU()
		sl, _, err := sluiceConsume(ctx, addr, "bench", cfg.Records, 0, cfg)
		if err != nil {
			return nil, fmt.Errorf("stateless query: %w", err)
		}
		lessCPU = append(lessCPU, perMillion(selfCPU()-cpu0))
		if cfg.CPUProfile != "" && r == 0 {
			f, err := os.Create(cfg.CPUProfile)
			if err != nil {
				return nil, err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return nil, err
			}
		}
		cpu0 = selfCPU()
		sf, err := statefulConsume(ctx, addr, "bench", cfg.Records, cfg.Logger, st, chkRoot)
		fullCPU = append(fullCPU, perMillion(selfCPU()-cpu0))
		if cfg.CPUProfile != "" && r == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return nil, fmt.Errorf("stateful query: %w", err)
		}
		less, full = append(less, sl), append(full, sf)
		cfg.Logf("stateful round %d: stateless %.0f rec/s (%.2f CPU s per million), window count per key %.0f rec/s (%.2f CPU s per million; %d batches, peak state %d rows, %d bytes)",
			r+1, sl, lessCPU[r], sf, fullCPU[r], st.Batches, st.PeakStateRows, st.PeakStateBytes)
	}
	st.StatelessRecordsPerSec, st.StatefulRecordsPerSec = median(less), median(full)
	st.Ratio = st.StatefulRecordsPerSec / st.StatelessRecordsPerSec
	st.StatelessCPUSecPerMillion, st.StatefulCPUSecPerMillion = median(lessCPU), median(fullCPU)
	if st.StatefulCPUSecPerMillion > 0 {
		st.CPURatio = st.StatelessCPUSecPerMillion / st.StatefulCPUSecPerMillion
	}
	st.Met = st.Ratio >= TargetStateful
	return st, nil
}

// statefulConsume runs the windowed count in this process until n input
// records were committed, like sluiceConsume.
func statefulConsume(ctx context.Context, addr, topic string, n int, log *slog.Logger, st *Stateful, chkRoot string) (float64, error) {
	chk, err := os.MkdirTemp(chkRoot, "round-") // removed with chkRoot, after the rounds
	if err != nil {
		return 0, err
	}
	var rows, batches, peakRows, peakBytes atomic.Int64
	var doneAt atomic.Int64
	done := make(chan struct{})
	listener := &progress.ListenerFuncs{OnProgress: func(e progress.ProgressEvent) {
		batches.Add(1)
		if log.Enabled(ctx, slog.LevelDebug) {
			b, _ := json.Marshal(e.Progress)
			log.Debug("stateful batch", "progress", string(b))
		}
		for _, so := range e.Progress.StateOperators {
			if so.NumRowsTotal > peakRows.Load() {
				peakRows.Store(so.NumRowsTotal)
			}
			if so.MemoryUsedBytes > peakBytes.Load() {
				peakBytes.Store(so.MemoryUsedBytes)
			}
		}
		if rows.Add(e.Progress.NumInputRows) >= int64(n) && doneAt.CompareAndSwap(0, time.Now().UnixNano()) {
			close(done)
		}
	}}
	s := sluice.NewSession(sluice.WithLogger(log))
	s.SetConf("spark.sql.shuffle.partitions", fmt.Sprint(st.ShufflePartitions))
	start := time.Now()
	q, err := s.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", addr).
		Option("subscribe", topic).
		Option("startingOffsets", "earliest").
		Load().
		SelectExpr("from_json(CAST(value AS STRING), 'order_id STRING, ts TIMESTAMP') AS o").
		SelectExpr(fmt.Sprintf("substr(o.order_id, -%d) AS k", len(fmt.Sprint(StatefulKeys-1))), "o.ts AS ts").
		WithWatermark("ts", st.Watermark).
		GroupBy(fmt.Sprintf("window(ts, '%s')", st.Window), "k").Agg("count(*) AS n").
		WriteStream().Format("noop").
		OutputMode("append").
		Option("checkpointLocation", chk).
		AddListener(listener).
		Start(ctx)
	if err != nil {
		return 0, err
	}
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(10 * time.Minute):
	}
	elapsed := time.Duration(doneAt.Load() - start.UnixNano())
	if err := q.Stop(); err != nil {
		return 0, err
	}
	if rows.Load() < int64(n) {
		return 0, fmt.Errorf("query saw %d of %d records", rows.Load(), n)
	}
	st.Batches, st.PeakStateRows, st.PeakStateBytes = batches.Load(), peakRows.Load(), peakBytes.Load()
	return float64(n) / elapsed.Seconds(), nil
}
