package loadgen

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

// Defaults of Config.
const (
	DefaultTick = 10 * time.Millisecond
	// DefaultLinger is the producer's linger (ClientOpts): a short wait
	// that fills larger batches at high rates.
	DefaultLinger      = 2 * time.Millisecond
	DefaultMaxBuffered = 20_000
	DefaultMaxBehind   = time.Second
	DefaultFlush       = 10 * time.Second
	DefaultKeys        = 1000
)

// Config describes a run.
type Config struct {
	// Brokers are the seed brokers; ClientOpts are added to the producer
	// client (TLS, SASL, compression…).
	Brokers    []string
	ClientOpts []kgo.Opt
	// Topic receives the records; it must exist. Record i goes to
	// partition key mod Partitions, so a Zipf key distribution makes the
	// low partitions hot. Partitions 0 means all of the topic's partitions.
	Topic      string
	Partitions int32
	// Profile is the rate over time; Duration how long to produce.
	Profile  Profile
	Duration time.Duration
	// Shape makes the values; Keys draws the keys; Seed seeds both.
	Shape Shape
	Keys  Keys
	Seed  int64
	// Tick is the pacing interval (DefaultTick if 0).
	Tick time.Duration
	// MaxBuffered bounds the records handed to the client and not yet
	// acknowledged (kgo.MaxBufferedRecords; DefaultMaxBuffered if 0).
	MaxBuffered int
	// MaxBehind bounds how far behind schedule the producer may fall when
	// the broker does not keep up, as a duration of the current rate
	// (DefaultMaxBehind if 0). Records due beyond it are not produced:
	// the run slows down to what the broker takes, counts them in
	// Result.Skipped and says so in its per-second reports.
	MaxBehind time.Duration
	// FlushTimeout bounds the wait for the last acknowledgements
	// (DefaultFlush if 0).
	FlushTimeout time.Duration
	// OnSecond, if set, receives a report at the end of every second (and
	// of the last, partial one), from the producing goroutine.
	OnSecond func(Second)
	// Logger receives start/stop lines (nil: none).
	Logger *slog.Logger
}

// Second is what happened in one second of a run.
type Second struct {
	// Index counts seconds from 1; the report covers (Index-1, Index] s
	// of the run (the last may be shorter: Length).
	Index  int
	Length time.Duration
	// Asked is what the profile schedules in the second; Issued what was
	// handed to the client; Acked what the broker acknowledged in it.
	Asked, Issued, Acked int64
	// Failed counts records that failed in the second.
	Failed int64
	// Skipped counts records given up in the second because the broker
	// did not keep up (see Config.MaxBehind).
	Skipped int64
	// Behind is how many scheduled records were waiting for room in the
	// buffer at the end of the second; Buffered the records in the
	// client's buffer then.
	Behind, Buffered int64
}

// Throttled reports whether the broker held the producer back in this
// second: records waited for buffer room or were skipped.
func (s Second) Throttled() bool { return s.Behind > 0 || s.Skipped > 0 }

// AskedRate and AckedRate are the second's rates per second of its length.
func (s Second) AskedRate() float64 { return perSecond(s.Asked, s.Length) }

// AckedRate is the acknowledged records per second of the second's length.
func (s Second) AckedRate() float64 { return perSecond(s.Acked, s.Length) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// String renders the second as the CLI prints it.
func (s Second) String() string {
	line := fmt.Sprintf("t=%3ds asked %8.0f/s acked %8.0f/s buffered %6d", s.Index, s.AskedRate(), s.AckedRate(), s.Buffered)
	if s.Failed > 0 {
		line += fmt.Sprintf(" failed %d", s.Failed)
	}
	if s.Throttled() {
		line += fmt.Sprintf("  broker not keeping up: %d records behind schedule", s.Behind)
		if s.Skipped > 0 {
			line += fmt.Sprintf(", %d skipped (slowed down)", s.Skipped)
		}
	}
	return line
}

// Result sums up a run.
type Result struct {
	Duration time.Duration
	// Asked is floor(Profile.Expected(Duration)); Issued, Acked, Failed,
	// Skipped as in Second, over the run. Acked + Failed = Issued.
	Asked, Issued, Acked, Failed, Skipped int64
	// Seconds are the per-second reports.
	Seconds []Second
	// PartitionCounts is the records acknowledged per partition.
	PartitionCounts []int64
	// LastAck is when the last acknowledgement arrived, since the start
	// (noted at the first tick that saw it, or when the final flush ended).
	LastAck time.Duration
}

// AskedRate is the asked records per second of the run.
func (r Result) AskedRate() float64 { return perSecond(r.Asked, r.Duration) }

// AchievedRate is the acknowledged records per second, over the run or
// until the last acknowledgement if that came later: records the broker
// took only while the run flushed do not count as taken in time.
func (r Result) AchievedRate() float64 { return perSecond(r.Acked, max(r.Duration, r.LastAck)) }

// Throttled reports whether the broker held the producer back at any time.
func (r Result) Throttled() bool {
	for _, s := range r.Seconds {
		if s.Throttled() {
			return true
		}
	}
	return r.Skipped > 0
}

func (r Result) String() string {
	s := fmt.Sprintf("produced %d of %d records in %s: achieved %.0f/s of %.0f/s asked (%.1f%%)",
		r.Acked, r.Asked, r.Duration.Round(time.Millisecond), r.AchievedRate(), r.AskedRate(), 100*ratio(r.Acked, r.Asked))
	if r.Failed > 0 {
		s += fmt.Sprintf(", %d failed", r.Failed)
	}
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped because the broker did not keep up", r.Skipped)
	}
	return s
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// ClientOpts returns the producer options Run uses on top of
// Config.ClientOpts: manual partitioning, the bounded buffer, a short linger
// and no compression (the load generator's CPU is better spent producing).
// Later options win, so Config.ClientOpts can turn compression back on.
func ClientOpts(maxBuffered int) []kgo.Opt {
	return []kgo.Opt{
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(maxBuffered),
		kgo.ProducerLinger(DefaultLinger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1_000_000),
		kgo.RecordDeliveryTimeout(30 * time.Second),
	}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Run produces cfg.Profile for cfg.Duration (or until ctx ends), waits for
// the acknowledgements (bounded by FlushTimeout) and returns what happened.
// It returns an error, with the result so far, if the client cannot be
// created, the topic has fewer partitions than asked, or a record fails for
// a reason other than the run stopping.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := Validate(cfg.Profile); err != nil {
		return Result{}, err
	}
	if err := cfg.Keys.Validate(); err != nil {
		return Result{}, err
	}
	switch {
	case cfg.Topic == "":
		return Result{}, errors.New("loadgen: no topic")
	case cfg.Shape == nil:
		return Result{}, errors.New("loadgen: no record shape")
	case cfg.Duration <= 0:
		return Result{}, fmt.Errorf("loadgen: duration %s must be positive", cfg.Duration)
	case len(cfg.Brokers) == 0:
		return Result{}, errors.New("loadgen: no bootstrap brokers")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxBuf := orDefault(cfg.MaxBuffered, DefaultMaxBuffered)
	opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, ClientOpts(maxBuf)...)
	opts = append(opts, cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: producer client: %w", err)
	}
	defer cl.Close()
	parts, err := topicPartitions(ctx, cl, cfg.Topic)
	if err != nil {
		return Result{}, err
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = parts
	}
	if cfg.Partitions > parts {
		return Result{}, fmt.Errorf("loadgen: topic %q has %d partitions, %d asked for", cfg.Topic, parts, cfg.Partitions)
	}
	r := &run{cfg: cfg, cl: cl, log: log, maxBuf: int64(maxBuf), keys: newKeyDrawer(cfg.Keys, cfg.Seed),
		perPart: make([]atomic.Int64, cfg.Partitions)}
	return r.run(ctx)
}

// topicPartitions returns the partition count of topic.
func topicPartitions(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	tds, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err == nil {
		err = tds.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("loadgen: describe topic %q: %w", topic, err)
	}
	td, ok := tds[topic]
	if !ok || len(td.Partitions) == 0 {
		return 0, fmt.Errorf("loadgen: topic %q does not exist", topic)
	}
	return int32(len(td.Partitions)), nil
}

type run struct {
	cfg    Config
	cl     *kgo.Client
	log    *slog.Logger
	maxBuf int64
	keys   *keyDrawer

	acked, failed, outstanding atomic.Int64
	perPart                    []atomic.Int64

	// Ticks' record buffers whose records are all done, for reuse.
	freeMu sync.Mutex
	free   []*tickBuf

	errMu sync.Mutex
	err   error
}

func (r *run) fail(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

func (r *run) firstErr() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

func (r *run) promise(rec *kgo.Record, err error) {
	switch {
	case err == nil:
		r.acked.Add(1)
		r.perPart[rec.Partition].Add(1)
	case errors.Is(err, context.Canceled):
		r.failed.Add(1)
	default:
		r.failed.Add(1)
		r.fail(fmt.Errorf("loadgen: produce to %s/%d: %w", rec.Topic, rec.Partition, err))
	}
	// The client is done with rec (it reads no record after its promise):
	// the last of a tick's records frees the tick's buffer.
	if tb, _ := rec.Context.Value(tickKey{}).(*tickBuf); tb != nil && tb.left.Add(-1) == 0 {
		r.freeMu.Lock()
		r.free = append(r.free, tb)
		r.freeMu.Unlock()
	}
	r.outstanding.Add(-1)
}

// tickBuf holds the records of one tick and their keys and values, so that
// a tick costs no allocation once the buffers of the ticks in flight exist
// (before, a producer at 184,000 records/s spent a third of its CPU
// allocating records and collecting them, on the cores the broker and the
// query use). It is reused when its last record is done.
type tickBuf struct {
	recs []kgo.Record
	buf  []byte
	ctx  context.Context // each record's Context: the produce context, carrying the tickBuf
	left atomic.Int64    // records not done yet
}

// tickKey is the context key of a record's tickBuf.
type tickKey struct{}

// tickBuffer returns a free tickBuf with room for n records of about
// recBytes bytes each.
func (r *run) tickBuffer(ctx context.Context, n, recBytes int) *tickBuf {
	r.freeMu.Lock()
	var tb *tickBuf
	if k := len(r.free); k > 0 {
		tb, r.free[k-1] = r.free[k-1], nil
		r.free = r.free[:k-1]
	}
	r.freeMu.Unlock()
	if tb == nil {
		tb = &tickBuf{}
		tb.ctx = context.WithValue(ctx, tickKey{}, tb)
	}
	if cap(tb.recs) < n {
		tb.recs = make([]kgo.Record, n)
	}
	tb.recs = tb.recs[:n]
	if cap(tb.buf) < n*recBytes {
		tb.buf = make([]byte, 0, n*recBytes)
	}
	tb.buf = tb.buf[:0]
	return tb
}

func (r *run) run(ctx context.Context) (Result, error) {
	cfg := r.cfg
	tick := orDefault(cfg.Tick, DefaultTick)
	maxBehind := orDefault(cfg.MaxBehind, DefaultMaxBehind)
	// Records outlive ctx until the final flush.
	prodCtx, cancelProd := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelProd()

	r.log.Info("loadgen started", "topic", cfg.Topic, "profile", cfg.Profile.String(), "duration", cfg.Duration,
		"shape", cfg.Shape.Name(), "keys", cfg.Keys.String(), "partitions", cfg.Partitions)
	start := time.Now()
	end := start.Add(cfg.Duration)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()

	var res Result
	var issued, skipped int64
	var sec Second // the second being accumulated
	sec.Index = 1
	var secAcked0, secFailed0 int64
	secStart := time.Duration(0)
	var behind int64
	// The last acknowledgement is noted when the acknowledged count is seen
	// to move (each tick, and after the flush), not per record.
	var lastAck time.Time
	var ackSeen int64
	noteAcks := func(now time.Time) {
		if a := r.acked.Load(); a != ackSeen {
			ackSeen, lastAck = a, now
		}
	}
	recBytes := 64 // a record's key and value, at least: sizes the tick's buffer

	flushSecond := func(upTo time.Duration) {
		sec.Length = upTo - secStart
		sec.Asked = int64(cfg.Profile.Expected(upTo)) - int64(cfg.Profile.Expected(secStart))
		a, f := r.acked.Load(), r.failed.Load()
		sec.Acked, sec.Failed = a-secAcked0, f-secFailed0
		secAcked0, secFailed0 = a, f
		sec.Behind = behind
		sec.Buffered = r.cl.BufferedProduceRecords()
		res.Seconds = append(res.Seconds, sec)
		if cfg.OnSecond != nil {
			cfg.OnSecond(sec)
		}
		secStart = upTo
		sec = Second{Index: sec.Index + 1}
	}
	step := func(now time.Time) {
		if now.After(end) {
			now = end
		}
		elapsed := now.Sub(start)
		due := int64(cfg.Profile.Expected(elapsed)) - issued - skipped
		room := r.maxBuf - r.cl.BufferedProduceRecords()
		n := max(0, min(due, room))
		if n > 0 {
			// The tick's records share one buffer of bytes and one slice of
			// records, reused once all of them are done.
			tb := r.tickBuffer(prodCtx, int(n), recBytes)
			tb.left.Store(n)
			r.outstanding.Add(n)
			buf := tb.buf
			for i := range tb.recs {
				k := r.keys.next()
				start := len(buf)
				var kl int
				buf, kl = cfg.Shape.AppendRecord(buf, now, k) // earlier records keep the old array if it grows
				end := len(buf)
				tb.recs[i] = kgo.Record{Topic: cfg.Topic, Partition: int32(k % int(cfg.Partitions)), Timestamp: now,
					Key: buf[start : start+kl : start+kl], Value: buf[start+kl : end : end], Context: tb.ctx}
			}
			tb.buf = buf
			recBytes = max(recBytes, len(buf)/int(n)+1)
			for i := range tb.recs {
				r.cl.Produce(prodCtx, &tb.recs[i], r.promise) // room was checked: does not block
			}
		}
		issued += n
		sec.Issued += n
		behind = due - n
		if limit := int64(max(cfg.Profile.RateAt(elapsed), 1) * maxBehind.Seconds()); behind > limit {
			skip := behind - limit
			skipped += skip
			sec.Skipped += skip
			behind = limit
		}
	}
	for {
		if err := r.firstErr(); err != nil {
			break
		}
		var now time.Time
		select {
		case <-ctx.Done():
			now = time.Now()
		case now = <-ticker.C:
		}
		if ctx.Err() != nil && now.Before(end) {
			end = now
		}
		step(now)
		noteAcks(now)
		// The last second is reported after the final flush, with its
		// late acknowledgements.
		elapsed := min(now.Sub(start), end.Sub(start)-1)
		for time.Duration(sec.Index)*time.Second <= elapsed {
			flushSecond(time.Duration(sec.Index) * time.Second)
		}
		if !now.Before(end) {
			break
		}
	}
	res.Duration = end.Sub(start)
	// Flush: wait for the acknowledgements, then fail what is left.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(cfg.FlushTimeout, DefaultFlush))
	if err := r.cl.Flush(flushCtx); err != nil {
		r.log.Warn("loadgen: flush did not finish", "err", err)
	}
	noteAcks(time.Now())
	cancel()
	cancelProd()
	for wait := time.Now().Add(5 * time.Second); r.outstanding.Load() > 0 && time.Now().Before(wait); {
		time.Sleep(time.Millisecond)
		noteAcks(time.Now())
	}
	flushSecond(res.Duration)
	res.Asked = int64(cfg.Profile.Expected(res.Duration))
	res.Issued, res.Skipped = issued, skipped
	res.Acked, res.Failed = r.acked.Load(), r.failed.Load()
	if !lastAck.IsZero() {
		res.LastAck = lastAck.Sub(start)
	}
	res.PartitionCounts = make([]int64, len(r.perPart))
	for i := range r.perPart {
		res.PartitionCounts[i] = r.perPart[i].Load()
	}
	r.log.Info("loadgen stopped", "result", res.String())
	return res, r.firstErr()
}
