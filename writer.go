package sluice

import (
	"context"

	"fmt"
	"github.com/sluice-stream/sluice/batch"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/progress"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/foreachbatch"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/sink/slow"
)

// OutputModes lists the output modes Spark defines.
var OutputModes = []string{"append", "update", "complete"}

// DataStreamWriter describes the sink and trigger of a query (Spark's
// DataStreamWriter).
type DataStreamWriter struct {
	df         *DataFrame
	format     string
	outputMode string
	options    map[string]string
	trigger    Trigger
	name       string
	stdout     io.Writer
	listeners  []progress.Listener
	hooks      engineHooks
	deadLetter *sinkSpec
	// foreachBatch, when set, is the sink (format "foreachBatch").
	foreachBatch func(ctx context.Context, b *batch.Batch, batchID int64) error
}

type sinkSpec struct {
	format  string
	options map[string]string
}

// engineHooks are test-only knobs.
type engineHooks struct {
	beforeCommit func(batchID int64) error
}

// Format names the sink: "console", "noop", "memory".
func (w *DataStreamWriter) Format(format string) *DataStreamWriter {
	w.format = format
	return w
}

// Option sets a sink or query option, e.g. "checkpointLocation".
func (w *DataStreamWriter) Option(key string, value any) *DataStreamWriter {
	w.options[key] = optionString(value)
	return w
}

// Options sets several options.
func (w *DataStreamWriter) Options(opts map[string]string) *DataStreamWriter {
	for k, v := range opts {
		w.options[k] = v
	}
	return w
}

// OutputMode sets the output mode: "append" (default), "update" or "complete".
func (w *DataStreamWriter) OutputMode(mode string) *DataStreamWriter {
	w.outputMode = mode
	return w
}

// Trigger sets when batches run (default: as soon as the previous ends).
func (w *DataStreamWriter) Trigger(t Trigger) *DataStreamWriter {
	w.trigger = t
	return w
}

// QueryName names the query (progress "name").
func (w *DataStreamWriter) QueryName(name string) *DataStreamWriter {
	w.name = name
	return w
}

// DeadLetter routes rows the transform cannot process — e.g. a failed cast
// under spark.sql.ansi.enabled=true — to a second sink (a Kafka topic with
// format "kafka", or files with "json"), with the reason and the row's source
// coordinates, instead of failing the query. They are counted in progress.
func (w *DataStreamWriter) DeadLetter(format string, opts map[string]string) *DataStreamWriter {
	o := make(map[string]string, len(opts))
	for k, v := range opts {
		o[k] = v
	}
	w.deadLetter = &sinkSpec{format: format, options: o}
	return w
}

// ForeachBatch makes fn the sink: it is called once per committed batch
// with the batch's rows (all tasks' output, in task order) and the batch id.
// Like Spark's, it is at-least-once: a batch re-run after a crash calls fn
// again with the same id and rows, so fn should be idempotent per batch id
// (e.g. record the last id it applied).
func (w *DataStreamWriter) ForeachBatch(fn func(ctx context.Context, b *batch.Batch, batchID int64) error) *DataStreamWriter {
	w.foreachBatch = fn
	w.format = "foreachBatch"
	return w
}

// Stdout redirects what the console sink prints (default os.Stdout).
func (w *DataStreamWriter) Stdout(out io.Writer) *DataStreamWriter {
	w.stdout = out
	return w
}

// AddListener registers a progress listener for this query (Spark's
// StreamingQueryListener). Started is delivered synchronously before Start
// returns; the other events asynchronously, in order.
func (w *DataStreamWriter) AddListener(l progress.Listener) *DataStreamWriter {
	w.listeners = append(w.listeners, l)
	return w
}

// Start validates everything, connects the source and starts the query. It
// returns once the query runs; errors in options, expressions or the
// checkpoint are returned here, before any data is read.
func (w *DataStreamWriter) Start(ctx context.Context) (*StreamingQuery, error) {
	s := w.df.session
	if w.trigger.err != nil {
		return nil, w.trigger.err
	}
	mode := strings.ToLower(w.outputMode)
	if !containsFold(OutputModes, mode) {
		return nil, &options.Error{Option: "outputMode", Value: w.outputMode, Allowed: "allowed: " + strings.Join(OutputModes, ", ")}
	}
	if err := validateOutputMode(mode, w.format, false); err != nil {
		return nil, err
	}
	inSchema, err := sourceSchema(w.df.source)
	if err != nil {
		return nil, err
	}
	tr, err := compileTransform(w.df.ops, inSchema)
	if err != nil {
		return nil, err
	}
	// Check every sink option before anything is created.
	if w.foreachBatch == nil {
		if _, err := newSink(w.format, w.options, sinkEnv{validateOnly: true}); err != nil {
			return nil, err
		}
	}
	if w.deadLetter != nil {
		if _, err := newSink(w.deadLetter.format, w.deadLetter.options, sinkEnv{validateOnly: true}); err != nil {
			return nil, fmt.Errorf("dead-letter sink: %w", err)
		}
	}
	opts := options.New(w.options)
	chk := opts.String("checkpointLocation", s.conf["spark.sql.streaming.checkpointLocation"])
	var tempChk string
	if chk == "" {
		if sinkNeedsCheckpoint(w.format) {
			return nil, &options.Error{Option: "checkpointLocation", Allowed: fmt.Sprintf("required for the %s sink: a directory for offsets and commits", w.format)}
		}
		if tempChk, err = os.MkdirTemp("", "sluice-chk-"); err != nil {
			return nil, fmt.Errorf("create temporary checkpoint: %w", err)
		}
		chk = tempChk
		s.logger.Warn("no checkpointLocation given; using a temporary checkpoint that is deleted when the query stops", "dir", chk)
	}
	queryID, err := checkpoint.QueryID(chk)
	if err != nil {
		return nil, err
	}
	env := sinkEnv{stdout: w.stdout, queryID: queryID, log: s.logger}
	ansi := strings.EqualFold(s.conf["spark.sql.ansi.enabled"], "true")
	var dlSink sink.Sink
	if w.deadLetter != nil {
		// The dead-letter sink keys its own idempotence (Delta txn, Kafka
		// transactional id and commit markers) apart from the main sink's.
		dlEnv := env
		dlEnv.queryID = queryID + "-deadletter"
		if dlSink, err = newSink(w.deadLetter.format, w.deadLetter.options, dlEnv); err != nil {
			return nil, fmt.Errorf("dead-letter sink: %w", err)
		}
		if strings.EqualFold(w.deadLetter.format, "kafka") {
			dlSink = kafkaDeadLetters{dlSink}
		}
	}
	if tr != nil {
		tr.ansi = ansi
		tr.routeErrors = dlSink != nil
	}
	var sk sink.Sink
	if w.foreachBatch != nil {
		sk = foreachbatch.New(foreachbatch.Func(w.foreachBatch))
	} else if sk, err = newSink(w.format, w.options, env); err != nil {
		return nil, err
	}
	sk0 := sk
	workers, err := opts.Int64("sluice.workers", 0, 0)
	if err != nil {
		return nil, err
	}
	if workers == 0 {
		if v, ok := s.conf["sluice.workers"]; ok {
			if workers, err = strconv.ParseInt(v, 10, 64); err != nil || workers < 0 {
				return nil, &options.Error{Option: "sluice.workers", Value: v, Allowed: "allowed: a non-negative integer (0 = number of CPUs)"}
			}
		}
	}
	name := w.name
	if name == "" {
		name = opts.String("queryName", "")
	}
	if sl, ok := sk.(*slow.Sink); ok {
		sk0 = sl.Inner()
	}
	if m, ok := sk0.(*memory.Sink); ok {
		if name == "" {
			return nil, fmt.Errorf("the memory sink needs a query name (QueryName) to register its table under")
		}
		s.registerTable(name, m)
	}
	if m, ok := dlSink.(*memory.Sink); ok && name != "" {
		s.registerTable(name+".deadLetter", m)
	}
	_, limits, err := splitAdmission(w.df.source.options)
	if err != nil {
		return nil, err
	}
	budgetConf := opts.String("sluice.memory.budget", s.conf["sluice.memory.budget"])
	if budgetConf != "" {
		b, err := options.ParseBytes(budgetConf)
		if err != nil || b <= 0 {
			return nil, &options.Error{Option: "sluice.memory.budget", Value: budgetConf, Allowed: `allowed: a size such as "256MiB", "512m", "1GB" or a number of bytes`}
		}
		limits.MemoryBudget = b
		applyMemoryLimit(b, s.logger)
	}
	src, err := newSource(w.df.source, chk, s.logger)
	if err != nil {
		return nil, err
	}
	var monOpts []monitor.Option
	if s.metErr != nil {
		s.logger.Warn("metrics disabled", "err", s.metErr)
	} else {
		monOpts = append(monOpts, monitor.WithMetrics(s.metrics))
	}
	mon := monitor.New(monOpts...)
	for _, l := range w.listeners {
		mon.Subscribe(l)
	}
	conf := map[string]string{"spark.sql.shuffle.partitions": "200"}
	for k, v := range s.conf {
		if strings.HasPrefix(k, "spark.sql.") {
			conf[k] = v
		}
	}
	cfg := engine.Config{
		Name:          name,
		Source:        src,
		Sink:          sk,
		DeadLetter:    dlSink,
		Trigger:       w.trigger.t,
		CheckpointDir: chk,
		Workers:       int(workers),
		Conf:          conf,
		Logger:        s.logger,
		Observers:     []engine.Observer{mon},
		BeforeCommit:  w.hooks.beforeCommit,
		Limits:        limits,
		LagSeconds:    mon.LagSeconds,
		// Projection pruning: build only the source columns the query reads.
		RequiredColumns: requiredColumns(w.df.ops),
	}
	if tr != nil {
		cfg.Transform = tr
	}
	q, err := engine.Start(ctx, cfg)
	if err != nil {
		src.Close()
		if tempChk != "" {
			os.RemoveAll(tempChk)
		}
		return nil, err
	}
	sq := &StreamingQuery{q: q, mon: mon, tempCheckpoint: tempChk, done: make(chan struct{})}
	go sq.finish()
	return sq, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// BudgetOverhead is the memory sluice allows itself above the memory budget
// for the runtime, the Kafka client and bookkeeping; measured in
// docs/backpressure.md.
const BudgetOverhead = 64 << 20

// applyMemoryLimit sets the Go runtime's soft memory limit to the budget
// plus BudgetOverhead, so the garbage collector keeps the heap there
// instead of letting it grow to twice the live data; a GOMEMLIMIT set by the
// user wins.
func applyMemoryLimit(budget int64, log interface{ Info(string, ...any) }) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := budget + BudgetOverhead
	if cur := debug.SetMemoryLimit(-1); cur < limit && cur != math.MaxInt64 {
		limit = cur // another query asked for less; keep the smaller one
	}
	debug.SetMemoryLimit(limit)
	log.Info("memory budget set", "budget_bytes", budget, "go_memory_limit_bytes", limit)
}
