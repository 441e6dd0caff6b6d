// Package torture proves exactly-once output by killing: it runs a
// Kafka → sink pipeline as a child process, kills it with SIGKILL at random
// moments while a producer keeps writing, restarts it, and finally checks
// the sink's committed output. Two pipelines: "copy" (every produced record
// is in the output exactly once) and "window", a stateful one (a windowed
// count per key with a watermark in append mode: every window the final
// watermark has passed is in the output exactly once, with the count and
// the sum of ids of exactly the records that fall in it).
//
// The child is `sluice run` (any binary that accepts `run PIPELINE.yaml`);
// the broker runs in another child so that kills hit only the query. With
// Store "azurite" or "s3" the output and the checkpoint live on an
// object-store emulator (Azurite as a child process, gofakes3 in this
// process) that outlives every kill.
package torture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/parquetio"
	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/storage/emulator"
)

// Sinks lists the sink formats Run can check.
var Sinks = []string{"parquet", "json", "delta", "kafka"}

// Pipelines lists the queries Run can torture: "copy" selects the records
// into the sink; "window" counts them per key and 10-second event-time
// window with a 30-second watermark, in append mode (stateful: state store,
// exchange, watermark in the checkpoint, no-data batches).
var Pipelines = []string{"copy", "window"}

// Stores lists where the output and the checkpoint can live: the local
// disk, Azurite (Azure Blob Storage / ADLS) or an S3 emulator.
var Stores = []string{"local", "azurite", "s3"}

// Config is one torture run.
type Config struct {
	// Command returns the command that runs sluice with args (e.g.
	// os.Executable with args; a test binary re-executes itself).
	Command func(ctx context.Context, args ...string) *exec.Cmd
	Sink    string
	// Pipeline is one of Pipelines ("" is "copy").
	Pipeline string
	// Kills is how many times the query is killed.
	Kills int
	// Records is how many records the producer writes in total (over 4
	// partitions) while the query is being killed.
	Records int
	// MinUp and MaxUp bound how long the query runs before each kill.
	MinUp, MaxUp time.Duration
	Dir          string // work directory (checkpoint and output on the local store)
	// Store is "local" (default), "azurite" or "s3": where the output and
	// the checkpoint live.
	Store string
	Seed  uint64
	Log   *slog.Logger
	Out   io.Writer // progress lines
	// AsyncProgress runs the query with asyncProgressTrackingEnabled
	// (interval AsyncProgressInterval): the check is at-least-once —
	// every record in the output, duplicates allowed. Only the copy
	// pipeline into Kafka on the local store; the final drain runs with
	// the option too (processingTime, stopped with SIGTERM once the output
	// holds every record), as turning it off after a crash is refused.
	AsyncProgress bool

	emu *emulator.Emulator // the object-store emulator of this run
	// group is the consumer group of a group-mode run (RunMembers): the
	// source option sluice.group; "" for one process.
	group string
	// partitions of the input and output topics; 0 means 4.
	partitions int
	// freshNames leaves sluice.group.member unset (MembersConfig.Names).
	freshNames bool
	// brokerLog, when set, is where the broker child logs at debug level
	// (MembersConfig.LogDir's broker.log).
	brokerLog string
}

// Result is what the final check found.
type Result struct {
	Pipeline string
	Produced int // records produced
	// Output is the rows in the committed output: records for "copy",
	// windows (one row per window and key) for "window".
	Output int
	// Distinct, Lost and Duplicated count records ("copy") or windows
	// ("window"): a window is lost when the final watermark passed its
	// end and no row has it, duplicated when more than one row has it.
	Distinct   int
	Lost       int
	Duplicated int
	// Windows is how many windows the final watermark has passed (the
	// output "window" must have); WrongCount how many output windows have
	// a count or sum of ids other than their records'; Unexpected how
	// many output rows name a window that should not be emitted yet or
	// does not exist. Zero for "copy".
	Windows, WrongCount, Unexpected int
	Kills                           int
	// Batches is how many batches the killed runs committed (before the
	// final drain): kills that land mid-work, not only at start-up.
	Batches int64
	// AtLeastOnce: the run used asyncProgressTrackingEnabled, whose
	// promise OK checks (no record lost; duplicates allowed).
	AtLeastOnce bool
	// GlobRows counts the rows of every data file in a file or Delta
	// sink's output directory, listed or not by its log: what a plain
	// glob reads. Files of killed batches make it exceed Output until the
	// output is vacuumed. -1 for the Kafka sink.
	GlobRows int
}

func (r Result) String() string {
	s := fmt.Sprintf("%d kills (%d batches committed between them); produced %d, output %d rows (%d distinct): %d lost, %d duplicated",
		r.Kills, r.Batches, r.Produced, r.Output, r.Distinct, r.Lost, r.Duplicated)
	if r.Pipeline == "window" {
		s = fmt.Sprintf("%d kills (%d batches committed between them); produced %d records in %d closed windows; output %d window rows (%d distinct): %d lost, %d duplicated, %d with a wrong count, %d unexpected",
			r.Kills, r.Batches, r.Produced, r.Windows, r.Output, r.Distinct, r.Lost, r.Duplicated, r.WrongCount, r.Unexpected)
	}
	if r.GlobRows >= 0 {
		s += fmt.Sprintf("; a glob of the directory reads %d rows (%d in files no log lists)", r.GlobRows, r.GlobRows-r.Output)
	}
	if r.AtLeastOnce {
		s += " (asyncProgressTrackingEnabled: at-least-once, duplicates allowed)"
	}
	return s
}

// OK reports exactly-once.
func (r Result) OK() bool {
	if r.Pipeline == "window" {
		return r.Lost == 0 && r.Duplicated == 0 && r.WrongCount == 0 && r.Unexpected == 0 && r.Output == r.Windows && r.Windows > 0
	}
	if r.AtLeastOnce {
		return r.Lost == 0 && r.Distinct == r.Produced && r.Produced > 0
	}
	return r.Lost == 0 && r.Duplicated == 0 && r.Output == r.Produced
}

// AsyncProgressInterval is asyncProgressTrackingCheckpointIntervalMs of
// an AsyncProgress torture: shorter than a run between kills, so that
// some batches are logged and some are not.
const AsyncProgressInterval = 300 * time.Millisecond

func (c *Config) cmd(ctx context.Context, args ...string) *exec.Cmd { return c.Command(ctx, args...) }

// startBroker runs `sluice broker` as a child and returns its address.
func (c *Config) startBroker(ctx context.Context) (string, func(), error) {
	n := c.partitions
	if n <= 0 {
		n = 4
	}
	args := []string{"broker", "--listen", "127.0.0.1:0", "--topic", fmt.Sprintf("torture:%d", n), "--topic", fmt.Sprintf("torture-out:%d", n)}
	if c.brokerLog != "" {
		args = append(args, "--log-level", "debug")
	}
	cmd := c.cmd(ctx, args...)
	if c.brokerLog != "" {
		f, err := os.Create(c.brokerLog)
		if err != nil {
			return "", nil, err
		}
		defer f.Close() // the child has its own descriptor
		cmd.Stderr = f
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "sluice broker listening on "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, errors.New("torture: the broker child did not print its address")
}

// outPath and chkPath are where the output and the checkpoint go.
func (c *Config) outPath() string {
	if c.emu != nil {
		return c.emu.URI("torture/out")
	}
	return filepath.Join(c.Dir, "out")
}

func (c *Config) chkPath() string {
	if c.emu != nil {
		return c.emu.URI("torture/chk")
	}
	return filepath.Join(c.Dir, "chk")
}

func (c *Config) pipeline(addr, trigger string) (string, error) {
	var sink string
	switch c.Sink {
	case "parquet", "json", "delta":
		sink = fmt.Sprintf("  format: %s\n  options:\n    path: %s\n", c.Sink, c.outPath())
	case "kafka":
		sink = fmt.Sprintf("  format: kafka\n  options:\n    kafka.bootstrap.servers: %s\n    topic: torture-out\n", addr)
		if c.AsyncProgress {
			sink += fmt.Sprintf("    asyncProgressTrackingEnabled: true\n    asyncProgressTrackingCheckpointIntervalMs: %d\n", AsyncProgressInterval.Milliseconds())
		}
	default:
		return "", fmt.Errorf("torture: sink %q (allowed: %s)", c.Sink, strings.Join(Sinks, ", "))
	}
	conf := map[string]string{}
	if c.emu != nil {
		maps.Copy(conf, c.emu.Conf)
	}
	transform := `  - selectExpr: ["CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "partition", "offset"]
`
	if c.Pipeline == "window" {
		conf["spark.sql.shuffle.partitions"] = "4"
		sink = "  outputMode: append\n" + sink
		transform = windowTransform
	}
	top := ""
	if len(conf) > 0 {
		top = "options:\n"
		for _, k := range slices.Sorted(maps.Keys(conf)) {
			top += fmt.Sprintf("  %s: %q\n", k, conf[k])
		}
	}
	group := ""
	if c.group != "" {
		// One file for every member, as a Deployment's ConfigMap. With
		// slot names the member name comes from the environment (a pod
		// name), so that a member restarted in its slot fences its
		// killed incarnation's open transaction at once; with fresh
		// names it is the default HOSTNAME-PID. Kafka's group timeouts are shortened
		// (the broker's minimum session timeout is 6 s) so that a
		// killed member's partitions move within seconds.
		group = fmt.Sprintf(`    sluice.group: %s
    kafka.session.timeout.ms: 6000
    kafka.heartbeat.interval.ms: 500
    kafka.rebalance.timeout.ms: 10000
`, c.group)
		if !c.freshNames {
			group += fmt.Sprintf("    sluice.group.member: ${%s}\n", MemberEnv)
		}
		if c.Sink == "kafka" {
			// A killed member's open transaction holds back
			// read_committed readers and the partition's next owner
			// until the broker aborts it (unless a restart under the
			// same name fences it first).
			sink += "    kafka.transaction.timeout.ms: 30000\n"
		}
	}
	y := fmt.Sprintf(`name: torture
%ssource:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: torture
    startingOffsets: earliest
    maxOffsetsPerTrigger: 500
%stransform:
%ssink:
%s    checkpointLocation: %s
trigger:
  %s
`, top, addr, group, transform, sink, c.chkPath(), trigger)
	p := filepath.Join(c.Dir, "pipeline-"+strings.Fields(trigger)[0]+".yaml")
	return p, os.WriteFile(p, []byte(y), 0o644)
}

// Run executes the torture and returns the final check.
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.MinUp <= 0 {
		c.MinUp = 200 * time.Millisecond
	}
	if c.MaxUp <= c.MinUp {
		c.MaxUp = c.MinUp + 1200*time.Millisecond
	}
	r := rand.New(rand.NewPCG(c.Seed, c.Seed^0x5eed))
	switch c.Pipeline {
	case "":
		c.Pipeline = "copy"
	case "copy", "window":
	default:
		return Result{}, fmt.Errorf("torture: pipeline %q (allowed: %s)", c.Pipeline, strings.Join(Pipelines, ", "))
	}
	switch c.Store {
	case "", "local":
	case "azurite", "s3":
		if c.Sink == "kafka" {
			return Result{}, fmt.Errorf("torture: the kafka sink has no files to put on %s", c.Store)
		}
		var err error
		if c.Store == "azurite" {
			c.emu, err = emulator.StartAzurite(ctx, "torture", nil)
		} else {
			c.emu, err = emulator.StartS3(ctx, "torture")
		}
		if err != nil {
			return Result{}, fmt.Errorf("torture: start the %s emulator: %w", c.Store, err)
		}
		defer c.emu.Close()
	default:
		return Result{}, fmt.Errorf("torture: store %q (allowed: %s)", c.Store, strings.Join(Stores, ", "))
	}
	if c.AsyncProgress && (c.Sink != "kafka" || c.Pipeline != "copy" || c.emu != nil) {
		return Result{}, fmt.Errorf("torture: asyncProgressTrackingEnabled is tortured with the copy pipeline into kafka on the local store only (sink %s, pipeline %s, store %s)", c.Sink, c.Pipeline, c.Store)
	}
	addr, stopBroker, err := c.startBroker(ctx)
	if err != nil {
		return Result{}, err
	}
	defer stopBroker()
	running, err := c.pipeline(addr, "processingTime: 100 milliseconds")
	if err != nil {
		return Result{}, err
	}
	drain, err := c.pipeline(addr, "availableNow: true")
	if err != nil {
		return Result{}, err
	}

	// The producer writes throughout the kills, at a pace that spreads the
	// records over them.
	prod, err := c.startProducer(ctx, addr, time.Duration(c.Kills)*(c.MinUp+c.MaxUp)/2)
	if err != nil {
		return Result{}, err
	}
	defer prod.close()

	res := Result{Pipeline: c.Pipeline, AtLeastOnce: c.AsyncProgress}
	for k := 0; k < c.Kills; k++ {
		cmd := c.cmd(ctx, "run", running, "--quiet", "--ui-addr", "off", "--log-level", "error")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			return res, err
		}
		up := c.MinUp + time.Duration(r.Int64N(int64(c.MaxUp-c.MinUp)))
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			return res, fmt.Errorf("torture: the query exited before kill %d: %v\n%s", k+1, err, stderr.String())
		case <-time.After(up):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		res.Kills++
		fmt.Fprintf(c.Out, "kill %d/%d after %s (produced so far: %d)\n", k+1, c.Kills, up.Round(time.Millisecond), prod.produced.Load())
	}
	produced, err := prod.wait()
	if err != nil {
		return res, err
	}
	res.Produced = produced
	res.Batches = c.committedBatches()
	// Final run: drain everything that is there, then stop.
	var values []string
	if c.AsyncProgress {
		if values, err = c.drainRunning(ctx, addr, running, produced); err != nil {
			return res, err
		}
	} else {
		cmd := c.cmd(ctx, "run", drain, "--quiet", "--ui-addr", "off", "--log-level", "error")
		if out, err := cmd.CombinedOutput(); err != nil {
			return res, fmt.Errorf("torture: final drain: %v\n%s", err, out)
		}
		if values, err = c.readOutput(ctx, addr); err != nil {
			return res, err
		}
	}
	res.GlobRows = -1
	if c.Sink != "kafka" {
		root, _, err := c.outputRoot(ctx)
		if err != nil {
			return res, err
		}
		if res.GlobRows, err = GlobRows(ctx, root, c.Sink); err != nil {
			return res, err
		}
	}
	if c.Pipeline == "window" {
		return res, checkWindows(&res, values)
	}
	res.Output, res.Distinct, res.Lost, res.Duplicated = countCopies(values, res.Produced)
	return res, nil
}

// drainRunning is the final drain of an AsyncProgress torture: the
// running pipeline (asynchronous progress tracking refuses availableNow)
// until the output holds every produced record or a minute passes, then
// a clean stop (SIGTERM, exit 0). It returns the output.
func (c *Config) drainRunning(ctx context.Context, addr, pipeline string, produced int) ([]string, error) {
	cmd := c.cmd(ctx, "run", pipeline, "--quiet", "--ui-addr", "off", "--log-level", "error")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	var values []string
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("torture: final drain exited on its own: %v\n%s", err, stderr.String())
		case <-time.After(500 * time.Millisecond):
		}
		var err error
		if values, err = c.readOutput(ctx, addr); err != nil {
			cmd.Process.Kill()
			<-exited
			return nil, err
		}
		if _, distinct, _, _ := countCopies(values, produced); distinct >= produced || time.Now().After(deadline) {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		return nil, fmt.Errorf("torture: final drain did not stop cleanly: %v\n%s", err, stderr.String())
	}
	return c.readOutput(ctx, addr)
}

// countCopies checks the "copy" pipeline's output values against the
// produced ids id-00000000 … id-(produced−1).
func countCopies(values []string, produced int) (output, distinct, lost, duplicated int) {
	count := map[string]int{}
	for _, v := range values {
		count[v]++
	}
	for i := 0; i < produced; i++ {
		n := count[fmt.Sprintf("id-%08d", i)]
		switch {
		case n == 0:
			lost++
		case n > 1:
			duplicated += n - 1
		}
	}
	return len(values), len(count), lost, duplicated
}

// producer writes c.Records records to topic "torture" in the background.
type producer struct {
	cl       *kgo.Client
	cancel   context.CancelFunc
	produced atomic.Int64
	err      error
	done     chan struct{}
}

// startProducer starts writing c.Records records (record i has value
// id-%08d, or the window pipeline's), pacing them over spread.
func (c *Config) startProducer(ctx context.Context, addr string, spread time.Duration) (*producer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &producer{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		gap := spread / time.Duration(max(c.Records, 1))
		for i := 0; i < c.Records; i++ {
			rec := &kgo.Record{Topic: "torture", Key: []byte(fmt.Sprintf("k%d", i%97)), Value: []byte(fmt.Sprintf("id-%08d", i))}
			if c.Pipeline == "window" {
				rec.Key, rec.Value = windowRecord(i)
			}
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				p.err = err
				return
			}
			p.produced.Add(1)
			if gap > 0 && i%50 == 0 {
				select {
				case <-time.After(50 * gap):
				case <-ctx.Done():
					p.err = ctx.Err()
					return
				}
			}
		}
	}()
	return p, nil
}

// wait waits for the producer to finish and returns how many records it
// wrote.
func (p *producer) wait() (int, error) {
	<-p.done
	if p.err != nil {
		return int(p.produced.Load()), fmt.Errorf("torture: producer: %w", p.err)
	}
	return int(p.produced.Load()), nil
}

// close stops the producer and closes its client.
func (p *producer) close() {
	p.cancel()
	<-p.done
	p.cl.Close()
}

// OutputDir is where a file or Delta sink under torture writes when no
// object store is used.
func OutputDir(c Config) string { return filepath.Join(c.Dir, "out") }

// outputRoot resolves the sink's output directory.
func (c *Config) outputRoot(ctx context.Context) (storage.Store, storage.Location, error) {
	var conf map[string]string
	if c.emu != nil {
		conf = c.emu.Conf
	}
	res, err := storage.NewResolver(conf)
	if err != nil {
		return nil, storage.Location{}, err
	}
	rootLoc, err := storage.ParseLocation(c.outPath())
	if err != nil {
		return nil, rootLoc, err
	}
	root, err := res.ResolveLocation(ctx, rootLoc)
	return root, rootLoc, err
}

// GlobRows counts the rows of every data file (part-*) of sink's output
// directory root outside hidden and log directories, whether its log lists
// them or not: what a plain glob reads; -1 for the Kafka sink.
func GlobRows(ctx context.Context, root storage.Store, sink string) (int, error) {
	if sink == "kafka" {
		return -1, nil
	}
	n := 0
	var walk func(dir string) error
	walk = func(dir string) error {
		ents, err := root.List(ctx, dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name
			if dir != "" {
				name = dir + "/" + e.Name
			}
			if e.IsDir {
				if !strings.HasPrefix(e.Name, "_") && !strings.HasPrefix(e.Name, ".") {
					if err := walk(name); err != nil {
						return err
					}
				}
				continue
			}
			if !strings.HasPrefix(e.Name, "part-") {
				continue
			}
			data, err := root.Get(ctx, name)
			if err != nil {
				return fmt.Errorf("torture: read %s: %w", name, err)
			}
			if sink == "json" {
				vs, err := jsonValues(name, data)
				if err != nil {
					return err
				}
				n += len(vs)
				continue
			}
			t, err := parquetio.Read(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				return fmt.Errorf("torture: read %s: %w", name, err)
			}
			n += len(t.Rows)
		}
		return nil
	}
	return n, walk("")
}

// committedBatches is the number of batches committed so far (the highest
// commits/N + 1), or -1 when the checkpoint cannot be read.
func (c *Config) committedBatches() int64 {
	var conf map[string]string
	if c.emu != nil {
		conf = c.emu.Conf
	}
	res, err := storage.NewResolver(conf)
	if err != nil {
		return -1
	}
	cp, err := checkpoint.OpenReadOnly(c.chkPath(), checkpoint.WithResolver(res))
	if err != nil {
		return -1
	}
	defer cp.Close()
	id, ok, err := cp.LatestCommit()
	if err != nil {
		return -1
	}
	if !ok {
		return 0
	}
	return id + 1
}

// readOutput returns the value column of the sink's committed output,
// read through the store that holds it.
func (c *Config) readOutput(ctx context.Context, addr string) ([]string, error) {
	if c.Sink == "kafka" {
		return readCommitted(ctx, addr, "torture-out")
	}
	root, rootLoc, err := c.outputRoot(ctx)
	if err != nil {
		return nil, err
	}
	var files []string
	switch c.Sink {
	case "parquet", "json":
		uris, err := filesink.ReadLogURIs(root)
		if err != nil {
			return nil, err
		}
		for _, u := range uris {
			loc, err := storage.ParseLocation(u)
			if err != nil {
				return nil, err
			}
			rel, ok := rootLoc.Rel(loc)
			if !ok {
				return nil, fmt.Errorf("torture: the log lists %s, outside the output %s", u, rootLoc)
			}
			files = append(files, rel)
		}
	case "delta":
		if files, _, _, err = delta.SnapshotStore(root); err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	var values []string
	for _, f := range files {
		data, err := root.Get(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("torture: read %s: %w", f, err)
		}
		switch c.Sink {
		case "json":
			vs, err := jsonValues(f, data)
			if err != nil {
				return nil, err
			}
			values = append(values, vs...)
		default:
			t, err := parquetio.Read(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				return nil, fmt.Errorf("torture: read %s: %w", f, err)
			}
			col := -1
			for i, n := range t.Names {
				if n == "value" {
					col = i
				}
			}
			if col < 0 {
				return nil, fmt.Errorf("torture: %s has no value column (%v)", f, t.Names)
			}
			for _, row := range t.Rows {
				values = append(values, fmt.Sprint(row[col]))
			}
		}
	}
	return values, nil
}
