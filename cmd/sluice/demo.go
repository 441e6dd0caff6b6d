package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/loadgen"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/orders"
	"github.com/sluice-stream/sluice/progress"
)

// Demo defaults: a spike of 4,000 orders/s for 15 s against
// maxOffsetsPerTrigger 10,000 per 5 s trigger (2,000/s) builds about 30,000
// records of lag, which drains at 2,000 − 500 = 1,500/s in about 20 s.
const (
	demoRate       = 500
	demoSpike      = 8
	demoSpikeAt    = 10 * time.Second
	demoSpikeFor   = 15 * time.Second
	demoTrigger    = "5 seconds"
	demoMaxOffsets = 10000
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	duration := fs.Duration("duration", 0, "stop after this long (0 = once the spike's lag has drained, or on Ctrl-C)")
	trig := fs.String("trigger", demoTrigger, `processingTime trigger ("20 seconds" is the seed's exactly)`)
	rate := fs.Float64("rate", demoRate, "steady produce rate, records/s")
	spike := fs.Float64("spike", demoSpike, "spike multiplier")
	spikeAt := fs.Duration("spike-at", demoSpikeAt, "when the spike starts")
	spikeFor := fs.Duration("spike-for", demoSpikeFor, "how long the spike lasts")
	maxOffsets := fs.Int64("max-offsets-per-trigger", demoMaxOffsets, "the seed's admission limit")
	numRows := fs.Int("num-rows", 5, "console rows shown per batch")
	chk := fs.String("checkpoint", "", "checkpoint directory (default: a temporary one)")
	listen := fs.String("listen", "127.0.0.1:0", "embedded broker address")
	logf := addLogFlags(fs, "warn")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The batch lines (a listener's goroutine), the log and the demo's own
	// messages share stderr.
	stderr = &lockedWriter{w: stderr}
	log, err := logf.logger(stderr)
	if err != nil {
		return err
	}
	interval, err := options.ParseInterval(*trig)
	if err != nil || interval <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--trigger %q: want a positive interval such as \"5 seconds\"", *trig)}
	}
	if *maxOffsets <= 0 || *rate <= 0 || *spike < 1 {
		return &exitError{code: 2, err: errors.New("--max-offsets-per-trigger and --rate must be positive and --spike at least 1")}
	}
	runCtx := ctx
	if *duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	b, err := broker.Start(ctx, broker.Config{Listen: *listen, Topics: []broker.TopicSpec{{Name: "orders", Partitions: 4}}, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	if *chk == "" {
		if *chk, err = os.MkdirTemp("", "sluice-demo-chk-"); err != nil {
			return err
		}
		defer os.RemoveAll(*chk)
	}
	admit := float64(*maxOffsets) / interval.Seconds()
	fmt.Fprintf(stderr, "sluice demo: embedded Kafka broker on %s, topic orders (4 partitions)\n", b.Addr())
	fmt.Fprintf(stderr, "producer: %.0f orders/s, ×%g spike (%.0f/s) at %s for %s; query: maxOffsetsPerTrigger=%d per %s trigger = %.0f/s admitted at most\n",
		*rate, *spike, *rate**spike, *spikeAt, *spikeFor, *maxOffsets, interval, admit)
	if *rate**spike <= admit {
		fmt.Fprintf(stderr, "note: the spike stays within what the limit admits: no lag will build (raise --spike or lower --max-offsets-per-trigger)\n")
	}

	// The seed's query, as in examples/orders-console.yaml.
	watch := &demoWatch{spikeEnd: time.Now().Add(*spikeAt + *spikeFor), drained: make(chan struct{})}
	session := sluice.NewSession(sluice.WithLogger(log), sluice.WithGoMemoryLimit())
	q, err := session.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).
		Option("subscribe", "orders").
		Option("startingOffsets", "latest").
		Option("maxOffsetsPerTrigger", *maxOffsets).
		Load().
		SelectExpr("CAST(value AS STRING) AS json").
		WithColumn("processed_ts", "current_timestamp()").
		WriteStream().
		Format("console").
		Option("checkpointLocation", *chk).
		Option("numRows", *numRows).
		Trigger(sluice.ProcessingTime(*trig)).
		Stdout(stdout).
		AddListener(&batchLine{w: stderr}).
		AddListener(watch).
		Start(ctx)
	if err != nil {
		return err
	}

	// The sample producer: order events keyed by customer, at a steady rate
	// with one spike (sluice loadgen's engine), until the demo ends.
	shape, err := loadgen.NewShape(loadgen.ShapeOrders, 0, time.Now().UnixNano())
	if err != nil {
		q.Stop()
		return err
	}
	started := time.Now()
	watch.mu.Lock()
	watch.spikeEnd = started.Add(*spikeAt + *spikeFor)
	watch.mu.Unlock()
	pctx, stopProducer := context.WithCancel(runCtx)
	defer stopProducer()
	type produced struct {
		res loadgen.Result
		err error
	}
	perr := make(chan produced, 1)
	go func() {
		res, err := loadgen.Run(pctx, loadgen.Config{
			Brokers:  []string{b.Addr()},
			Topic:    "orders",
			Profile:  loadgen.Spike{Base: *rate, Factor: *spike, At: *spikeAt, For: *spikeFor},
			Duration: 365 * 24 * time.Hour, // until the demo ends
			Shape:    shape,
			Keys:     loadgen.Keys{Count: orders.NumCustomers},
			Seed:     time.Now().UnixNano(),
			Logger:   log,
		})
		perr <- produced{res, err}
	}()

	// The backlog when the spike ends, for the physical minimum.
	var backlogAtEnd int64 = -1
	spikeOver := time.NewTimer(time.Until(started.Add(*spikeAt + *spikeFor)))
	defer spikeOver.Stop()
	var qerr error
	qdone := make(chan struct{})
	go func() {
		_ = q.AwaitTermination(context.Background())
		close(qdone)
	}()
wait:
	for {
		select {
		case <-spikeOver.C:
			if lag := q.Snapshot().Lag; lag != nil {
				backlogAtEnd = lag.Records
			}
		case <-watch.drained:
			fmt.Fprintln(stderr, "sluice demo: the spike's lag has drained; stopping")
			break wait
		case <-runCtx.Done():
			break wait
		case <-qdone:
			qerr = q.Exception()
			break wait
		}
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	stopErr := q.StopGracefully(stopCtx)
	cancel()
	stopProducer()
	p := <-perr
	if p.err != nil && !errors.Is(p.err, context.Canceled) && !errors.Is(p.err, context.DeadlineExceeded) {
		return fmt.Errorf("producer: %w", p.err)
	}
	watch.summary(stderr, demoSummaryInput{produced: p.res.Acked, maxOffsets: *maxOffsets, interval: interval, baseRate: *rate,
		spikeAt: *spikeAt, spikeFor: *spikeFor, started: started, backlogAtEnd: backlogAtEnd})
	if qerr != nil {
		return qerr
	}
	if errors.Is(stopErr, sluice.ErrBatchAbandoned()) {
		return nil
	}
	return stopErr
}

// demoWatch follows the demo query's progress: the peak lag, the batches
// the limit capped, and when the lag built by the spike has drained (the
// first batch after the spike that the limit did not cap).
type demoWatch struct {
	progress.ListenerFuncs
	mu         sync.Mutex
	spikeEnd   time.Time
	batches    int
	capped     int
	peak       int64
	peakSec    float64
	peakBatch  int64
	capacity   float64
	sawLag     bool
	drainedAt  time.Time
	drained    chan struct{}
	closedOnce sync.Once
}

func (w *demoWatch) OnQueryProgress(e progress.ProgressEvent) {
	p := e.Progress
	if p == nil || p.Sluice == nil {
		return
	}
	s := p.Sluice
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batches++
	if s.Admission != nil && s.Admission.LimitBound {
		w.capped++
	}
	if s.Lag != nil {
		if s.Lag.Records > w.peak {
			w.peak, w.peakBatch = s.Lag.Records, p.BatchID
		}
		if sec := float64(s.Lag.Seconds); !math.IsNaN(sec) && sec > w.peakSec {
			w.peakSec = sec
		}
		if c := float64(s.Lag.CapacityRowsPerSecond); !math.IsNaN(c) {
			w.capacity = c
		}
		if s.Admission != nil && s.Admission.LimitBound {
			w.sawLag = true
		}
	}
	ts, err := progress.ParseTime(p.Timestamp)
	if err != nil {
		return
	}
	end := ts.Add(time.Duration(p.BatchDuration) * time.Millisecond)
	if end.After(w.spikeEnd) && w.drainedAt.IsZero() && s.Admission != nil && !s.Admission.LimitBound {
		w.drainedAt = end
		w.closedOnce.Do(func() { close(w.drained) })
	}
}

type demoSummaryInput struct {
	produced          int64
	maxOffsets        int64
	interval          time.Duration
	baseRate          float64
	spikeAt, spikeFor time.Duration
	started           time.Time
	backlogAtEnd      int64
}

// summary prints what the demo showed: peak lag, capped batches, and how
// long the drain took against its physical minimum — the backlog at the
// end of the spike over what the query can drain net of the arrivals (the
// read limit's rate, or the measured capacity if lower, minus the base
// rate).
func (w *demoWatch) summary(out io.Writer, in demoSummaryInput) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(out, "\nsluice demo: summary\n")
	fmt.Fprintf(out, "  produced %d orders; %d batches\n", in.produced, w.batches)
	fmt.Fprintf(out, "  peak lag: %d records, %s behind (batch %d)\n", w.peak, formatSeconds(w.peakSec), w.peakBatch)
	fmt.Fprintf(out, "  batches capped by maxOffsetsPerTrigger=%d: %d of %d\n", in.maxOffsets, w.capped, w.batches)
	spikeEnd := in.started.Add(in.spikeAt + in.spikeFor)
	switch {
	case w.drainedAt.IsZero() && w.sawLag:
		fmt.Fprintf(out, "  not drained when the demo stopped\n")
	case w.drainedAt.IsZero():
		fmt.Fprintf(out, "  no lag built up: the limit was never binding\n")
	default:
		took := w.drainedAt.Sub(spikeEnd).Seconds()
		drain := float64(in.maxOffsets) / in.interval.Seconds()
		if w.capacity > 0 && w.capacity < drain {
			drain = w.capacity
		}
		line := fmt.Sprintf("  drained in %s after the spike ended", formatSeconds(max(0, took)))
		if net := drain - in.baseRate; in.backlogAtEnd > 0 && net > 0 {
			min := float64(in.backlogAtEnd) / net
			line += fmt.Sprintf(" vs a physical minimum of %s (%d records ÷ (%.0f/s drained − %.0f/s arriving))",
				formatSeconds(min), in.backlogAtEnd, drain, in.baseRate)
		}
		fmt.Fprintln(out, line)
	}
}

// lockedWriter serialises writes from several goroutines to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
