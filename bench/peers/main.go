// Command peerbench compares sluice with a peer stream processor, Benthos
// core (github.com/redpanda-data/benthos/v4, MIT) reading Kafka through a
// minimal franz-go input (franzinput.go), as whole processes on one
// broker running in its own process, with the same records.
//
// It lives in its own module (bench/peers/go.mod) so that sluice's module
// gains no dependency on Benthos.
//
//	peerbench --sluice ./sluice                  # the comparison (see run.sh)
//	peerbench benthos --brokers ADDR --topic T   # one Benthos drain (what the comparison runs)
//	peerbench preload --brokers ADDR --topic T --records N --partitions P
//	                                             # the same records into a broker of your own (profiling)
//
// After an untimed warm-up read of the preloaded topic (plain franz-go),
// each round drains it once with each processor, the order alternating
// between rounds:
//
//   - Benthos: franz_drain → mapping `root.json = content().string()`,
//     `root.processed_ts = now()` → drop, everything else at its defaults;
//   - sluice: `sluice run` of the seed's query (CAST(value AS STRING) AS
//     json, current_timestamp() AS processed_ts → noop sink) with the
//     availableNow trigger (drain and stop) and no other option set.
//
// Wall time runs from starting the process to its exit; peak RSS is the
// VmHWM each process reports about itself at exit (the maxrss of a child
// would include the parent's memory at the time it was forked). Medians
// of the rounds and the ratios are printed, with `met` flags for the
// targets: sluice at least 3× faster than Benthos, and its peak RSS at
// most 192 MiB.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	// Benthos' own components: the mapping processor and the drop output.
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "benthos":
		err = runBenthos(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "preload":
		err = runPreload(ctx, os.Args[2:], os.Stderr)
	default:
		err = runCompare(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

// benthosConfig is the Benthos stream: the drain input, the issue's
// mapping, the drop output, everything else at Benthos' defaults except
// its HTTP server (no port to collide on) and the log level.
func benthosConfig(brokers, topic string) string {
	return fmt.Sprintf(`input:
  franz_drain:
    seed_brokers: [%q]
    topic: %q
pipeline:
  processors:
    - mapping: |
        root.json = content().string()
        root.processed_ts = now()
output:
  drop: {}
http:
  enabled: false
logger:
  level: WARN
`, brokers, topic)
}

// runBenthos drains one topic with Benthos and prints the records read and
// its own peak RSS.
func runBenthos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benthos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "Kafka bootstrap address")
	topic := fs.String("topic", "", "topic to drain")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *brokers == "" || *topic == "" {
		return errors.New("benthos: --brokers and --topic are required")
	}
	var read atomic.Int64
	if err := registerFranzDrain(&read); err != nil {
		return err
	}
	b := service.NewStreamBuilder()
	if err := b.SetYAML(benthosConfig(*brokers, *topic)); err != nil {
		return fmt.Errorf("benthos config: %w", err)
	}
	stream, err := b.Build()
	if err != nil {
		return fmt.Errorf("benthos build: %w", err)
	}
	if err := stream.Run(ctx); err != nil {
		return fmt.Errorf("benthos run: %w", err)
	}
	fmt.Fprintf(stdout, "records: %d\n", read.Load())
	if hwm, err := peakRSS(); err == nil {
		fmt.Fprintf(stdout, "peak RSS: %d bytes\n", hwm)
	}
	return nil
}

// runPreload produces the comparison's records into a running broker.
func runPreload(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("preload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "Kafka bootstrap address")
	topic := fs.String("topic", "", "topic (it must exist with the partitions)")
	n := fs.Int("records", 2_000_000, "records to produce")
	size := fs.Int("record-bytes", 210, "value size of each record, bytes")
	parts := fs.Int("partitions", 8, "partitions to spread them over")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *brokers == "" || *topic == "" || *n < 1 || *size < 1 || *parts < 1 {
		return errors.New("preload: --brokers and --topic are required; --records, --record-bytes and --partitions must be positive")
	}
	return preload(ctx, *brokers, *topic, *n, *size, int32(*parts))
}

// peakRSS reads this process's VmHWM from /proc.
func peakRSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// Run is one process's drain.
type Run struct {
	WallSeconds float64 `json:"wall_seconds"`
	PeakRSS     int64   `json:"peak_rss_bytes"`
	Records     int64   `json:"records"`
	// Budget is sluice's memory budget as it logged it (sluice only).
	Budget string `json:"memory_budget,omitempty"`
}

// Target is a target of the comparison and whether it was met.
type Target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target string  `json:"target"`
	Met    bool    `json:"met"`
}

// Result is what --json prints.
type Result struct {
	Records     int    `json:"records"`
	RecordBytes int    `json:"record_bytes"`
	Partitions  int    `json:"partitions"`
	Rounds      int    `json:"rounds"`
	Load1m      string `json:"load_1m"`
	Sluice      []Run  `json:"sluice"`
	Benthos     []Run  `json:"benthos"`
	// Medians of the rounds.
	SluiceWallMedian  float64 `json:"sluice_wall_seconds"`
	BenthosWallMedian float64 `json:"benthos_wall_seconds"`
	SluicePeakMedian  int64   `json:"sluice_peak_rss_bytes"`
	BenthosPeakMedian int64   `json:"benthos_peak_rss_bytes"`
	// Speedup is Benthos' wall time over sluice's; RSSRatio sluice's peak
	// RSS over Benthos'.
	Speedup  float64  `json:"speedup"`
	RSSRatio float64  `json:"rss_ratio"`
	Targets  []Target `json:"targets"`
}

// Targets of the comparison (issue 16).
const (
	TargetSpeedup = 3.0
	TargetPeakRSS = 192 << 20
)

func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("peerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sluiceBin := fs.String("sluice", "", "the sluice binary (go build -o sluice ./cmd/sluice)")
	n := fs.Int("records", 2_000_000, "records to preload")
	size := fs.Int("record-bytes", 210, "value size of each record, bytes")
	parts := fs.Int("partitions", 8, "topic partitions")
	rounds := fs.Int("rounds", 3, "rounds (each drains the topic once with each processor; medians are reported)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sluiceBin == "" {
		return errors.New("--sluice is required: the sluice binary to compare")
	}
	if *n < 1 || *size < 1 || *parts < 1 || *rounds < 1 {
		return errors.New("--records, --record-bytes, --partitions and --rounds must be positive")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	const topic = "peers"

	addr, stopBroker, err := startBroker(ctx, *sluiceBin, topic, *parts)
	if err != nil {
		return err
	}
	defer stopBroker()
	logf("broker (its own process) at %s; preloading %d records of %d B over %d partitions...", addr, *n, *size, *parts)
	t0 := time.Now()
	if err := preload(ctx, addr, topic, *n, *size, int32(*parts)); err != nil {
		return err
	}
	logf("preloaded in %s", time.Since(t0).Round(time.Millisecond))
	// The first read after the preload is slow whoever does it (the
	// broker's first pass over records it has just taken in: 3–4× slower
	// in sluice bench's throughput part), and round 1 would charge that
	// to whichever processor goes first. An untimed read takes it.
	t0 = time.Now()
	if err := warmUp(ctx, addr, topic, int64(*n)); err != nil {
		return err
	}
	logf("warm-up read (not counted) in %s", time.Since(t0).Round(time.Millisecond))

	res := &Result{Records: *n, RecordBytes: *size, Partitions: *parts, Rounds: *rounds, Load1m: loadAverage()}
	for r := 0; r < *rounds; r++ {
		var sl, bt Run
		runSluice := func() error {
			sl, err = sluiceDrain(ctx, *sluiceBin, addr, topic)
			return err
		}
		runBen := func() error {
			bt, err = benthosDrain(ctx, self, addr, topic)
			return err
		}
		order := []func() error{runSluice, runBen}
		if r%2 == 1 {
			order = []func() error{runBen, runSluice}
		}
		for _, f := range order {
			if err := f(); err != nil {
				return err
			}
		}
		for name, run := range map[string]Run{"sluice": sl, "benthos": bt} {
			if run.Records != int64(*n) {
				return fmt.Errorf("round %d: %s read %d records, want %d", r+1, name, run.Records, *n)
			}
		}
		res.Sluice, res.Benthos = append(res.Sluice, sl), append(res.Benthos, bt)
		logf("round %d: sluice %.2f s, peak RSS %.0f MiB (budget %s); Benthos %.2f s, peak RSS %.0f MiB",
			r+1, sl.WallSeconds, mib(sl.PeakRSS), sl.Budget, bt.WallSeconds, mib(bt.PeakRSS))
	}
	res.summarize()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprint(stdout, res.Text())
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (r *Result) summarize() {
	wall := func(rs []Run) float64 {
		v := make([]float64, len(rs))
		for i, x := range rs {
			v[i] = x.WallSeconds
		}
		return median(v)
	}
	peak := func(rs []Run) int64 {
		v := make([]float64, len(rs))
		for i, x := range rs {
			v[i] = float64(x.PeakRSS)
		}
		return int64(median(v))
	}
	r.SluiceWallMedian, r.BenthosWallMedian = wall(r.Sluice), wall(r.Benthos)
	r.SluicePeakMedian, r.BenthosPeakMedian = peak(r.Sluice), peak(r.Benthos)
	r.Speedup = r.BenthosWallMedian / r.SluiceWallMedian
	r.RSSRatio = float64(r.SluicePeakMedian) / float64(r.BenthosPeakMedian)
	r.Targets = []Target{
		{Name: "sluice speed-up over Benthos (wall time)", Value: r.Speedup, Target: fmt.Sprintf("≥ %.0f", TargetSpeedup), Met: r.Speedup >= TargetSpeedup},
		{Name: "sluice peak RSS, default settings (MiB)", Value: mib(r.SluicePeakMedian), Target: fmt.Sprintf("≤ %d", TargetPeakRSS>>20), Met: r.SluicePeakMedian <= TargetPeakRSS},
	}
}

// Text renders the result as a small table.
func (r *Result) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "draining %d × %d B over %d partitions, whole processes, broker in its own process; medians of %d rounds; load average %s\n\n",
		r.Records, r.RecordBytes, r.Partitions, r.Rounds, r.Load1m)
	fmt.Fprintf(&b, "%-34s %10s %14s\n", "", "wall", "peak RSS")
	budget := ""
	if len(r.Sluice) > 0 && r.Sluice[0].Budget != "" {
		budget = " (budget " + r.Sluice[0].Budget + ")"
	}
	fmt.Fprintf(&b, "%-34s %9.2fs %10.0f MiB%s\n", "sluice, default settings", r.SluiceWallMedian, mib(r.SluicePeakMedian), budget)
	fmt.Fprintf(&b, "%-34s %9.2fs %10.0f MiB\n", "Benthos core + franz-go input", r.BenthosWallMedian, mib(r.BenthosPeakMedian))
	fmt.Fprintf(&b, "\nsluice is %.2f× as fast as Benthos (wall), with %.2f× its peak RSS\n", r.Speedup, r.RSSRatio)
	for _, t := range r.Targets {
		met := "NO"
		if t.Met {
			met = "yes"
		}
		fmt.Fprintf(&b, "target %s: %.2f, %s: %s\n", t.Name, t.Value, t.Target, met)
	}
	return b.String()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// startBroker runs `sluice broker` in its own process and returns its
// address and a function that stops it.
func startBroker(ctx context.Context, sluiceBin, topic string, parts int) (string, func(), error) {
	cmd := exec.CommandContext(ctx, sluiceBin, "broker", "--listen", "127.0.0.1:0", "--topic", fmt.Sprintf("%s:%d", topic, parts), "--log-level", "error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start broker: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "sluice broker listening on "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, errors.New("the broker did not print its address")
}

// preload produces n records of about size bytes, round-robin over the
// partitions: JSON order events padded to the size (at least about 155 B:
// smaller sizes give the bare event).
func preload(ctx context.Context, addr, topic string, n, size int, parts int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	var failed atomic.Pointer[error]
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Partition: int32(i) % parts, Key: []byte(fmt.Sprintf("customer-%04d", i%1000)), Value: order(i, size)}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
		if e := failed.Load(); e != nil {
			return fmt.Errorf("preload: %w", *e)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if e := failed.Load(); e != nil {
		return fmt.Errorf("preload: %w", *e)
	}
	// Check the topic holds them all.
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != int64(n) {
		return fmt.Errorf("preload: the topic holds %d records, want %d", total, n)
	}
	return nil
}

// warmUp reads the n preloaded records of topic once from the start with
// a plain franz-go consumer and discards them.
func warmUp(ctx context.Context, addr, topic string, n int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var got int64
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("warm-up read after %d of %d records: %w", got, n, err)
		}
		got += int64(fs.NumRecords())
	}
	return nil
}

var statuses = []string{"created", "paid", "packed", "shipped", "delivered"}

// order renders record i as a JSON order event padded to size bytes.
func order(i, size int) []byte {
	v := fmt.Sprintf(`{"order_id":"o-%09d","customer_id":"customer-%04d","amount":%d.%02d,"currency":"EUR","status":%q,"ts":"2026-01-01T00:00:%02d.%03dZ","note":"`,
		i, i%1000, 10+i%990, i%100, statuses[i%len(statuses)], i%60, i%1000)
	b := []byte(v)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, '"', '}')
}

var peakRE = regexp.MustCompile(`peak RSS: (\d+) bytes`)

// benthosDrain runs this binary's benthos command as a child process.
func benthosDrain(ctx context.Context, self, addr, topic string) (Run, error) {
	cmd := exec.CommandContext(ctx, self, "benthos", "--brokers", addr, "--topic", topic)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return Run{}, fmt.Errorf("benthos: %w\n%s", err, out)
	}
	run := Run{WallSeconds: wall.Seconds()}
	if m := peakRE.FindSubmatch(out); m != nil {
		run.PeakRSS, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := regexp.MustCompile(`records: (\d+)`).FindSubmatch(out); m != nil {
		run.Records, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if run.PeakRSS == 0 {
		return Run{}, fmt.Errorf("benthos reported no peak RSS:\n%s", out)
	}
	return run, nil
}

// sluicePipeline is the seed's query on topic with the availableNow
// trigger and nothing else set.
func sluicePipeline(addr, topic, chk string) string {
	return fmt.Sprintf(`name: peers
source:
  format: kafka
  options:
    kafka.bootstrap.servers: %q
    subscribe: %q
    startingOffsets: earliest
transform:
  - selectExpr: ["CAST(value AS STRING) AS json"]
  - withColumn: {name: processed_ts, expr: "current_timestamp()"}
sink:
  format: noop
  options:
    checkpointLocation: %q
trigger:
  availableNow: true
`, addr, topic, chk)
}

var budgetRE = regexp.MustCompile(`memory budget[^\n]*?budget=(\S+)`)

// sluiceDrain runs `sluice run` of the seed's query as a child process.
func sluiceDrain(ctx context.Context, bin, addr, topic string) (Run, error) {
	dir, err := os.MkdirTemp("", "peerbench-sluice-")
	if err != nil {
		return Run{}, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "peers.yaml")
	if err := os.WriteFile(p, []byte(sluicePipeline(addr, topic, filepath.Join(dir, "chk"))), 0o644); err != nil {
		return Run{}, err
	}
	progress := filepath.Join(dir, "progress.jsonl")
	cmd := exec.CommandContext(ctx, bin, "run", p, "--stats", "--quiet", "--ui-addr", "off", "--progress-file", progress, "--log-level", "info")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return Run{}, fmt.Errorf("sluice run: %w\n%s", err, out)
	}
	run := Run{WallSeconds: wall.Seconds()}
	if m := peakRE.FindSubmatch(out); m != nil {
		run.PeakRSS, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := budgetRE.FindSubmatch(out); m != nil {
		run.Budget = strings.Trim(string(m[1]), `"`)
	}
	if run.PeakRSS == 0 {
		return Run{}, fmt.Errorf("sluice reported no peak RSS:\n%s", out)
	}
	data, err := os.ReadFile(progress)
	if err != nil {
		return Run{}, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var pr struct {
			NumInputRows int64 `json:"numInputRows"`
		}
		if line != "" && json.Unmarshal([]byte(line), &pr) == nil {
			run.Records += pr.NumInputRows
		}
	}
	return run, nil
}
