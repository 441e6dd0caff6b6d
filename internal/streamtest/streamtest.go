// Package streamtest runs stateful-streaming scripts: small text files
// that say what goes into a query batch by batch and what must come out —
// rows, watermarks, state-store counts, event-time figures — in the spirit
// of Spark's StreamTest (AddData, CheckAnswer, StopStream, StartStream) and
// of Prometheus' promql test files. One file is one case; testdata/ holds
// Spark's own stateful cases replayed this way.
//
// A script has a header, then commands:
//
//	# a comment
//	input value INT                      the stream's schema (SQL DDL)
//	conf spark.sql.shuffle.partitions 5  a session setting (also a command: applies at the next start)
//	mode update                          output mode (default append)
//	step {groupBy: [value], agg: ["count(*)"]}   a pipeline-file transform step (YAML flow style);
//	                                     as commands, step lines replace the query at the next start
//
//	add 3, 2                             one block of rows (one value each), or (a, 1), (b, 2)
//	run                                  process everything available (starting the query if needed)
//	run once                             start with Trigger.Once (or availableNow), wait until it stops
//	restart                              stop the query; the next run starts it from its checkpoint
//	crash [N]                            the next batch (or batch N) fails after the sink and state
//	                                     committed, before commits/N (the query stops; the next run
//	                                     re-runs that batch)
//	expect error <text>                  the last run failed with an error containing text
//	batch 1 [nodata] [watermark=MS] [next=MS] [input=N]   the next batch the last run executed
//	  output (3, 2), (2, 1)              its rows, in any order ("output" alone: none)
//	  state total=2 updated=2 removed=0 dropped=0 [partitions=N] [instances=N] [name=stateStoreSave]
//	  custom numDroppedDuplicateRows=1   a state operator custom metric
//	  eventTime min=MS max=MS avg=MS     progress eventTime (or "eventTime none")
//	  pinned KEY=VALUE                   offsets/N records the conf KEY=VALUE
//
// Every batch a run executes must be listed, in order. For each batch the
// runner also checks offsets/N's batchWatermarkMs and commits/N's
// nextBatchWatermarkMs against what the batch reported. Values in rows are
// numbers, true/false, null, 'quoted' or bare strings; a timestamp input
// column takes seconds since the epoch.
package streamtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/ddl"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/pipeline"
	"github.com/sluice-stream/sluice/internal/plan"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/source/memstream"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/internal/trigger/triggertest"
)

// Script is a parsed script.
type Script struct {
	Name   string
	Input  batch.Schema
	Conf   map[string]string
	Mode   string
	Steps  []string
	Cmds   []Cmd
	header int // lines of the header
}

// Cmd is one command with its line.
type Cmd struct {
	Line int
	Verb string // add, run, restart, expect, batch, conf
	Args string
	// Body holds a batch's indented expectation lines.
	Body []BodyLine
}

// BodyLine is one indented line of a batch block.
type BodyLine struct {
	Line int
	Text string
}

// Parse reads a script.
func Parse(name string, data []byte) (*Script, error) {
	s := &Script{Name: name, Conf: map[string]string{}, Mode: "append"}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	line := 0
	inHeader := true
	for sc.Scan() {
		line++
		raw := sc.Text()
		text := strings.TrimSpace(raw)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		indented := raw[0] == ' ' || raw[0] == '\t'
		verb, args, _ := strings.Cut(text, " ")
		args = strings.TrimSpace(args)
		errf := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, a...))
		}
		if indented {
			if len(s.Cmds) == 0 || s.Cmds[len(s.Cmds)-1].Verb != "batch" {
				return nil, errf("indented line outside a batch block")
			}
			c := &s.Cmds[len(s.Cmds)-1]
			c.Body = append(c.Body, BodyLine{Line: line, Text: text})
			continue
		}
		switch verb {
		case "step":
			if inHeader {
				s.Steps = append(s.Steps, args)
			} else {
				s.Cmds = append(s.Cmds, Cmd{Line: line, Verb: verb, Args: args})
			}
		case "input", "mode":
			if !inHeader {
				return nil, errf("%s belongs in the header, before the first command", verb)
			}
			switch verb {
			case "input":
				schema, err := ddl.Parse(args)
				if err != nil {
					return nil, errf("input: %v", err)
				}
				s.Input = schema
			case "mode":
				s.Mode = strings.ToLower(args)
			}
		case "conf":
			k, v, ok := strings.Cut(args, " ")
			if !ok {
				return nil, errf("conf KEY VALUE")
			}
			if inHeader {
				s.Conf[k] = strings.TrimSpace(v)
			} else {
				s.Cmds = append(s.Cmds, Cmd{Line: line, Verb: verb, Args: args})
			}
		case "add", "run", "restart", "expect", "batch", "crash":
			inHeader = false
			s.Cmds = append(s.Cmds, Cmd{Line: line, Verb: verb, Args: args})
		default:
			return nil, errf("unknown command %q", verb)
		}
	}
	if len(s.Input.Fields) == 0 {
		return nil, fmt.Errorf("%s: no input schema (input COL TYPE, …)", name)
	}
	return s, sc.Err()
}

// ParseFile reads a script file.
func ParseFile(path string) (*Script, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(filepath.Base(path), data)
}

// T is the part of testing.TB the runner uses.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Runner runs one script.
type Runner struct {
	t   T
	s   *Script
	dir string // checkpoint
	src *memstream.Source
	snk *memorySink
	rec *recorder

	conf    map[string]string
	q       *engine.Query
	clock   *triggertest.Clock
	idle    chan struct{}
	resume  chan struct{}
	lastErr error
	seen    int // batches checked so far (of this run's recorder)
	crash   atomic.Bool
	crashAt atomic.Int64
	steps   []string
}

// Run runs the script s with its checkpoint in dir.
func Run(t T, s *Script, dir string) {
	t.Helper()
	r := &Runner{t: t, s: s, dir: dir, src: memstream.New(s.Input), snk: newMemorySink(), conf: map[string]string{}, steps: s.Steps}
	for k, v := range s.Conf {
		r.conf[k] = v
	}
	defer r.stop()
	for i := 0; i < len(s.Cmds); i++ {
		c := s.Cmds[i]
		if !r.exec(c, s.Cmds, &i) {
			return
		}
	}
	r.checkNoBatchesLeft(len(s.Cmds))
}

func (r *Runner) pos(line int) string { return fmt.Sprintf("%s:%d", r.s.Name, line) }

// exec runs one command; false stops the script.
func (r *Runner) exec(c Cmd, cmds []Cmd, i *int) bool {
	r.t.Helper()
	switch c.Verb {
	case "conf":
		k, v, _ := strings.Cut(c.Args, " ")
		r.conf[k] = strings.TrimSpace(v)
	case "add":
		rows, err := parseRows(c.Args, r.s.Input)
		if err != nil {
			r.t.Fatalf("%s: add: %v", r.pos(c.Line), err)
			return false
		}
		if err := r.src.AddData(rows...); err != nil {
			r.t.Fatalf("%s: add: %v", r.pos(c.Line), err)
			return false
		}
	case "restart":
		r.stop()
	case "crash":
		id := int64(-1)
		if c.Args != "" {
			n, err := strconv.ParseInt(c.Args, 10, 64)
			if err != nil {
				r.t.Fatalf("%s: crash [BATCH]", r.pos(c.Line))
				return false
			}
			id = n
		}
		r.crashAt.Store(id)
		r.crash.Store(true)
	case "step":
		if *i == 0 || cmds[*i-1].Verb != "step" {
			r.steps = nil // a new query
		}
		r.steps = append(r.steps, c.Args)
	case "run":
		r.checkNoBatchesLeft(c.Line)
		_, err := os.Stat(filepath.Join(r.dir, "offsets", "0"))
		fresh := err != nil
		r.lastErr = r.run(c)
		// Expectations that follow: an expected error, then the batches.
		if *i+1 < len(cmds) && cmds[*i+1].Verb == "expect" {
			*i++
			e := cmds[*i]
			want := strings.TrimSpace(strings.TrimPrefix(e.Args, "error"))
			if r.lastErr == nil || !strings.Contains(r.lastErr.Error(), want) {
				r.t.Errorf("%s: run returned %v; want an error containing %q", r.pos(e.Line), r.lastErr, want)
			}
			// A query that fails to start writes nothing: Spark's start-time
			// errors come before offsets/0.
			if fresh && (r.rec == nil || len(r.rec.list()) == 0) {
				if _, err := os.Stat(filepath.Join(r.dir, "offsets", "0")); err == nil {
					r.t.Errorf("%s: the failed start wrote offsets/0", r.pos(e.Line))
				}
			}
		} else if r.lastErr != nil {
			r.t.Fatalf("%s: run failed: %v", r.pos(c.Line), r.lastErr)
			return false
		}
	case "expect":
		r.t.Fatalf("%s: expect must follow a run", r.pos(c.Line))
		return false
	case "batch":
		r.checkBatch(c)
	}
	return true
}

// checkNoBatchesLeft fails when the previous run executed batches the
// script did not list.
func (r *Runner) checkNoBatchesLeft(line int) {
	r.t.Helper()
	if r.rec == nil {
		return
	}
	infos := r.rec.list()
	if len(infos) > r.seen {
		ids := []int64{}
		for _, in := range infos[r.seen:] {
			ids = append(ids, in.BatchID)
		}
		r.t.Errorf("%s: the last run also executed batches %v, which the script does not list", r.pos(line), ids)
		r.seen = len(infos)
	}
}

// run starts the query if needed (or resumes it) and waits until it is
// idle or has stopped.
func (r *Runner) run(c Cmd) error {
	kind := trigger.Default
	switch c.Args {
	case "once":
		kind = trigger.Once
	case "availableNow":
		kind = trigger.AvailableNow
	}
	if kind != trigger.Default {
		r.stop()
		if err := r.start(kind); err != nil {
			return err
		}
		<-r.q.Done()
		err := r.q.Exception()
		r.q = nil
		return err
	}
	if r.q == nil {
		if err := r.start(kind); err != nil {
			return err
		}
	} else {
		r.resume <- struct{}{}
	}
	select {
	case <-r.idle:
		return nil
	case <-r.q.Done():
		err := r.q.Exception()
		r.q = nil
		return err
	case <-time.After(time.Minute):
		return errors.New("streamtest: the query did not become idle within a minute")
	}
}

// Query builds the script's logical plan and analyses it.
func (s *Script) Query() (*plan.Query, error) { return s.query(s.Steps) }

func (s *Script) query(steps []string) (*plan.Query, error) {
	var b strings.Builder
	b.WriteString("source: {format: memory}\nsink: {format: memory}\ntransform:\n")
	for _, st := range steps {
		b.WriteString("  - " + st + "\n")
	}
	f, err := pipeline.Parse(s.Name+" steps", []byte(b.String()), nil)
	if err != nil {
		return nil, err
	}
	root := plan.NewScan("memory", nil)
	for _, st := range f.Transform {
		root = root.With(st.Op)
	}
	return plan.Analyze(root, s.Input, plan.Options{OutputMode: s.Mode})
}

func (r *Runner) start(kind trigger.Kind) error {
	q, err := r.s.query(r.steps)
	if err != nil {
		return err
	}
	r.rec = &recorder{}
	r.seen = 0
	r.clock = triggertest.New(time.UnixMilli(1_700_000_000_000))
	r.idle, r.resume = make(chan struct{}), make(chan struct{})
	idle, resume := r.idle, r.resume
	r.clock.OnSleep(func(time.Duration) {
		idle <- struct{}{}
		<-resume
	})
	conf := map[string]string{}
	for k, v := range r.conf {
		conf[k] = v
	}
	cfg := engine.Config{
		Name: "script", Source: r.src, Sink: r.snk, CheckpointDir: r.dir, Workers: 2, Conf: conf,
		Trigger: trigger.Trigger{Kind: kind}, Clock: r.clock, Logger: slog.New(slog.DiscardHandler),
		Observers: []engine.Observer{r.rec},
		BeforeCommit: func(id int64) error {
			if at := r.crashAt.Load(); (at < 0 || at == id) && r.crash.CompareAndSwap(true, false) {
				return fmt.Errorf("injected crash in batch %d before commits/%d", id, id)
			}
			return nil
		},
	}
	if v, ok := conf["sluice.memory.budget"]; ok {
		n, err := options.ParseBytes(v)
		if err != nil {
			return err
		}
		cfg.Limits.MemoryBudget = n
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
	eq, err := engine.Start(context.Background(), cfg)
	if err != nil {
		return err
	}
	r.q = eq
	return nil
}

// stop stops a running query (it is paused in its idle hook).
func (r *Runner) stop() {
	if r.q == nil {
		return
	}
	q := r.q
	done := make(chan struct{})
	go func() {
		q.Stop()
		close(done)
	}()
	for {
		select {
		case r.resume <- struct{}{}:
			continue
		case <-r.idle:
			continue
		case <-done:
		}
		break
	}
	r.q = nil
}

func (r *Runner) checkBatch(c Cmd) {
	r.t.Helper()
	if r.rec == nil {
		r.t.Errorf("%s: batch before any run", r.pos(c.Line))
		return
	}
	infos := r.rec.list()
	if r.seen >= len(infos) {
		r.t.Errorf("%s: expected batch %s, but the run executed no more batches", r.pos(c.Line), c.Args)
		return
	}
	info := infos[r.seen]
	r.seen++
	fields := strings.Fields(c.Args)
	if len(fields) == 0 {
		r.t.Errorf("%s: batch needs an id", r.pos(c.Line))
		return
	}
	id, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil || id != info.BatchID {
		r.t.Errorf("%s: batch %s, but the run executed batch %d", r.pos(c.Line), fields[0], info.BatchID)
		return
	}
	errf := func(line int, format string, a ...any) {
		r.t.Errorf("%s: batch %d: %s", r.pos(line), id, fmt.Sprintf(format, a...))
	}
	noData := false
	for _, f := range fields[1:] {
		if f == "nodata" {
			noData = true
			continue
		}
		k, v, _ := strings.Cut(f, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errf(c.Line, "bad attribute %q", f)
			continue
		}
		var got int64
		switch k {
		case "watermark":
			got = info.WatermarkMs
		case "next":
			got = info.NextWatermarkMs
		case "input":
			got = info.NumInputRows
		default:
			errf(c.Line, "unknown attribute %q", k)
			continue
		}
		if got != n {
			errf(c.Line, "%s = %d, want %d", k, got, n)
		}
	}
	if info.NoData != noData {
		errf(c.Line, "no-data batch = %v, want %v", info.NoData, noData)
	}
	r.checkFiles(c.Line, info)
	hasOutput := false
	for _, bl := range c.Body {
		verb, args, _ := strings.Cut(bl.Text, " ")
		args = strings.TrimSpace(args)
		switch verb {
		case "output":
			hasOutput = true
			want, err := parseRows(args, batch.Schema{})
			if err != nil {
				errf(bl.Line, "output: %v", err)
				continue
			}
			got := r.snk.rows(info.BatchID)
			ws := canonicalRows(want)
			gs := canonicalRows(got)
			if !slices.Equal(ws, gs) {
				errf(bl.Line, "output\n  got  %s\n  want %s", strings.Join(gs, ", "), strings.Join(ws, ", "))
			}
		case "state", "custom":
			if len(info.StateOperators) == 0 {
				errf(bl.Line, "no state operator reported")
				continue
			}
			op := info.StateOperators[0]
			for _, kv := range strings.Fields(args) {
				k, v, _ := strings.Cut(kv, "=")
				if verb == "state" && k == "name" {
					if op.OperatorName != v {
						errf(bl.Line, "operatorName %q, want %q", op.OperatorName, v)
					}
					continue
				}
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					errf(bl.Line, "bad value %q", kv)
					continue
				}
				var got int64
				if verb == "custom" {
					got = op.CustomMetrics[k]
				} else {
					switch k {
					case "total":
						got = op.NumRowsTotal
					case "updated":
						got = op.NumRowsUpdated
					case "removed":
						got = op.NumRowsRemoved
					case "dropped":
						got = op.NumRowsDroppedByWatermark
					case "partitions":
						got = op.NumShufflePartitions
					case "instances":
						got = op.NumStateStoreInstances
					default:
						errf(bl.Line, "unknown state figure %q", k)
						continue
					}
				}
				if got != n {
					errf(bl.Line, "%s %s = %d, want %d", verb, k, got, n)
				}
			}
		case "pinned":
			k, v, _ := strings.Cut(args, "=")
			cp, err := checkpoint.OpenReadOnly(r.dir)
			if err != nil {
				errf(bl.Line, "%v", err)
				continue
			}
			meta, _, err := cp.ReadOffsets(info.BatchID)
			if err != nil {
				errf(bl.Line, "%v", err)
				continue
			}
			if got := meta.Conf[k]; got != v {
				errf(bl.Line, "offsets/%d conf %s = %q, want %q", info.BatchID, k, got, v)
			}
		case "eventTime":
			e := info.EventTime
			if args == "none" {
				if e != nil && e.Stats.Count > 0 {
					errf(bl.Line, "eventTime has stats %+v, want none", e.Stats)
				}
				continue
			}
			if e == nil || e.Stats.Count == 0 {
				errf(bl.Line, "no eventTime stats")
				continue
			}
			for _, kv := range strings.Fields(args) {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					errf(bl.Line, "bad value %q", kv)
					continue
				}
				var got int64
				switch k {
				case "min":
					got = e.Stats.Min
				case "max":
					got = e.Stats.Max
				case "avg":
					got = int64(e.Stats.Avg)
				case "count":
					got = e.Stats.Count
				default:
					errf(bl.Line, "unknown eventTime figure %q", k)
					continue
				}
				if got != n {
					errf(bl.Line, "eventTime %s = %d, want %d", k, got, n)
				}
			}
		default:
			errf(bl.Line, "unknown expectation %q", verb)
		}
	}
	if !hasOutput && len(r.snk.rows(info.BatchID)) > 0 {
		errf(c.Line, "emitted %s, but the script lists no output", strings.Join(canonicalRows(r.snk.rows(info.BatchID)), ", "))
	}
}

// checkFiles compares offsets/N and commits/N with what the batch reported.
func (r *Runner) checkFiles(line int, info *engine.BatchInfo) {
	r.t.Helper()
	cp, err := checkpoint.OpenReadOnly(r.dir)
	if err != nil {
		r.t.Errorf("%s: %v", r.pos(line), err)
		return
	}
	meta, _, err := cp.ReadOffsets(info.BatchID)
	if err != nil {
		r.t.Errorf("%s: %v", r.pos(line), err)
		return
	}
	if meta.WatermarkMs != info.WatermarkMs {
		r.t.Errorf("%s: offsets/%d batchWatermarkMs = %d, the batch used %d", r.pos(line), info.BatchID, meta.WatermarkMs, info.WatermarkMs)
	}
	next, err := cp.ReadCommit(info.BatchID)
	if err != nil {
		r.t.Errorf("%s: %v", r.pos(line), err)
		return
	}
	if next != info.NextWatermarkMs {
		r.t.Errorf("%s: commits/%d nextBatchWatermarkMs = %d, the batch computed %d", r.pos(line), info.BatchID, next, info.NextWatermarkMs)
	}
}

// recorder keeps every batch's measurements.
type recorder struct {
	engine.NopObserver
	mu    sync.Mutex
	infos []*engine.BatchInfo
}

func (r *recorder) BatchCompleted(_ *engine.Query, info *engine.BatchInfo) {
	r.mu.Lock()
	r.infos = append(r.infos, info)
	r.mu.Unlock()
}

func (r *recorder) list() []*engine.BatchInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.infos)
}

// memorySink keeps each committed batch's rows (a re-committed batch
// replaces its rows, as an idempotent sink would).
type memorySink struct {
	mu      sync.Mutex
	batches map[int64][][]any
}

func newMemorySink() *memorySink { return &memorySink{batches: map[int64][][]any{}} }

func (m *memorySink) Description() string { return "MemorySink" }
func (m *memorySink) Close() error        { return nil }

func (m *memorySink) NewWriter(context.Context, int64, int, batch.Schema) (sink.Writer, error) {
	return &memoryWriter{}, nil
}

func (m *memorySink) Commit(_ context.Context, id int64, msgs []sink.Message) error {
	var rows [][]any
	for _, msg := range msgs {
		if w, ok := msg.([][]any); ok {
			rows = append(rows, w...)
		}
	}
	m.mu.Lock()
	m.batches[id] = rows
	m.mu.Unlock()
	return nil
}

func (m *memorySink) rows(id int64) [][]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.batches[id]
}

type memoryWriter struct{ rows [][]any }

func (w *memoryWriter) Write(_ context.Context, b *batch.Batch) error {
	for i := 0; i < b.N; i++ {
		row := b.Row(i)
		for j, f := range b.Schema.Fields {
			if f.Type == batch.Timestamp && row[j] != nil {
				row[j] = time.UnixMicro(row[j].(int64)).UTC().Format(time.RFC3339Nano)
			}
		}
		w.rows = append(w.rows, row)
	}
	return nil
}

func (w *memoryWriter) Close(context.Context) (sink.Message, error) { return w.rows, nil }
func (w *memoryWriter) Abort(context.Context)                       {}
