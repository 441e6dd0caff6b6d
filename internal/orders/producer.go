package orders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer defaults.
const (
	// DefaultTick is how often the producer's pacer wakes up.
	DefaultTick = 10 * time.Millisecond
	// DefaultDeliveryTimeout bounds how long a record may take to be
	// acknowledged before Run gives up with an error.
	DefaultDeliveryTimeout = 30 * time.Second
	// DefaultMaxCatchUp bounds how far behind schedule the producer may
	// fall (because the client's buffer is full) before it drops the
	// backlog of the schedule instead of bursting it later.
	DefaultMaxCatchUp = time.Second
	// DefaultFlushTimeout bounds the final flush when Run stops.
	DefaultFlushTimeout = 5 * time.Second
)

// ClientOpts returns kgo options suited to a client given to a Producer:
// a bounded buffer, a delivery timeout and batches below Event Hubs' request
// limit. Add kgo.SeedBrokers and anything else on top.
func ClientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.MaxBufferedRecords(20_000),
		kgo.RecordDeliveryTimeout(DefaultDeliveryTimeout),
		kgo.ProducerBatchMaxBytes(1_000_000),
		kgo.ProducerLinger(5 * time.Millisecond),
	}
}

// Producer writes generated orders to a topic at the rate of a Profile.
//
// Pacing follows the profile's integral (Profile.Expected), checked every
// Tick, so the long-run rate is exact and does not drift. Records are handed
// to the client without blocking, never more than fit in its
// kgo.MaxBufferedRecords buffer; when the buffer is full the producer falls
// behind schedule and catches up later, by at most MaxCatchUp worth of
// records (the rest is dropped and counted in Skipped).
//
// Set the exported fields before Run.
type Producer struct {
	// Tick is the pacing interval (DefaultTick if 0).
	Tick time.Duration
	// DeliveryTimeout bounds each record's wait for its acknowledgement;
	// a record that misses it stops Run with an error
	// (DefaultDeliveryTimeout if 0).
	DeliveryTimeout time.Duration
	// MaxCatchUp bounds the backlog behind schedule, as a duration of the
	// current rate or of the base rate, whichever is higher
	// (DefaultMaxCatchUp if 0).
	MaxCatchUp time.Duration
	// FlushTimeout bounds the wait for buffered records when Run stops
	// (DefaultFlushTimeout if 0).
	FlushTimeout time.Duration

	client *kgo.Client
	topic  string
	gen    *Generator
	prof   Profile
	logger *slog.Logger

	running     atomic.Bool
	produced    atomic.Int64
	failed      atomic.Int64
	skipped     atomic.Int64
	requeued    atomic.Int64 // refused by a full buffer: to issue again
	outstanding atomic.Int64 // handed to the client, promise not yet called

	errMu    sync.Mutex
	firstErr error
}

// NewProducer returns a producer of gen's orders to topic through client,
// at the rate of prof. The client should use the options of ClientOpts (or
// equivalent). A nil logger discards logs.
func NewProducer(client *kgo.Client, topic string, gen *Generator, prof Profile, logger *slog.Logger) *Producer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Producer{client: client, topic: topic, gen: gen, prof: prof, logger: logger}
}

// Produced returns how many records the broker has acknowledged.
func (p *Producer) Produced() int64 { return p.produced.Load() }

// Failed returns how many records failed (including those canceled when Run
// stopped before they were acknowledged).
func (p *Producer) Failed() int64 { return p.failed.Load() }

// Skipped returns how many scheduled records were dropped because the
// producer fell more than MaxCatchUp behind schedule.
func (p *Producer) Skipped() int64 { return p.skipped.Load() }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run produces until ctx is done, then flushes what is buffered (bounded by
// FlushTimeout) and returns nil. The records due until ctx ended are issued,
// and none that would be due after ctx's deadline: a run bounded by a deadline
// issues floor(Profile.Expected(d)) records, d being the time from Run's start
// to the deadline, unless the buffer held it back. It returns an error early if a record cannot
// be delivered (for example the topic does not exist and DeliveryTimeout
// passes). Run may be called only once at a time.
func (p *Producer) Run(ctx context.Context) error {
	if err := p.prof.Validate(); err != nil {
		return err
	}
	if p.topic == "" {
		return errors.New("orders: producer has no topic")
	}
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("orders: producer is already running")
	}
	defer p.running.Store(false)

	tick := orDefault(p.Tick, DefaultTick)
	deliveryTimeout := orDefault(p.DeliveryTimeout, DefaultDeliveryTimeout)
	maxCatchUp := orDefault(p.MaxCatchUp, DefaultMaxCatchUp)
	maxBuffered := maxBufferedRecords(p.client)

	// Records outlive ctx until the final flush; prodCtx is canceled after
	// it, failing whatever is still buffered.
	prodCtx, cancelProd := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelProd()

	p.logger.Info("order producer started", "topic", p.topic, "base_rate", p.prof.Base,
		"spike", p.prof.Spike, "spike_at", p.prof.SpikeAt, "spike_for", p.prof.SpikeFor)
	start := time.Now()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()

	// Schedule: issued + dropped records against Expected(elapsed).
	// Nothing is due after ctx's deadline, however late the pacer wakes.
	var issued, dropped int64
	deadline, hasDeadline := ctx.Deadline()
	step := func(now time.Time) {
		if hasDeadline && now.After(deadline) {
			now = deadline
		}
		elapsed := now.Sub(start)
		issued -= p.requeued.Swap(0)
		due := int64(p.prof.Expected(elapsed)) - issued - dropped
		if limit := int64(max(p.prof.RateAt(elapsed), p.prof.Base) * maxCatchUp.Seconds()); due > limit {
			skip := due - limit
			dropped += skip
			p.skipped.Add(skip)
			due -= skip
		}
		room := maxBuffered - p.client.BufferedProduceRecords()
		if n := min(due, room); n > 0 {
			p.produceTick(prodCtx, now, n, deliveryTimeout)
			issued += n
		}
	}
	var runErr error
	for runErr == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-ticker.C:
			// select picks at random among ready cases: a tick
			// ready together with ctx.Done must not produce past
			// the end.
			if runErr = p.err(); runErr == nil && ctx.Err() == nil {
				step(time.Now())
			}
		}
	}
	if runErr == nil {
		// Top the schedule up to the moment ctx ended, so that a pacer
		// woken late does not lose the records of its last ticks.
		step(time.Now())
	}

	// Stop: flush what is buffered, then fail the rest and wait for the
	// promises so the counters are final.
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), orDefault(p.FlushTimeout, DefaultFlushTimeout))
	if err := p.client.Flush(flushCtx); err != nil {
		p.logger.Warn("order producer: flush did not finish", "topic", p.topic, "err", err)
	}
	cancelFlush()
	cancelProd()
	for wait := time.Now().Add(deliveryTimeout); p.outstanding.Load() > 0 && time.Now().Before(wait); {
		time.Sleep(time.Millisecond)
	}
	if runErr == nil {
		runErr = p.err()
	}
	p.logger.Info("order producer stopped", "topic", p.topic, "produced", p.Produced(),
		"failed", p.Failed(), "skipped", p.Skipped(), "elapsed", time.Since(start).Round(time.Millisecond))
	return runErr
}

// produceTick hands n records to the client. The records of one tick share a
// context whose deadline is the delivery timeout; the last promise of the
// tick releases it.
func (p *Producer) produceTick(ctx context.Context, now time.Time, n int64, timeout time.Duration) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	var remaining atomic.Int64
	remaining.Store(n)
	promise := func(r *kgo.Record, err error) {
		p.record(err)
		p.outstanding.Add(-1)
		if remaining.Add(-1) == 0 {
			cancel()
		}
	}
	p.outstanding.Add(n)
	for range n {
		key, value := p.gen.Next(now)
		p.client.TryProduce(tctx, &kgo.Record{Topic: p.topic, Key: key, Value: value, Timestamp: now}, promise)
	}
}

// record accounts for one promise.
func (p *Producer) record(err error) {
	switch {
	case err == nil:
		p.produced.Add(1)
	case errors.Is(err, kgo.ErrMaxBuffered):
		// Another user of the client filled the buffer: issue again.
		p.requeued.Add(1)
	case errors.Is(err, context.Canceled):
		// Run stopped before the record was acknowledged.
		p.failed.Add(1)
	default:
		p.failed.Add(1)
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("record not acknowledged within the delivery timeout: %w", err)
		}
		p.errMu.Lock()
		if p.firstErr == nil {
			p.firstErr = fmt.Errorf("orders: produce to %q: %w", p.topic, err)
		}
		p.errMu.Unlock()
	}
}

func (p *Producer) err() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.firstErr
}

// maxBufferedRecords reads the client's kgo.MaxBufferedRecords.
func maxBufferedRecords(cl *kgo.Client) int64 {
	switch v := cl.OptValue(kgo.MaxBufferedRecords).(type) {
	case int64:
		return v
	case int:
		return int64(v)
	}
	return 10_000
}

// PreloadSeed is the generator seed Preload uses, so that preloaded data is
// the same from run to run (apart from the event times).
const PreloadSeed = 20261125

// Preload writes n orders of about size bytes to topic as fast as the broker
// takes them, record i to partition i mod partitions, so each of the first
// partitions partitions gets n/partitions records (the first n%partitions one
// more). Values are Order JSON grown to exactly size bytes with a "pad" field
// when size is larger than the order (about 150 bytes); keys are customer ids;
// event times step by one millisecond and end at the time of the call.
//
// Preload produces through a short-lived client built from client's options
// (seed brokers, TLS, SASL, compression…) minus its consumer options, with
// manual partitioning and a large buffer; client itself is not used to
// produce. The topic must exist with at least partitions partitions.
//
// Compression follows client's options, and kgo compresses with snappy by
// default: against the embedded broker on two cores, a client with
// kgo.ProducerBatchCompression(kgo.NoCompression()) loads about twice as fast
// (BenchmarkPreload: roughly 250k records/s of 200 bytes on a busy machine).
func Preload(ctx context.Context, client *kgo.Client, topic string, n int, size int, partitions int32) error {
	switch {
	case n < 0:
		return fmt.Errorf("orders: preload %q: record count %d is negative", topic, n)
	case size < 0:
		return fmt.Errorf("orders: preload %q: record size %d is negative", topic, size)
	case partitions < 1:
		return fmt.Errorf("orders: preload %q: partition count %d must be ≥ 1", topic, partitions)
	case n == 0:
		return nil
	}
	var opts []kgo.Opt
	for _, o := range client.Opts() {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt:
			continue
		}
		opts = append(opts, o)
	}
	opts = append(opts,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100_000),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("orders: preload %q: client: %w", topic, err)
	}
	defer cl.Close()

	tds, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = tds.Error()
	}
	if err != nil {
		return fmt.Errorf("orders: preload %q: describe topic: %w", topic, err)
	}
	if have := int32(len(tds[topic].Partitions)); have < partitions {
		return fmt.Errorf("orders: preload %q: topic has %d partitions, %d asked for", topic, have, partitions)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			cancel(err)
		}
	}
	gen := NewGenerator(PreloadSeed)
	end := time.Now().UTC().Truncate(time.Millisecond)
	base := end.Add(-time.Duration(n) * time.Millisecond)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		ts := base.Add(time.Duration(i+1) * time.Millisecond)
		o := gen.NextOrder(ts)
		value := padJSON(o.AppendJSON(make([]byte, 0, max(size, 160))), size)
		cl.Produce(ctx, &kgo.Record{
			Topic:     topic,
			Partition: int32(i % int(partitions)),
			Key:       []byte(o.CustomerID),
			Value:     value,
			Timestamp: ts,
		}, promise)
	}
	if err := cl.Flush(ctx); err != nil && context.Cause(ctx) == nil {
		return fmt.Errorf("orders: preload %q: flush: %w", topic, err)
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("orders: preload %q: %w", topic, err)
	}
	return nil
}
