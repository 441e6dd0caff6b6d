package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/procstat"
	"github.com/sluice-stream/sluice/internal/queryrun"
)

// ScaleoutPartitions is the partitions of the scale-out topic.
const ScaleoutPartitions = 16

// ScaleoutMembers are the group sizes the scale-out measurement runs.
var ScaleoutMembers = []int{1, 2, 4}

// Scaleout is group mode's scale-out: the seed query (noop sink) drained
// from a 16-partition topic by 1, 2 and 4 `sluice run` members of one
// consumer group (source option sluice.group), each process limited to
// one core with GOMAXPROCS=1, in the same run.
type Scaleout struct {
	Records    int           `json:"records"`
	Partitions int           `json:"partitions"`
	Rows       []ScaleoutRow `json:"rows"`
	// Target is the ratio 2 members must reach over 1 (Ratio of the row
	// with 2 members); Met whether they did.
	Target float64 `json:"target"`
	Met    bool    `json:"met"`
}

// ScaleoutRow is one group size's medians.
type ScaleoutRow struct {
	Members int `json:"members"`
	// RecordsPerSec is the group's rate once it is stable with every
	// member owning partitions: the records committed from then until
	// the whole topic is committed, over that time. Ratio is it over the
	// one-member row's.
	RecordsPerSec float64 `json:"records_per_sec"`
	Ratio         float64 `json:"ratio"`
	// WallRecordsPerSec counts from the start of the processes (start-up,
	// joining and the rebalances included).
	WallRecordsPerSec float64 `json:"wall_records_per_sec"`
	// StableAfterMs is how long the group took from the start of the
	// processes to be stable with all members owning partitions;
	// CommittedAtStable how many records were committed by then.
	StableAfterMs     int64 `json:"stable_after_ms"`
	CommittedAtStable int64 `json:"committed_at_stable"`
	// MembersCPUSec is the user + system CPU of the member processes over
	// their whole lives; BrokerCPUSec that of this process (the embedded
	// broker serving them, and the 50 ms polls of the group) from the
	// start of the members to their exit. Over WallSec they say which
	// side used the cores.
	MembersCPUSec float64 `json:"members_cpu_sec"`
	BrokerCPUSec  float64 `json:"broker_cpu_sec"`
	WallSec       float64 `json:"wall_sec"`
	// MachineBusy is the share of all the machine's cores that was busy
	// (any process: members, broker, anything else running) from the
	// moment the group was stable to the last commit — the window
	// RecordsPerSec measures. Near 1 the machine's cores, not the
	// members, were the ceiling of that rate. 0 when /proc/stat cannot
	// be read.
	MachineBusy float64 `json:"machine_busy"`
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scaleoutRounds preloads the scale-out topic and runs every group size
// cfg.Rounds times, alternating.
func scaleoutRounds(ctx context.Context, b *broker.Broker, cfg *Config) (*Scaleout, error) {
	const topic = "bench-scale"
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: topic, Partitions: ScaleoutPartitions}); err != nil {
		return nil, err
	}
	records := cfg.ScaleoutRecords
	if records <= 0 {
		records = cfg.Records
	}
	if err := preload(ctx, b, topic, records, cfg.RecordBytes, ScaleoutPartitions, cfg.Logf); err != nil {
		return nil, err
	}
	defer func() {
		for p := range int32(ScaleoutPartitions) {
			_ = b.DeleteRecords(context.Background(), topic, p, -1) // free the broker's memory (best effort)
		}
	}()
	so := &Scaleout{Records: records, Partitions: ScaleoutPartitions, Target: TargetScaleout2}
	runs := map[int][]ScaleoutRow{}
	for r := 0; r < cfg.Rounds; r++ {
		for _, n := range ScaleoutMembers {
			row, err := scaleoutRun(ctx, b.Addr(), topic, n, r, cfg)
			if err != nil {
				return nil, fmt.Errorf("scale-out with %d members: %w", n, err)
			}
			cfg.Logf("scale-out round %d, %d member(s): %.0f rec/s once stable (after %d ms, %d records committed by then), %.0f rec/s from the start; CPU over %.1f s: members %.1f s, broker (bench process) %.1f s",
				r+1, n, row.RecordsPerSec, row.StableAfterMs, row.CommittedAtStable, row.WallRecordsPerSec, row.WallSec, row.MembersCPUSec, row.BrokerCPUSec)
			runs[n] = append(runs[n], row)
		}
	}
	for _, n := range ScaleoutMembers {
		rs := runs[n]
		slices.SortFunc(rs, func(a, b ScaleoutRow) int { return cmpFloat(a.RecordsPerSec, b.RecordsPerSec) })
		row := rs[len(rs)/2]
		var wall []float64
		for _, x := range rs {
			wall = append(wall, x.WallRecordsPerSec)
		}
		row.WallRecordsPerSec = median(wall)
		so.Rows = append(so.Rows, row)
	}
	for i := range so.Rows {
		so.Rows[i].Ratio = so.Rows[i].RecordsPerSec / so.Rows[0].RecordsPerSec
		if so.Rows[i].Members == 2 {
			so.Met = so.Rows[i].Ratio >= so.Target
		}
	}
	return so, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scaleoutRun starts n members of a fresh group on topic and measures
// until the group has committed every record.
func scaleoutRun(ctx context.Context, addr, topic string, n, round int, cfg *Config) (ScaleoutRow, error) {
	row := ScaleoutRow{Members: n}
	dir, done, err := cfg.scratchDir("scaleout-")
	if err != nil {
		return row, err
	}
	defer done()
	group := fmt.Sprintf("bench-scaleout-%d-r%d-%d", n, round, time.Now().UnixNano())
	p := filepath.Join(dir, "bench.yaml")
	err = queryrun.SeedQuery().WritePipeline(p, queryrun.Setup{Name: "bench-scaleout", Bootstrap: addr, Topic: topic,
		Checkpoint: filepath.Join(dir, "chk"), SourceOptions: map[string]string{"sluice.group": group,
			// A member learns that a later one joined (a rebalance) at its
			// next heartbeat: at the default 3 s the first member drains a
			// small topic alone before the group of n forms.
			"kafka.heartbeat.interval.ms": "100"}})
	if err != nil {
		return row, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return row, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return row, err
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })

	runner := &queryrun.ChildRunner{Command: func(args ...string) *exec.Cmd {
		cmd := cfg.Command(args...)
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
		return cmd
	}}
	var procs []queryrun.Process
	defer func() {
		for _, pr := range procs {
			_ = pr.Stop()
		}
	}()
	start, cpu0 := time.Now(), selfCPU()
	for range n {
		pr, err := runner.Start(ctx, p, "")
		if err != nil {
			return row, err
		}
		procs = append(procs, pr)
	}
	var stableAt time.Time
	var cpuAtStable procstat.MachineCPU
	deadline := time.After(10 * time.Minute)
	for {
		select {
		case <-ctx.Done():
			return row, ctx.Err()
		case <-deadline:
			return row, errors.New("the group did not commit the whole topic within 10 minutes")
		case <-time.After(50 * time.Millisecond):
		}
		for _, pr := range procs {
			select {
			case <-pr.Done():
				return row, fmt.Errorf("a member exited: %w", pr.Stop())
			default:
			}
		}
		committed, err := committedSum(ctx, adm, group, topic)
		if err != nil {
			continue
		}
		now := time.Now()
		if stableAt.IsZero() {
			if ok, err := groupSpread(ctx, adm, group, n); err == nil && ok {
				stableAt = now
				cpuAtStable, _ = procstat.ReadMachineCPU()
				row.StableAfterMs = now.Sub(start).Milliseconds()
				row.CommittedAtStable = committed
			}
		}
		if committed >= total {
			if stableAt.IsZero() {
				return row, fmt.Errorf("the first member(s) committed all %d records before the group of %d was stable: use more --records", total, n)
			}
			if row.CommittedAtStable >= total || !now.After(stableAt) {
				return row, fmt.Errorf("the group was stable only when %d of %d records were committed: use more --records", row.CommittedAtStable, total)
			}
			row.RecordsPerSec = float64(total-row.CommittedAtStable) / now.Sub(stableAt).Seconds()
			if end, err := procstat.ReadMachineCPU(); err == nil && cpuAtStable.Total > 0 {
				row.MachineBusy = cpuAtStable.BusyFraction(end)
			}
			row.WallRecordsPerSec = float64(total) / now.Sub(start).Seconds()
			break
		}
	}
	for _, pr := range procs {
		if err := pr.Stop(); err != nil {
			return row, fmt.Errorf("stop a member: %w", err)
		}
		row.MembersCPUSec += pr.CPUTime().Seconds()
	}
	procs = nil
	row.BrokerCPUSec = (selfCPU() - cpu0).Seconds()
	row.WallSec = time.Since(start).Seconds()
	return row, nil
}

// committedSum is the sum of group's committed offsets on topic.
func committedSum(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			sum += o.At
		}
	})
	return sum, nil
}

// groupSpread reports whether group is Stable with n members that each own
// at least one partition.
func groupSpread(ctx context.Context, adm *kadm.Client, group string, n int) (bool, error) {
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return false, err
	}
	g, ok := dg[group]
	if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != n {
		return false, nil
	}
	for _, m := range g.Members {
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			return false, nil
		}
		owned := 0
		for _, t := range c.Topics {
			owned += len(t.Partitions)
		}
		if owned == 0 {
			return false, nil
		}
	}
	return true, nil
}
