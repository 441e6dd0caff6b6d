package sluice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/plan"
	"github.com/sluice-stream/sluice/internal/procstat"
	"github.com/sluice-stream/sluice/internal/registry"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/internal/storage"
)

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
	listeners  []Listener
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
	beforeCommit      func(batchID int64) error
	beforeOffsetsLog  func(batchID int64) error
	beforeStateCommit func(batchID int64) error
}

// Format names the sink: "console" (the default), "noop", "memory",
// "parquet", "json", "csv", "delta" or "kafka" (SinkFormats lists them;
// docs/reference.md describes their options). ForeachBatch sets
// "foreachBatch".
func (w *DataStreamWriter) Format(format string) *DataStreamWriter {
	w.format = format
	return w
}

// Option sets a sink option, or a query option such as
// "checkpointLocation", "queryName", "sluice.workers" or
// "sluice.memory.budget"; numbers and booleans are rendered as text.
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
// (e.g. record the last id it applied). The batch is columnar (package
// batch: nested columns have children, see batch.Column); b.Row(i) and
// Column.Value give Go values, a struct cell as a batch.StructValue, an
// array as a []any, a map as a batch.MapValue.
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
// returns; the other events asynchronously, in order, without ever
// blocking the query (a listener that falls behind loses events, counted).
func (w *DataStreamWriter) AddListener(l Listener) *DataStreamWriter {
	w.listeners = append(w.listeners, l)
	return w
}

// part names the piece of a query a problem is in, so a pipeline file can
// point at its line.
type part int

const (
	partTrigger part = iota
	partOutputMode
	partSource
	partTransform
	partSink
	partDeadLetter
	partConf
)

// problem is one thing wrong with a query, found before anything is
// created.
type problem struct {
	part part
	// step is the transform step (partTransform).
	step int
	// option is the option at fault, "" for the part as a whole.
	option string
	// format: the problem is the format name itself.
	format bool
	// err is the error as Start returns it.
	err error
}

// checked is a checked query, ready to be created.
type checked struct {
	source     source.Format
	sourceVals options.Values
	// query is the analysed plan (nil when the source or the plan has a
	// problem).
	query      *plan.Query
	sink       sink.Format
	sinkVals   options.Values
	deadLetter *sink.Format
	dlVals     options.Values
	limits     admission.Limits
	workers    int
	name       string
	checkpoint string
}

// endpointProblems turns an endpoint's option errors into problems.
func endpointProblems(pt part, errs []error, wrap func(error) error) []problem {
	out := make([]problem, 0, len(errs))
	for _, err := range errs {
		out = append(out, problem{part: pt, option: options.OptionOf(err), err: wrap(err)})
	}
	return out
}

func same(err error) error { return err }

// check validates the whole query — trigger, output mode, source options
// and schema, expressions, sink and dead-letter options, query options —
// without connecting or creating anything, and returns every problem it
// finds (problems in later parts that depend on a failed one are not
// looked for). It is the one validation behind Start, Session.Pipeline and
// `sluice lint`; Start returns the first problem.
func (w *DataStreamWriter) check() (*checked, []problem) {
	s := w.df.session
	p := &checked{}
	var probs []problem
	add := func(pt part, option string, err error) {
		probs = append(probs, problem{part: pt, option: option, err: err})
	}
	if w.trigger.err != nil {
		add(partTrigger, "", w.trigger.err)
	}
	mode := strings.ToLower(w.outputMode)
	modeOK := containsFold(OutputModes(), mode)
	if !modeOK {
		add(partOutputMode, "", validateOutputMode(w.outputMode, w.format, false))
	}
	ansi := strings.EqualFold(s.conf["spark.sql.ansi.enabled"], "true")

	// Source: format, options, schema; then the plan on its schema.
	src := w.df.plan.Source()
	modeChecked := false
	if f, err := registry.Source(src.Format); err != nil {
		probs = append(probs, problem{part: partSource, format: true, err: err})
	} else if errs := registry.SourceProblems(f, src.Options); len(errs) > 0 {
		probs = append(probs, endpointProblems(partSource, errs, same)...)
	} else {
		p.source, p.sourceVals = f, f.Options.Values(src.Options, registry.AdmissionOptions)
		res, _ := s.storageResolver() // a bad storage setting is reported below
		if in, err := f.Schema(p.sourceVals, source.Env{Storage: res, Logger: slog.New(w.scrubber().Handler(s.logger.Handler())), Conf: maps.Clone(s.conf)}); err != nil {
			add(partSource, options.OptionOf(err), err)
		} else if modeOK {
			q, err := plan.Analyze(w.df.plan, in, plan.Options{OutputMode: mode, ANSI: ansi})
			var pe *plan.Error
			var me *plan.ModeError
			switch {
			case errors.As(err, &pe):
				probs = append(probs, problem{part: partTransform, step: pe.Step, err: err})
			case errors.As(err, &me):
				add(partOutputMode, "", err)
				modeChecked = true
			case err != nil:
				add(partTransform, "", err)
			default:
				p.query = q
			}
		}
		adm := registry.ReadAdmission(p.sourceVals)
		p.limits.Mode, p.limits.TargetBatchDuration, p.limits.MaxLagSeconds = adm.Mode, adm.TargetBatchDuration, adm.MaxLagSeconds
	}

	// The output mode against the sink (and, when the plan analysed,
	// against its aggregation).
	if modeOK && !modeChecked {
		agg := w.df.plan.HasAggregate()
		if err := validateOutputMode(mode, w.format, agg); err != nil {
			add(partOutputMode, "", err)
		}
	}

	// Sink and dead-letter sink.
	sinkOK := false
	if f, err := registry.Sink(w.format); err != nil {
		probs = append(probs, problem{part: partSink, format: true, err: err})
	} else if errs := registry.SinkProblems(f, w.options); len(errs) > 0 {
		probs = append(probs, endpointProblems(partSink, errs, same)...)
	} else {
		p.sink, p.sinkVals = f, f.Options.Values(w.options, registry.QueryOptions)
		switch {
		case f.APIOnly && w.foreachBatch == nil:
			probs = append(probs, problem{part: partSink, format: true,
				err: fmt.Errorf("the %s sink is only available from the Go API (DataStreamWriter.ForeachBatch)", f.Name)})
		default:
			if err := f.Validate(p.sinkVals); err != nil {
				add(partSink, options.OptionOf(err), err)
			} else {
				sinkOK = true
			}
		}
	}
	if w.deadLetter != nil {
		dlErr := func(err error) error { return fmt.Errorf("dead-letter sink: %w", err) }
		if f, err := registry.Sink(w.deadLetter.format); err != nil {
			probs = append(probs, problem{part: partDeadLetter, format: true, err: dlErr(err)})
		} else if errs := registry.SinkProblems(f, w.deadLetter.options); len(errs) > 0 {
			probs = append(probs, endpointProblems(partDeadLetter, errs, dlErr)...)
		} else if f.APIOnly {
			probs = append(probs, problem{part: partDeadLetter, format: true, err: dlErr(fmt.Errorf("the %s sink cannot receive dead letters", f.Name))})
		} else {
			v := f.Options.Values(w.deadLetter.options, registry.QueryOptions)
			if err := f.Validate(v); err != nil {
				add(partDeadLetter, options.OptionOf(err), dlErr(err))
			} else {
				p.deadLetter, p.dlVals = &f, v
			}
		}
	}

	// Group mode: what it does not support yet.
	dlFormat := ""
	if w.deadLetter != nil {
		dlFormat = w.deadLetter.format
	}
	probs = append(probs, groupProblems(p, w.format, dlFormat)...)
	probs = append(probs, asyncProgressProblems(p, w.trigger.t, w.format, dlFormat)...)

	// Session configuration: values of the known settings must fit (the
	// Go API accepts any key; pipeline files check keys too).
	conf := registry.SessionConf.Values(s.conf)
	confErr := map[string]error{}
	for _, err := range registry.SessionConf.Problems(s.conf) {
		var ue *options.UnknownError
		if !errors.As(err, &ue) {
			confErr[strings.ToLower(options.OptionOf(err))] = err
			add(partConf, options.OptionOf(err), err)
		}
	}
	if _, err := s.storageResolver(); err != nil && confErr[strings.ToLower(options.OptionOf(err))] == nil {
		add(partConf, options.OptionOf(err), err)
	}

	// Query options: checkpoint, name, workers, memory budget.
	if sinkOK {
		p.checkpoint = p.sinkVals.String("checkpointLocation")
		if p.checkpoint == "" {
			p.checkpoint = s.conf["spark.sql.streaming.checkpointLocation"]
		}
		if p.checkpoint == "" && p.sink.NeedsCheckpoint {
			add(partSink, "checkpointLocation", &options.Error{Option: "checkpointLocation", Allowed: fmt.Sprintf("required for the %s sink: a directory for offsets and commits", w.format),
				Spark: `checkpointLocation must be specified either through option("checkpointLocation", ...) or SparkSession.conf.set("spark.sql.streaming.checkpointLocation", ...)`})
		}
		p.name = w.name
		if p.name == "" {
			p.name = p.sinkVals.String("queryName")
		}
		if p.sink.PublishesTable && p.name == "" {
			add(partSink, "", fmt.Errorf("the %s sink needs a query name (QueryName) to register its table under", p.sink.Name))
		}
		p.workers = int(p.sinkVals.Int64("sluice.workers"))
		if p.workers == 0 && confErr["sluice.workers"] == nil { // 0: the session's, else the CPUs
			p.workers = int(conf.Int64("sluice.workers"))
		}
		budget, budgetPart, budgetText := p.sinkVals.Size("sluice.memory.budget"), partSink, p.sinkVals.String("sluice.memory.budget")
		if !p.sinkVals.Has("sluice.memory.budget") {
			budget, budgetPart, budgetText = conf.Size("sluice.memory.budget"), partConf, conf.String("sluice.memory.budget")
			if confErr["sluice.memory.budget"] != nil {
				budgetText = ""
			}
		}
		switch {
		case strings.EqualFold(strings.TrimSpace(budgetText), budgetUnlimited):
			p.limits.MemoryBudgetOrigin = budgetUnlimited
		case budgetText != "" && budget <= 0:
			add(budgetPart, "sluice.memory.budget", &options.Error{Option: "sluice.memory.budget", Value: budgetText, Allowed: `allowed: a size such as "256MiB", "512m", "1GB", a number of bytes, or "unlimited"`})
		case budgetText != "":
			p.limits.MemoryBudget, p.limits.MemoryBudgetOrigin = budget, "sluice.memory.budget"
		}
	}
	// A secret may have been given as the value of another option too:
	// no problem shows one.
	sc := w.scrubber()
	for i := range probs {
		probs[i].err = sc.Err(probs[i].err)
	}
	return p, probs
}

// Start validates everything, connects the source and starts the query. It
// returns once the query runs; errors in options, expressions or the
// checkpoint are returned here, before any data is read.
//
// Every error Start returns, every error the query fails with and every
// line it logs are scrubbed of the secrets it was given (see scrubber),
// whichever option a secret appears in.
func (w *DataStreamWriter) Start(ctx context.Context) (_ *StreamingQuery, err error) {
	s := w.df.session
	sc := w.scrubber()
	defer func() { err = sc.Err(err) }()
	log := slog.New(sc.Handler(s.logger.Handler()))
	p, probs := w.check()
	if len(probs) > 0 {
		return nil, probs[0].err
	}
	chk := p.checkpoint
	var tempChk string
	if chk == "" {
		if tempChk, err = os.MkdirTemp("", "sluice-chk-"); err != nil {
			return nil, fmt.Errorf("create temporary checkpoint: %w", err)
		}
		chk = tempChk
		log.Warn("no checkpointLocation given; using a temporary checkpoint that is deleted when the query stops", "dir", chk)
	}
	res, err := s.storageResolver()
	if err != nil {
		return nil, err
	}
	group, member := groupOf(p.source.Name, p.sourceVals)
	if group != "" {
		chk = memberCheckpoint(chk, member)
		log.Info("group mode: this process is one member of the query", "group", group, "member", member, "checkpoint", chk)

	}
	cp, err := checkpoint.Open(chk, checkpoint.WithResolver(res))
	if err != nil {
		return nil, res.Scrub(err)
	}
	// resumed: the checkpoint holds batches of an earlier run (sinks that
	// remember their writer tell a resuming query from a new one).
	queryID, chkStore := cp.ID(), cp.Store()
	_, resumed, err := cp.LatestOffsets()
	if cerr := cp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	srcState, err := storage.Sub(chkStore, "sources/0")
	if err != nil {
		return nil, err
	}
	stdout := w.stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	env := sink.Env{Stdout: stdout, QueryID: queryID, Resumed: resumed, Logger: log, TableName: p.name, RegisterTable: s.registerTable, ForeachBatch: w.foreachBatch, Storage: res, Group: group, Member: member}
	var dlSink sink.Sink
	if p.deadLetter != nil {
		// The dead-letter sink keys its own idempotence (Delta txn, Kafka
		// transactional id and commit markers) apart from the main sink's.
		dlEnv := env
		dlEnv.QueryID = queryID + "-deadletter"
		dlEnv.DeadLetter = true
		dlEnv.TableName, dlEnv.RegisterTable = "", nil
		if p.name != "" {
			dlEnv.TableName, dlEnv.RegisterTable = p.name+".deadLetter", s.registerTable
		}
		if dlSink, err = registry.OpenSink(*p.deadLetter, p.dlVals, dlEnv); err != nil {
			return nil, res.Scrub(fmt.Errorf("dead-letter sink: %w", err))
		}
	}
	q := p.query
	if q.Stage1 != nil {
		q.Stage1.ANSI = strings.EqualFold(s.conf["spark.sql.ansi.enabled"], "true")
		q.Stage1.RouteErrors = dlSink != nil
	}
	sk, err := registry.OpenSink(p.sink, p.sinkVals, env)
	if err != nil {
		return nil, res.Scrub(err)
	}
	limits := resolveBudget(p.limits, log)
	if limits.MemoryBudget > 0 && strings.EqualFold(s.conf["sluice.memory.goLimit"], "true") {
		applyMemoryLimit(limits.MemoryBudget, !strings.EqualFold(s.conf["sluice.memory.hugePages"], "false"), log)
	}
	src, err := p.source.Open(p.sourceVals, source.Env{State: srcState, Storage: res, Logger: log, Conf: maps.Clone(s.conf)})
	if err != nil {
		return nil, res.Scrub(err)
	}
	wired, err := wireGroup(src, sk, dlSink)
	if err != nil {
		src.Close()
		sk.Close()
		if dlSink != nil {
			dlSink.Close()
		}
		return nil, res.Scrub(err)
	}
	dlSink = wired
	var monOpts []monitor.Option
	if met, err := s.queryMetrics(member); err != nil {
		log.Warn("metrics disabled", "err", err)
	} else {
		monOpts = append(monOpts, monitor.WithMetrics(met))
	}
	mon := monitor.New(monOpts...)
	for _, l := range w.listeners {
		mon.Subscribe(l)
	}
	// The session's Spark settings are recorded in offsets/N; the engine
	// pins spark.sql.shuffle.partitions and the state settings there, and
	// on restart the checkpoint's values win.
	conf := map[string]string{}
	for k, v := range s.conf {
		if strings.HasPrefix(k, "spark.sql.") || strings.HasPrefix(k, "sluice.state.") || strings.HasPrefix(k, "sluice.shuffle.") {
			conf[k] = v
		}
	}
	sessionConf := registry.SessionConf.Values(s.conf)
	cfg := engine.Config{
		MinBatchesToRetain:     int(sessionConf.Int64("spark.sql.streaming.minBatchesToRetain")),
		NoDataProgressInterval: sessionConf.Duration("spark.sql.streaming.noDataProgressEventInterval"),
		Name:                   p.name,
		Source:                 src,
		Sink:                   sk,
		DeadLetter:             dlSink,
		Trigger:                w.trigger.t,
		CheckpointDir:          chk,
		Storage:                res,
		Workers:                p.workers,
		Conf:                   conf,
		Logger:                 log,
		Observers:              []engine.Observer{mon},
		BeforeCommit:           w.hooks.beforeCommit,
		BeforeOffsetsLog:       w.hooks.beforeOffsetsLog,
		BeforeStateCommit:      w.hooks.beforeStateCommit,
		Limits:                 limits,
		LagSeconds:             mon.LagSeconds,
		// Projection pruning: build only the source columns the query reads.
		RequiredColumns: q.RequiredColumns,
	}
	if q.Stage1 != nil {
		cfg.Transform = q.Stage1
	}
	if q.Stateful != nil {
		cfg.Stateful = q.Stateful
	}
	if q.Watermarks != nil {
		cfg.Watermarks = q.Watermarks
	}
	cfg.AsyncProgress = asyncProgress(p)
	eq, err := engine.Start(ctx, cfg)
	if err != nil {
		src.Close()
		if tempChk != "" {
			os.RemoveAll(tempChk)
		}
		return nil, res.Scrub(err)
	}
	sq := &StreamingQuery{q: eq, mon: mon, trigger: w.trigger, tempCheckpoint: tempChk, done: make(chan struct{}), scrub: sc}
	go sq.finish()
	return sq, nil
}

// budgetUnlimited is the value of sluice.memory.budget that opts out of
// a budget.
const budgetUnlimited = "unlimited"

// resolveBudget gives a query without sluice.memory.budget the default
// budget derived from the process's memory limit (admission.DefaultBudget
// of procstat.MemoryLimit), and logs the budget in force and where it
// comes from; "unlimited" gets a warning instead.
func resolveBudget(l admission.Limits, log *slog.Logger) admission.Limits {
	switch {
	case l.MemoryBudgetOrigin == budgetUnlimited:
		log.Warn("sluice.memory.budget is unlimited: batches, fetch buffers and sink buffers grow with the backlog, and a large backlog can exhaust the process's memory; set a size, or leave the option unset for a budget derived from the memory limit")
		return l
	case l.MemoryBudget > 0:
		log.Info("memory budget", "budget", options.FormatSize(l.MemoryBudget), "budget_bytes", l.MemoryBudget, "origin", l.MemoryBudgetOrigin)
		return l
	}
	lim, err := procstat.MemoryLimit()
	if err != nil {
		l.MemoryBudget = admission.DefaultBudget(0)
		l.MemoryBudgetOrigin = fmt.Sprintf("default %s (the memory limit is unknown: %v)", options.FormatSize(l.MemoryBudget), err)
	} else {
		l.MemoryBudget = admission.DefaultBudget(lim.Bytes)
		l.MemoryBudgetOrigin = fmt.Sprintf("derived: a quarter of %s (%s), at most %s",
			options.FormatSize(lim.Bytes), lim.Source, options.FormatSize(admission.DefaultBudgetCap))
	}
	log.Info("memory budget", "budget", options.FormatSize(l.MemoryBudget), "budget_bytes", l.MemoryBudget, "origin", l.MemoryBudgetOrigin)
	return l
}

// BudgetOverhead is the memory sluice allows itself above the memory budget
// for the executable's resident pages, the runtime and the collector's
// headroom, the Kafka client and bookkeeping; measured in
// docs/backpressure.md.
const BudgetOverhead = 64 << 20

// applyMemoryLimit sets the Go runtime's soft memory limit (goMemoryLimit)
// so that the process's resident set stays near the budget plus
// goLimitAim, well within the budget plus BudgetOverhead: the garbage
// collector keeps the heap near the live data instead of letting it grow
// to twice that. A GOMEMLIMIT set by the user wins. It runs only when the
// session asks for it (sluice.memory.goLimit, WithGoMemoryLimit), because
// the limit is process-wide.
//
// With hugePages (sluice.memory.hugePages) the heap's first limit bytes are
// prepared for transparent huge pages (procstat.PrepareHeapHugePages)
// before the limit is set.
func applyMemoryLimit(budget int64, hugePages bool, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	// Measured when the query starts: the packages have initialised by
	// then, and `sluice run` has released the executable's start-up pages
	// (procstat.ReleaseStartupPages), so this is what the query itself
	// keeps mapped; goLimitMargin covers what it maps later.
	outside, err := procstat.FileResident(os.Getpid())
	if err != nil {
		outside = 0 // not Linux: the runtime's memory is all we know
	}
	limit, floored := goMemoryLimit(budget, outside)
	if cur := debug.SetMemoryLimit(-1); cur < limit && cur != math.MaxInt64 {
		limit = cur // another query asked for less; keep the smaller one
	}
	if hugePages {
		// Before the limit: the allocation that grows the heap to it is
		// freed and returned at once, but would count against it meanwhile.
		if n, err := procstat.PrepareHeapHugePages(limit); err != nil {
			log.Debug("heap not prepared for huge pages", "err", err)
		} else if n > 0 {
			log.Debug("heap prepared for transparent huge pages", "bytes", n)
		}
	}
	debug.SetMemoryLimit(limit)
	// floored is logged, not warned about: with the default budget's cap
	// (128 MiB) and this binary it is the normal case.
	log.Info("Go memory limit set from the memory budget", "budget_bytes", budget,
		"go_memory_limit_bytes", limit, "file_resident_bytes", outside, "floored", floored)
}

// goLimitAim is where the Go memory limit aims the resident set, above the
// budget: 40 MiB, 24 MiB inside BudgetOverhead, so that what the limit
// does not hold — the soft limit overshooting while the collector catches
// up, memory outside the runtime, executable pages mapped late — stays
// within the promise.
const goLimitAim = 40 << 20

// goLimitMargin is left free under the budget plus goLimitAim for pages of
// the executable first touched after the query started (6–10 MiB measured
// for `sluice run` after it released its start-up pages: a page used again
// is mapped back with its whole page-cache folio) and for memory outside
// the Go runtime (thread stacks of C code, the kernel's per-process
// structures).
const goLimitMargin = 12 << 20

// goMemoryLimit returns the Go runtime's soft memory limit for a memory
// budget when the process already holds outside bytes of file-backed
// resident memory (its executable's mapped code and data, which the
// runtime does not count): the budget plus goLimitAim minus outside and
// goLimitMargin, so that the resident set, not only the Go heap, stays
// near the budget plus goLimitAim. It is never below the budget plus an
// eighth of it (at least 12 MiB) — the live data may fill the budget, and
// with less room than that the collector would run almost without pause
// (a 64 MiB budget drained at full speed under limits of 80, 76 and
// 72 MiB collected 20, 19–21 and 25–27 times, process CPU within its
// noise); floored reports that the floor won and that the resident set
// may then exceed the budget plus BudgetOverhead.
func goMemoryLimit(budget, outside int64) (limit int64, floored bool) {
	limit = budget + goLimitAim - outside - goLimitMargin
	if floor := budget + max(budget/8, 12<<20); limit < floor {
		return floor, floor+outside > budget+BudgetOverhead
	}
	return limit, false
}

// Explain returns the query's logical plan and the physical plan it runs:
// the stateless stage inside the source tasks, and for a stateful query
// the exchange into spark.sql.shuffle.partitions partitions and the
// stateful stage per shuffle partition. Problems Start would report are
// returned instead.
func (w *DataStreamWriter) Explain() (string, error) {
	p, probs := w.check()
	if len(probs) > 0 {
		return "", probs[0].err
	}
	s := w.df.session
	o := plan.ExplainOptions{Sink: w.format, Partitions: engine.DefaultShufflePartition, ShuffleBuffer: engine.DefaultShuffleBuffer}
	if v, ok := s.conf[engine.ConfShufflePartitions]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			o.Partitions = n
		}
	}
	if v, ok := s.conf[engine.ConfStateProvider]; ok {
		if k, err := state.ParseProvider(v); err == nil {
			o.StateProvider = string(k)
		}
	}
	if b := p.limits.MemoryBudget; b > 0 {
		o.ShuffleBuffer = min(o.ShuffleBuffer, engine.ShuffleShare(b))
	}
	return p.query.Explain(o), nil
}
