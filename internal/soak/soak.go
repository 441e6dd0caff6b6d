// Package soak runs a Kafka → Parquet pipeline for a long time under the
// faults a production query meets, and fails if anything trends upward,
// if lag is unbounded or if any record is lost or duplicated.
//
// The setup is three kinds of process: an embedded broker (`sluice broker`
// with a data directory, a child so that it can be hung with SIGSTOP and
// restarted), the query (`sluice run`, a child so that it can be killed
// with SIGKILL and measured from /proc), and this process, which produces,
// injects the faults, samples and checks.
//
//  1. Capacity: a backlog is drained through the soak's own pipeline
//     (maxOffsetsPerTrigger caps its batches, so that an hour's output stays
//     a few GB) on a topic of its own; capacity is the drain rate.
//  2. Load: a producer writes at 80 % of that capacity, with periodic spikes
//     to twice the rate, for the whole duration.
//  3. Faults, for the whole duration: SIGKILL of the query (restarted at
//     once), broker hangs (SIGSTOP … SIGCONT) and broker restarts (SIGTERM,
//     a pause, start on the same port and data).
//  4. Samples every 10 s: the query's resident memory and open file
//     descriptors (/proc), its goroutines (go_goroutines on its /metrics),
//     its lag (the broker's end offsets minus the offsets of the latest
//     commit in its checkpoint, measured by this process) and the size of
//     its checkpoint.
//  5. The end: the producer stops, the query drains and stops, and every
//     record in the topic is looked up in the output by (partition,
//     offset), reading the output as its log lists it, as the torture test
//     does: none may be missing, none twice, each with the value the topic
//     holds; every record the broker acknowledged must be in the topic.
//
// The verdict on trends (see Trend): after the warm-up, each metric is
// fitted with a line — per-process metrics within each lifetime of the
// process (a kill restarts it from a fresh heap), leaving out its first
// 20 s — and it fails when the slope is significant (t > 3) and its growth
// per hour exceeds a tolerance: resident memory 25 % of its median + 16
// MiB, goroutines 10 % + 10, file descriptors 10 % + 5, checkpoint bytes
// 10 % + 64 KiB. A leak grows without bound; these bounds pass the heap
// reaching its steady size and the jitter of in-flight fetches, and catch
// any growth that would exhaust memory, descriptors or disk within a day.
// Lag is bounded when its fitted growth over the run stays below one
// outage's backlog (the producer's rate × (hang + 30 s)) and the final
// drain completes within DrainTimeout.
package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/procstat"
)

// Config is one soak run. Zero durations take defaults scaled to Duration
// (see defaults).
type Config struct {
	// Command returns the command running sluice with args. The soak
	// stops its children itself (ctx is the run's context, for callers
	// that want them tied to it too).
	Command func(ctx context.Context, args ...string) *exec.Cmd
	// Dir is the work directory (broker data, checkpoint, output).
	Dir      string
	Duration time.Duration
	// SampleEvery is the sampling period (10 s).
	SampleEvery time.Duration
	// WarmUp is left out of the trend fits.
	WarmUp time.Duration
	// KillEvery is the mean time between SIGKILLs of the query.
	KillEvery time.Duration
	// HangEvery / HangFor: broker hangs (SIGSTOP for HangFor).
	HangEvery, HangFor time.Duration
	// RestartEvery / RestartFor: broker restarts (down for RestartFor).
	RestartEvery, RestartFor time.Duration
	// SpikeEvery / SpikeFor: the producer doubles its rate for SpikeFor.
	SpikeEvery, SpikeFor time.Duration
	// Load is the producer's share of the measured capacity (0.8).
	Load float64
	// MaxOffsetsPerTrigger and Trigger shape the pipeline: a 1 s trigger
	// (250 ms for runs under 10 minutes) and 4000 records a second.
	MaxOffsetsPerTrigger int
	Trigger              time.Duration
	Partitions           int
	// DrainTimeout bounds the final drain.
	DrainTimeout time.Duration
	Seed         uint64
	// Out receives one line per event and sample.
	Out io.Writer
	Log *slog.Logger
}

func clamp(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }

// defaults fills the zero fields; periods scale with the duration so a
// short run still sees every kind of fault.
func (c *Config) defaults() {
	d := c.Duration
	set := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	set(&c.SampleEvery, 10*time.Second)
	// Short runs trigger more often, so the checkpoint reaches its
	// retained size (100 batches) well within the warm-up.
	if d < 10*time.Minute {
		set(&c.Trigger, 250*time.Millisecond)
	}
	set(&c.Trigger, time.Second)
	set(&c.WarmUp, max(clamp(d/6, 30*time.Second, 10*time.Minute), 150*c.Trigger))
	set(&c.KillEvery, clamp(d/20, 40*time.Second, 3*time.Minute))
	set(&c.HangEvery, clamp(d/6, time.Minute, 10*time.Minute))
	set(&c.HangFor, clamp(d/60, 5*time.Second, 20*time.Second))
	set(&c.RestartEvery, clamp(d/4, time.Minute, 15*time.Minute))
	set(&c.RestartFor, clamp(d/120, 3*time.Second, 10*time.Second))
	set(&c.SpikeEvery, clamp(d/12, 30*time.Second, 5*time.Minute))
	set(&c.SpikeFor, clamp(d/30, 5*time.Second, 15*time.Second))
	set(&c.DrainTimeout, 3*time.Minute)
	if c.Load == 0 {
		c.Load = 0.8
	}
	if c.MaxOffsetsPerTrigger == 0 {
		c.MaxOffsetsPerTrigger = int(4000 * c.Trigger.Seconds()) // at most 4000 records/s
	}
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Sample is one sampling of the query.
type Sample struct {
	// T is the time since the start of the load, in seconds.
	T float64 `json:"t"`
	// Life counts the query processes started before this sample (a kill
	// starts a new one); Up is how long this one has run, in seconds.
	Life int     `json:"life"`
	Up   float64 `json:"up"`
	// RSS is the query's resident memory in bytes, FDs its open file
	// descriptors, Goroutines its goroutines; -1 when not measured (the
	// process was being restarted). AnonRSS is the part of RSS not backed
	// by a file (heap, stacks, runtime): what a leak grows. The rest is
	// mostly the executable's pages, bounded by its size, which `sluice
	// run` releases at start and which come back as code runs.
	RSS        int64 `json:"rss"`
	AnonRSS    int64 `json:"anonRss"`
	FDs        int   `json:"fds"`
	Goroutines int   `json:"goroutines"`
	// Lag is end offsets minus committed offsets in records; -1 when the
	// broker did not answer (hung or restarting).
	Lag int64 `json:"lag"`
	// CheckpointBytes and CheckpointFiles size the checkpoint directory.
	CheckpointBytes int64 `json:"checkpointBytes"`
	CheckpointFiles int   `json:"checkpointFiles"`
}

// Result is a soak run's figures and verdict.
type Result struct {
	Capacity float64  `json:"capacityPerSecond"`
	Rate     float64  `json:"ratePerSecond"`
	Samples  []Sample `json:"samples"`
	Trends   []Trend  `json:"trends"`
	// LagBound is the lag growth allowed over the run (one outage's
	// backlog); MaxLag the largest lag sampled.
	LagBound float64 `json:"lagBound"`
	MaxLag   int64   `json:"maxLag"`
	// Drained says the final drain finished, in DrainSeconds.
	Drained      bool    `json:"drained"`
	DrainSeconds float64 `json:"drainSeconds"`

	Kills    int `json:"kills"`
	Hangs    int `json:"hangs"`
	Restarts int `json:"restarts"`
	Spikes   int `json:"spikes"`

	// Acked counts the records the broker acknowledged; InTopic the
	// records the topic holds (a producer retry may add some twice);
	// AckedMissing the acknowledged ones not in the topic.
	Acked        int `json:"acked"`
	InTopic      int `json:"inTopic"`
	AckedMissing int `json:"ackedMissing"`
	// Output counts the rows of the committed output; Lost the topic
	// records not in it; Duplicated the extra copies; Mismatched rows
	// whose value differs from the topic's at their offset.
	Output     int `json:"output"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Mismatched int `json:"mismatched"`

	Failures []string `json:"failures"`
}

// OK reports a passing run.
func (r *Result) OK() bool { return len(r.Failures) == 0 }

const (
	topic      = "soak"
	probeTopic = "soak-probe"
	// lifeWarmUp is left out of the per-process fits after each start.
	lifeWarmUp = 20 * time.Second
)

// Run executes the soak.
func Run(ctx context.Context, c Config) (*Result, error) {
	c.defaults()
	if c.Command == nil || c.Dir == "" || c.Duration <= 0 {
		return nil, errors.New("soak: Command, Dir and a positive Duration are required")
	}
	// A previous run's broker data and checkpoints would be resumed: the
	// capacity probe would find its backlog already drained and the
	// counts would mix two runs.
	if entries, err := os.ReadDir(c.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("soak: the work directory %s is not empty (a previous run's broker and checkpoints would be resumed); give an empty or new directory", c.Dir)
	}
	s := &soak{cfg: c, res: &Result{}, rnd: rand.New(rand.NewPCG(c.Seed, c.Seed^0x50a4))}
	return s.run(ctx)
}

type soak struct {
	cfg Config
	res *Result
	rnd *rand.Rand
	// ctx is the run's outer context: the children live until it ends
	// (the load's context ends earlier).
	ctx context.Context

	brokerMu sync.Mutex
	broker   *exec.Cmd
	addr     string
	dataDir  string
	hung     atomic.Bool

	queryMu   sync.Mutex
	query     *exec.Cmd
	queryDone chan struct{}
	queryUp   time.Time
	life      int
	uiAddr    string
	queryLog  *os.File

	acked  []bool // by id; guarded by ackMu
	ackMu  sync.Mutex
	nextID atomic.Int64

	start time.Time
}

func (s *soak) printf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Out, format+"\n", args...)
}

func (s *soak) run(ctx context.Context) (*Result, error) {
	c := s.cfg
	s.ctx = ctx
	s.dataDir = filepath.Join(c.Dir, "broker")
	if err := s.startBroker("127.0.0.1:0"); err != nil {
		return nil, err
	}
	defer s.stopBroker()
	var err error
	if s.queryLog, err = os.Create(filepath.Join(c.Dir, "query.log")); err != nil {
		return nil, err
	}
	defer s.queryLog.Close()
	if s.uiAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	defer s.stopQuery(true) // on an early return; a no-op after the drain

	// 1. Capacity.
	if s.res.Capacity, err = s.measureCapacity(ctx); err != nil {
		return nil, err
	}
	s.res.Rate = s.res.Capacity * c.Load
	s.printf("capacity %.0f records/s; producing at %.0f/s (%.0f %%), spikes of %s at twice that every %s", s.res.Capacity, s.res.Rate, c.Load*100, c.SpikeFor, c.SpikeEvery)
	s.printf("faults: SIGKILL of the query every ~%s, broker hang of %s every %s, broker restart (%s down) every %s; warm-up %s",
		c.KillEvery, c.HangFor, c.HangEvery, c.RestartFor, c.RestartEvery, c.WarmUp)

	// 2–4. Load, faults and samples.
	pipeline, err := s.pipeline(topic, "main", fmt.Sprintf("processingTime: %d milliseconds", c.Trigger.Milliseconds()))
	if err != nil {
		return nil, err
	}
	s.start = time.Now()
	if err := s.startQuery(pipeline); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithTimeout(ctx, c.Duration)
	defer stop()
	prod, err := s.newProducer()
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	var prodErr error
	wg.Add(4)
	go func() { defer wg.Done(); prodErr = s.produce(runCtx, prod) }()
	go func() { defer wg.Done(); s.killLoop(runCtx, pipeline) }()
	go func() { defer wg.Done(); s.brokerLoop(runCtx) }()
	go func() { defer wg.Done(); s.sampleLoop(runCtx) }()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		prod.Close()
		return nil, err
	}
	s.brokerMu.Lock()
	up := s.broker != nil
	s.brokerMu.Unlock()
	if !up {
		prod.Close()
		return nil, fmt.Errorf("soak: the broker is down after the load: %v", s.res.Failures)
	}
	// The broker is up and running again (a hang or restart ends with the
	// run's context); flush what is buffered.
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	ferr := prod.Flush(fctx)
	cancel()
	prod.Close()
	if prodErr != nil && !errors.Is(prodErr, context.DeadlineExceeded) && !errors.Is(prodErr, context.Canceled) {
		return nil, fmt.Errorf("soak: producer: %w", prodErr)
	}
	if ferr != nil {
		return nil, fmt.Errorf("soak: flushing the producer: %w", ferr)
	}

	// 5. Drain, stop and check.
	if err := s.drain(ctx); err != nil {
		return nil, err
	}
	if err := s.verify(ctx); err != nil {
		return nil, err
	}
	s.judge()
	return s.res, nil
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startBroker starts `sluice broker` on listen with the soak's data
// directory and records its address.
func (s *soak) startBroker(listen string) error {
	cmd := s.cfg.Command(s.ctx, "broker", "--listen", listen, "--data-dir", s.dataDir,
		"--topic", fmt.Sprintf("%s:%d", topic, s.cfg.Partitions), "--topic", fmt.Sprintf("%s:%d", probeTopic, s.cfg.Partitions), "--log-level", "error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = s.queryLog
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("soak: start broker: %w", err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "sluice broker listening on "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			s.brokerMu.Lock()
			s.broker, s.addr = cmd, addr
			s.brokerMu.Unlock()
			return nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return errors.New("soak: the broker did not print its address")
}

// stopBroker stops the broker gracefully (SIGTERM: it persists its state).
func (s *soak) stopBroker() {
	s.brokerMu.Lock()
	cmd := s.broker
	s.broker = nil
	s.brokerMu.Unlock()
	if cmd == nil {
		return
	}
	if s.hung.Swap(false) {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// pipeline writes the soak's pipeline file reading topic t into the
// output and checkpoint named by name.
func (s *soak) pipeline(t, name, trigger string) (string, error) {
	y := fmt.Sprintf(`name: soak-%s
source:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: %s
    startingOffsets: earliest
    maxOffsetsPerTrigger: %d
    sluice.reconnect.timeout: 10m
transform:
  - selectExpr: ["CAST(value AS STRING) AS value", "partition", "offset"]
sink:
  format: parquet
  options:
    path: %s
    checkpointLocation: %s
trigger:
  %s
`, name, s.addr, t, s.cfg.MaxOffsetsPerTrigger, s.outDir(name), s.chkDir(name), trigger)
	p := filepath.Join(s.cfg.Dir, "pipeline-"+name+".yaml")
	return p, os.WriteFile(p, []byte(y), 0o644)
}

func (s *soak) outDir(name string) string { return filepath.Join(s.cfg.Dir, "out-"+name) }
func (s *soak) chkDir(name string) string { return filepath.Join(s.cfg.Dir, "chk-"+name) }

// startQuery starts the query child.
func (s *soak) startQuery(pipeline string) error {
	cmd := s.cfg.Command(s.ctx, "run", pipeline, "--quiet", "--ui-addr", s.uiAddr, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = io.Discard, s.queryLog
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("soak: start query: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.queryMu.Lock()
	s.query, s.queryDone, s.queryUp = cmd, done, time.Now()
	s.life++
	s.queryMu.Unlock()
	return nil
}

// currentQuery returns the running query, its start and lifetime number.
func (s *soak) currentQuery() (*exec.Cmd, chan struct{}, time.Time, int) {
	s.queryMu.Lock()
	defer s.queryMu.Unlock()
	return s.query, s.queryDone, s.queryUp, s.life
}

// stopQuery stops the query with SIGTERM (or SIGKILL when kill), waiting
// for it to exit.
func (s *soak) stopQuery(kill bool) error {
	cmd, done, _, _ := s.currentQuery()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return fmt.Errorf("soak: the query exited on its own (%v); see %s", cmd.ProcessState, s.queryLog.Name())
	default:
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		return errors.New("soak: the query did not stop within a minute of SIGTERM")
	}
	return nil
}

// sleep waits d or until ctx is done (false then).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// jitter returns d scaled by a random factor in [0.5, 1.5).
func (s *soak) jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + s.rnd.Float64()))
}

// killLoop SIGKILLs the query at random moments and restarts it at once;
// a query that exited on its own fails the run.
func (s *soak) killLoop(ctx context.Context, pipeline string) {
	for {
		_, done, _, _ := s.currentQuery()
		select {
		case <-done:
			s.fail("the query exited on its own at %s; see %s", s.since(), s.queryLog.Name())
			return
		case <-ctx.Done():
			return
		case <-time.After(s.jitter(s.cfg.KillEvery)):
		}
		if err := s.stopQuery(true); err != nil {
			s.fail("%v", err)
			return
		}
		s.res.Kills++
		s.printf("%7s  SIGKILL query (kill %d)", s.since(), s.res.Kills)
		if err := s.startQuery(pipeline); err != nil {
			s.fail("%v", err)
			return
		}
	}
}

// brokerLoop hangs and restarts the broker on schedule.
func (s *soak) brokerLoop(ctx context.Context) {
	c := s.cfg
	nextHang := c.HangEvery / 2
	nextRestart := c.RestartEvery * 3 / 4
	for {
		at := min(nextHang, nextRestart)
		if !sleep(ctx, time.Until(s.start.Add(at))) {
			return
		}
		if nextHang <= nextRestart {
			nextHang += c.HangEvery
			s.brokerMu.Lock()
			cmd := s.broker
			s.brokerMu.Unlock()
			cmd.Process.Signal(syscall.SIGSTOP)
			s.hung.Store(true)
			s.res.Hangs++
			s.printf("%7s  broker hangs (SIGSTOP) for %s", s.since(), c.HangFor)
			sleep(ctx, c.HangFor)
			if s.hung.Swap(false) {
				cmd.Process.Signal(syscall.SIGCONT)
			}
			s.printf("%7s  broker answers again (SIGCONT)", s.since())
			continue
		}
		nextRestart += c.RestartEvery
		addr := s.addr
		s.stopBroker()
		s.res.Restarts++
		s.printf("%7s  broker stopped (restart %d), down for %s", s.since(), s.res.Restarts, c.RestartFor)
		sleep(s.ctx, c.RestartFor) // the full pause even at the end of the load: the drain needs the broker
		if err := s.startBroker(addr); err != nil {
			s.fail("broker restart: %v", err)
			return
		}
		s.printf("%7s  broker up again on %s", s.since(), addr)
	}
}

func (s *soak) since() string { return time.Since(s.start).Round(time.Second).String() }

var failMu sync.Mutex

func (s *soak) fail(format string, args ...any) {
	failMu.Lock()
	defer failMu.Unlock()
	s.res.Failures = append(s.res.Failures, fmt.Sprintf(format, args...))
}

// newProducer returns the producer client: it retries without end, so a
// hung or restarting broker only delays acknowledgements.
func (s *soak) newProducer() (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(5*time.Millisecond))
}

func value(id int64) string { return fmt.Sprintf("s-%010d", id) }

// produce writes at the configured rate (twice that during spikes) until
// ctx is done. Records the client cannot buffer (the broker hangs) are
// not produced late in a burst: the schedule moves on.
func (s *soak) produce(ctx context.Context, cl *kgo.Client) error {
	const tick = 20 * time.Millisecond
	rate := s.res.Rate
	owed := 0.0
	last := time.Now()
	spiking := false
	for {
		if !sleep(ctx, tick) {
			return ctx.Err()
		}
		now := time.Now()
		t := now.Sub(s.start)
		phase := t % s.cfg.SpikeEvery
		spike := t >= s.cfg.SpikeEvery && phase < s.cfg.SpikeFor
		if spike && !spiking {
			s.res.Spikes++
			s.printf("%7s  spike: producing at %.0f/s for %s", s.since(), 2*rate, s.cfg.SpikeFor)
		}
		spiking = spike
		r := rate
		if spike {
			r *= 2
		}
		owed += r * now.Sub(last).Seconds()
		last = now
		owed = min(owed, r) // at most a second behind
		var full atomic.Bool
		for ; owed >= 1 && !full.Load(); owed-- {
			id := s.nextID.Add(1) - 1
			rec := &kgo.Record{Topic: topic, Value: []byte(value(id))}
			cl.TryProduce(context.WithoutCancel(ctx), rec, func(_ *kgo.Record, err error) {
				switch {
				case err == nil:
					s.ack(id)
				case errors.Is(err, kgo.ErrMaxBuffered):
					full.Store(true)
				}
			})
		}
		if full.Load() {
			owed = 0 // the broker is not keeping up: skip ahead
		}
	}
}

func (s *soak) ack(id int64) {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	for int64(len(s.acked)) <= id {
		s.acked = append(s.acked, false)
	}
	s.acked[id] = true
}

// sampleLoop samples every SampleEvery until ctx is done.
func (s *soak) sampleLoop(ctx context.Context) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		s.fail("sampler: %v", err)
		return
	}
	defer adm.Close()
	for sleep(ctx, s.cfg.SampleEvery) {
		smp := s.sample(ctx, kadm.NewClient(adm))
		s.res.Samples = append(s.res.Samples, smp)
		s.printf("%7s  rss %6.1f MiB (anon %6.1f)  goroutines %4d  fds %4d  lag %8d  checkpoint %7.1f KiB / %d files  (query %d, up %.0fs)",
			s.since(), float64(smp.RSS)/(1<<20), float64(smp.AnonRSS)/(1<<20), smp.Goroutines, smp.FDs, smp.Lag, float64(smp.CheckpointBytes)/1024, smp.CheckpointFiles, smp.Life, smp.Up)
	}
}

func (s *soak) sample(ctx context.Context, adm *kadm.Client) Sample {
	cmd, done, up, life := s.currentQuery()
	smp := Sample{T: time.Since(s.start).Seconds(), Life: life, Up: time.Since(up).Seconds(), RSS: -1, AnonRSS: -1, FDs: -1, Goroutines: -1, Lag: -1}
	select {
	case <-done:
	default:
		pid := cmd.Process.Pid
		if rss, _, err := procstat.Memory(pid); err == nil {
			smp.RSS = rss
			if file, err := procstat.FileResident(pid); err == nil && file <= rss {
				smp.AnonRSS = rss - file
			}
		}
		if n, err := procstat.FDs(pid); err == nil {
			smp.FDs = n
		}
		smp.Goroutines = s.goroutines(ctx)
	}
	if !s.hung.Load() {
		if lag, err := s.lag(ctx, adm, "main"); err == nil {
			smp.Lag = lag
		}
	}
	if cp, err := checkpoint.OpenReadOnly(s.chkDir("main")); err == nil {
		smp.CheckpointBytes, smp.CheckpointFiles, _ = cp.Size()
		cp.Close()
	}
	return smp
}

// goroutines reads go_goroutines from the query's /metrics, or -1.
func (s *soak) goroutines(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.uiAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// committed returns the end offsets of the latest committed batch of the
// query name, per partition of its topic (none before the first commit).
func (s *soak) committed(name string) (map[int32]int64, error) {
	cp, err := checkpoint.OpenReadOnly(s.chkDir(name))
	if err != nil {
		return nil, err
	}
	defer cp.Close()
	id, ok, err := cp.LatestCommit()
	if err != nil || !ok {
		return map[int32]int64{}, err
	}
	_, offs, err := cp.ReadOffsets(id)
	if err != nil {
		return nil, err
	}
	if len(offs) != 1 || offs[0] == "" {
		return nil, fmt.Errorf("soak: offsets of batch %d: %q", id, offs)
	}
	var m map[string]map[string]int64
	if err := json.Unmarshal([]byte(offs[0]), &m); err != nil {
		return nil, fmt.Errorf("soak: offsets of batch %d: %w", id, err)
	}
	out := map[int32]int64{}
	for _, parts := range m {
		for p, o := range parts {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("soak: offsets of batch %d: partition %q", id, p)
			}
			out[int32(n)] = o
		}
	}
	return out, nil
}

// lag is the broker's end offsets of the query's topic minus its
// committed offsets.
func (s *soak) lag(ctx context.Context, adm *kadm.Client, name string) (int64, error) {
	t := topic
	if name == "probe" {
		t = probeTopic
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, t)
	if err != nil {
		return 0, err
	}
	if err := ends.Error(); err != nil {
		return 0, err
	}
	com, err := s.committed(name)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) { lag += o.Offset - com[o.Partition] })
	return lag, nil
}
