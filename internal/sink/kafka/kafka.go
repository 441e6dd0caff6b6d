// Package kafka is sluice's exactly-once Kafka sink: each micro-batch's rows
// become Kafka records written in one Kafka transaction, together with a
// commit marker that tells a restarted query whether the batch was already
// committed.
//
// Rows map to records as in Spark's Kafka sink: a "value" column (string or
// binary) is required; "key" (string or binary), "headers" and "partition"
// (int) are optional; the topic is the option "topic" or, when the option is
// not set, a string "topic" column. Other columns are ignored.
//
// Exactly-once: one transactional producer (transactional id
// "sluice-<query id>", or the option "kafka.transactional.id") serves every
// task of the query. The first writer of batch N begins a transaction, all
// tasks produce into it, and Commit(N) adds a marker record {queryId,
// batchId} to the commit topic (option "sluice.commitTopic", default
// "__sluice_sink_commits", created compacted with one partition) and
// commits. Readers with isolation.level=read_committed see the batch's
// records and its marker together or not at all. When the sink starts (and
// after any error that leaves a commit's outcome unknown) it takes over the
// transactional id — which fences an older producer and aborts the
// transaction a crashed run left open — and reads the markers to find the
// last committed batch; a batch id at or below it is skipped (writers drop
// its rows and Commit returns nil), so a replayed batch is not written
// twice. See markers.go for how the markers are read safely.
//
// Memory is bounded: the producer buffers at most "sluice.maxBufferedRecords"
// records and "kafka.buffer.memory" bytes, and Write blocks until the broker
// has acknowledged enough to make room.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/kgolog"
	"github.com/sluice-stream/sluice/internal/sink"
)

// ErrFenced is wrapped by every error the sink returns once another
// producer with the same transactional id has taken over (typically a
// second run of the same query). A fenced sink stays unusable.
var ErrFenced = errors.New("kafka sink fenced")

// errClosed is returned by a closed sink.
var errClosed = errors.New("kafka sink: closed")

// errWriterAborted marks a transaction whose writer was aborted.
var errWriterAborted = errors.New("a task writer was aborted")

// Sink is the Kafka sink. Its methods are safe for concurrent use, as the
// engine calls NewWriter and the writers from several tasks at once.
type Sink struct {
	cfg     *Config
	queryID string
	log     *slog.Logger
	extra   []kgo.Opt

	fenced atomic.Pointer[error]
	// fenceSeen: group mode's client was fenced (groupFenced) and is
	// replaced at the next ensureClient; fenceFinal: the source refused
	// to recover, the fence is final.
	fenceSeen, fenceFinal atomic.Bool

	mu     sync.Mutex
	cl     *kgo.Client // nil until first needed, and after a reset
	last   int64       // last committed batch id (-1: none); valid while cl != nil
	txn    *txn        // the open transaction, if any
	gen    uint64      // transaction generation counter
	closed bool
	// skipLogged is the last skipped batch id that was logged.
	skipLogged int64

	// grp, in group mode, is the source whose group client the sink
	// produces through (UseGroup, group.go).
	grp GroupSource

	// beforeEnd, set by tests, runs in Commit after the marker is flushed
	// and before the transaction is ended; an error from it leaves the
	// transaction open, as a crash would.
	beforeEnd func() error
}

// txn is the state of the open transaction.
type txn struct {
	batchID int64
	gen     uint64
	tasks   map[int]bool // tasks that opened a writer in this transaction
	// dlTasks are the tasks that opened a dead-letter writer in this
	// transaction (group mode: GroupDeadLetters).
	dlTasks map[int]bool
	open    int // writers neither closed nor aborted

	failed error // first writer failure
}

// message is a writer's commit message.
type message struct {
	gen  uint64
	task int
	rows int64
	dl   bool // a dead-letter writer's (GroupDeadLetters)
}

// New returns a Kafka sink for the query queryID from its options (see the
// package documentation and ParseConfig). It connects lazily, at the first
// NewWriter or Commit. TLS and SASL settings come from the options (see
// package kafkaauth); extraOpts are added to every Kafka client the sink
// creates after the options derived from opts, so they can add or override
// client settings.
func New(opts map[string]string, queryID string, logger *slog.Logger, extraOpts ...kgo.Opt) (*Sink, error) {
	cfg, err := ParseConfig(opts, queryID)
	if err != nil {
		return nil, err
	}
	return build(cfg, queryID, logger, extraOpts...), nil
}

func build(cfg *Config, queryID string, logger *slog.Logger, extraOpts ...kgo.Opt) *Sink {
	if logger == nil {
		logger = slog.Default()
	}
	if len(cfg.Ignored) > 0 {
		logger.Warn("kafka sink: ignoring producer options it does not support", "options", cfg.Ignored)
	}
	return &Sink{cfg: cfg, queryID: queryID, log: logger, extra: extraOpts, last: -1, skipLogged: math.MinInt64}
}

// Config returns the parsed options.
func (s *Sink) Config() *Config { return s.cfg }

// Description implements sink.Sink.
func (s *Sink) Description() string {
	if s.cfg.Topic != "" {
		return "KafkaSink[" + s.cfg.Topic + "]"
	}
	return "KafkaSink[topic column]"
}

// connOpts are the options every client of the sink shares.
func (s *Sink) connOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Bootstrap...),
		kgo.ClientID(s.cfg.ClientID),
		kgo.WithLogger(kgolog.New(s.log, "kafka sink client: ")),
	}
	opts = append(opts, s.cfg.Security.Opts()...)
	return append(opts, s.extra...)
}

// producerOpts configure the transactional producer.
func (s *Sink) producerOpts() []kgo.Opt {
	return append(s.connOpts(), s.txnOpts(s.cfg.TransactionalID)...)
}

// txnOpts are the producer settings of a transactional producer with id
// txnID.
func (s *Sink) txnOpts(txnID string) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(s.cfg.TransactionTimeout),
		kgo.RecordPartitioner(partitioner{kgo.UniformBytesPartitioner(64<<10, true, true, nil)}),
		kgo.ProducerBatchCompression(compressionCodec(s.cfg.Compression)),
		kgo.ProducerBatchMaxBytes(s.cfg.BatchMaxBytes),
		kgo.MaxBufferedRecords(s.cfg.MaxBufferedRecords),
		kgo.MaxBufferedBytes(int(min(s.cfg.MaxBufferedBytes, math.MaxInt32))),
		kgo.RecordDeliveryTimeout(s.cfg.DeliveryTimeout),
		kgo.ProduceRequestTimeout(s.cfg.RequestTimeout),
	}
	if s.cfg.Linger > 0 {
		opts = append(opts, kgo.ProducerLinger(s.cfg.Linger))
	}
	if s.cfg.AutoCreateTopics {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	return opts
}

// isFenced reports whether err says another producer owns our
// transactional id now.
func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// classify turns a fencing error into a permanent ErrFenced one, and
// explains authentication and TLS failures (scrubbing secrets).
func (s *Sink) classify(err error) error {
	if err == nil {
		return nil
	}
	if !isFenced(err) {
		return s.cfg.Security.Explain(err)
	}
	if s.grp != nil {
		return s.groupFenced(err)
	}
	return s.fencedFinal(err)
}

// fencedFinal makes the sink unusable after a fence and returns the
// ErrFenced error it returns from now on.
func (s *Sink) fencedFinal(err error) error {
	fe := fmt.Errorf("%w: transactional id %q of query %s is now used by another producer (is the query running twice?): %w",
		ErrFenced, s.cfg.TransactionalID, s.queryID, err)
	if s.fenced.CompareAndSwap(nil, &fe) {
		s.log.Error("kafka sink: fenced by another producer; the sink stops", "transactionalId", s.cfg.TransactionalID, "err", err)
	}
	return *s.fenced.Load()
}

// ensureClient connects and recovers the last committed batch id if the
// sink has no client. s.mu is held.
func (s *Sink) ensureClient(ctx context.Context) error {
	if fe := s.fenced.Load(); fe != nil {
		return *fe
	}
	if s.closed {
		return errClosed
	}
	if s.grp != nil && s.cl != nil && s.grp.Client() != s.cl {
		// The source renewed its session after a fence: take the new
		// client (the old transaction's writers are gone with the batch).
		s.cl, s.txn = nil, nil
		s.fenceSeen.Store(false)
	}
	if s.cl != nil {
		return nil
	}
	if s.grp != nil {
		return s.groupConnectLocked()
	}
	cl, err := kgo.NewClient(s.producerOpts()...)
	if err != nil {
		return fmt.Errorf("kafka sink: create producer: %w", s.cfg.Security.Scrub(err))
	}
	last, err := s.recover(ctx, cl)
	if err != nil {
		cl.Close()
		return s.classify(err)
	}
	s.cl, s.last, s.txn = cl, last, nil
	s.log.Info("kafka sink: connected", "transactionalId", s.cfg.TransactionalID, "commitTopic", s.cfg.CommitTopic,
		"security", s.cfg.Security.String(), "lastCommittedBatch", last)
	return nil
}

// resetLocked drops the client; the next use creates a new one, which
// fences this one's leftovers and re-reads the markers. s.mu is held.
func (s *Sink) resetLocked() {
	if s.grp != nil {
		s.txn = nil // the source owns the group's client
		return
	}
	if s.cl != nil {
		s.cl.Close()
	}
	s.cl, s.txn = nil, nil
}

// abortLocked aborts the open transaction. A failed abort resets the
// client (the next one aborts the transaction by fencing); only fencing is
// returned as an error. s.mu is held.
func (s *Sink) abortLocked(ctx context.Context) error {
	if s.txn == nil || s.cl == nil {
		s.txn = nil
		return nil
	}
	id := s.txn.batchID
	s.txn = nil
	if s.grp != nil {
		return s.groupAbortLocked(ctx, id)
	}
	err := s.cl.AbortBufferedRecords(ctx)
	if err == nil {
		err = s.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	if err != nil {
		if ferr := s.classify(err); errors.Is(ferr, ErrFenced) {
			s.resetLocked()
			return ferr
		}
		s.log.Warn("kafka sink: aborting the transaction failed; reconnecting, which aborts it", "batch", id, "err", err)
		s.resetLocked()
		return nil
	}
	s.log.Info("kafka sink: aborted transaction", "batch", id)
	return nil
}

// LastCommittedBatch connects if needed and returns the id of the last
// batch this query committed to Kafka, or -1.
func (s *Sink) LastCommittedBatch(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureClient(ctx); err != nil {
		return 0, err
	}
	return s.last, nil
}

// NewWriter implements sink.Sink. It validates the schema, and the first
// writer of a batch begins the batch's transaction. A second writer for a
// task that already has one in the open transaction means the batch is
// being re-run: the open transaction is aborted first.
func (s *Sink) NewWriter(ctx context.Context, batchID int64, task int, schema batch.Schema) (sink.Writer, error) {
	p, err := newPlan(schema, s.cfg.Topic)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureClient(ctx); err != nil {
		return nil, err
	}
	if t := s.txn; t != nil && (t.batchID != batchID || t.tasks[task]) {
		s.log.Info("kafka sink: dropping the open transaction of an earlier attempt", "openBatch", t.batchID, "batch", batchID, "task", task)
		if err := s.abortLocked(ctx); err != nil {
			return nil, err
		}
		if err := s.ensureClient(ctx); err != nil {
			return nil, err
		}
	}
	if batchID <= s.last {
		if s.skipLogged != batchID {
			s.skipLogged = batchID
			s.log.Info("kafka sink: batch already committed to Kafka; skipping its rows", "batch", batchID, "lastCommitted", s.last)
		}
		return &skipWriter{}, nil
	}
	if s.txn == nil {
		if err := s.beginLocked(); err != nil {
			err = s.classify(fmt.Errorf("kafka sink: batch %d: begin transaction: %w", batchID, err))
			s.resetLocked()
			return nil, err
		}
		s.gen++
		s.txn = &txn{batchID: batchID, gen: s.gen, tasks: map[int]bool{}}
	}
	s.txn.tasks[task] = true
	s.txn.open++
	return &writer{s: s, cl: s.cl, plan: p, topic: s.cfg.Topic, batchID: batchID, task: task, gen: s.txn.gen}, nil
}

// writerDone records that a writer of transaction gen closed (err nil) or
// failed.
func (s *Sink) writerDone(gen uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.txn; t != nil && t.gen == gen {
		t.open--
		if err != nil && t.failed == nil {
			t.failed = err
		}
	}
}

// Commit implements sink.Sink: it writes the batch's marker and commits
// the transaction. A batch id at or below the last committed one returns
// nil without writing. If the commit's outcome is unknown the error is
// returned and the sink reconnects on next use, learning from the markers
// whether the batch made it.
func (s *Sink) Commit(ctx context.Context, batchID int64, messages []sink.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureClient(ctx); err != nil {
		return err
	}
	if s.grp != nil {
		return s.groupCommitLocked(ctx, batchID, messages)
	}
	if batchID <= s.last {
		return nil
	}
	if s.txn == nil && len(messages) == 0 {
		// A batch without tasks: commit its marker alone.
		if err := s.cl.BeginTransaction(); err != nil {
			err = s.classify(fmt.Errorf("kafka sink: batch %d: begin transaction: %w", batchID, err))
			s.resetLocked()
			return err
		}
		s.gen++
		s.txn = &txn{batchID: batchID, gen: s.gen, tasks: map[int]bool{}}
	}
	if err := s.checkMessages(batchID, messages); err != nil {
		if aerr := s.abortLocked(ctx); aerr != nil {
			return aerr
		}
		return err
	}
	rec, err := s.markerRecord(batchID, false)
	if err == nil {
		if err = s.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			err = fmt.Errorf("kafka sink: batch %d: write commit marker to %q: %w", batchID, s.cfg.CommitTopic, err)
		}
	}
	if err == nil {
		if err = s.cl.Flush(ctx); err != nil {
			err = fmt.Errorf("kafka sink: batch %d: flush: %w", batchID, err)
		}
	}
	if err != nil {
		err = s.classify(err)
		if aerr := s.abortLocked(ctx); aerr != nil {
			return aerr
		}
		return err
	}
	if s.beforeEnd != nil {
		if err := s.beforeEnd(); err != nil {
			return err
		}
	}
	s.txn = nil
	if err := s.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		err = s.classify(fmt.Errorf("kafka sink: batch %d: commit transaction: %w", batchID, err))
		if !errors.Is(err, ErrFenced) {
			// The outcome may be unknown; franz-go's documented recovery
			// is an abort attempt. Reconnecting then reads the markers.
			_ = s.cl.EndTransaction(ctx, kgo.TryAbort)
		}
		s.resetLocked()
		return err
	}
	s.last = batchID
	return nil
}

// checkMessages verifies that messages are exactly the successful writers
// of the open transaction for batchID. s.mu is held.
func (s *Sink) checkMessages(batchID int64, messages []sink.Message) error {
	t := s.txn
	if t == nil {
		return fmt.Errorf("kafka sink: batch %d: no open transaction holds its records (it was aborted or the producer reconnected); the batch must be run again", batchID)
	}
	switch {
	case t.batchID != batchID:
		return fmt.Errorf("kafka sink: commit of batch %d, but the open transaction is batch %d's", batchID, t.batchID)
	case t.failed != nil:
		return fmt.Errorf("kafka sink: batch %d: refusing to commit: %w", batchID, t.failed)
	case t.open != 0:
		return fmt.Errorf("kafka sink: batch %d: refusing to commit while %d writer(s) are still open", batchID, t.open)
	case len(messages) != len(t.tasks):
		return fmt.Errorf("kafka sink: batch %d: %d commit messages for %d task writers in the transaction", batchID, len(messages), len(t.tasks))
	}
	seen := map[int]bool{}
	for i, m := range messages {
		msg, ok := m.(message)
		if !ok || msg.dl {
			return fmt.Errorf("kafka sink: batch %d: message %d is %T, not from this sink (or from a skipped batch)", batchID, i, m)
		}
		if msg.gen != t.gen || !t.tasks[msg.task] || seen[msg.task] {
			return fmt.Errorf("kafka sink: batch %d: message %d (task %d) does not belong to the open transaction", batchID, i, msg.task)
		}
		seen[msg.task] = true
	}
	return nil
}

// Close implements sink.Sink: it aborts an open transaction and closes
// the producer.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.cl == nil {
		return nil
	}
	var err error
	if s.txn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.abortLocked(ctx)
		cancel()
	}
	s.resetLocked()
	return err
}

// writer produces one task's rows into the open transaction.
type writer struct {
	s       *Sink
	cl      *kgo.Client
	plan    plan
	topic   string
	batchID int64
	task    int
	gen     uint64
	dl      bool // writes dead letters into the group transaction

	mu      sync.Mutex
	pending int           // records produced and not yet acknowledged
	wake    chan struct{} // closed when pending drops to 0, if Close waits
	err     error         // first produce failure
	rows    int64
	done    bool
}

func (w *writer) promise(r *kgo.Record, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending--
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("produce to topic %q partition %d: %w", r.Topic, r.Partition, err)
	}
	if w.pending == 0 && w.wake != nil {
		close(w.wake)
		w.wake = nil
	}
}

func (w *writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errors.New("write after close")
	}
	return w.err
}

// Write implements sink.Writer. Produce blocks while the producer's buffer
// is full, so Write applies backpressure instead of buffering.
func (w *writer) Write(ctx context.Context, b *batch.Batch) error {
	for i := 0; i < b.N; i++ {
		if err := w.failed(); err != nil {
			return w.s.classify(fmt.Errorf("kafka sink: batch %d task %d: %w", w.batchID, w.task, err))
		}
		rec, err := w.plan.record(b, i, w.topic)
		if err != nil {
			return fmt.Errorf("kafka sink: batch %d task %d: %w", w.batchID, w.task, err)
		}
		w.mu.Lock()
		w.pending++
		w.rows++
		w.mu.Unlock()
		w.cl.Produce(ctx, rec, w.promise)
	}
	return nil
}

// Close implements sink.Writer: it waits until the broker has acknowledged
// every record of the task.
func (w *writer) Close(ctx context.Context) (sink.Message, error) {
	w.mu.Lock()
	w.done = true
	var wait chan struct{}
	if w.pending > 0 {
		w.wake = make(chan struct{})
		wait = w.wake
	}
	w.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			err := fmt.Errorf("kafka sink: batch %d task %d: waiting for acknowledgements: %w", w.batchID, w.task, ctx.Err())
			w.s.writerDone(w.gen, err)
			return nil, err
		}
	}
	w.mu.Lock()
	err, rows := w.err, w.rows
	w.mu.Unlock()
	if err != nil {
		err = w.s.classify(fmt.Errorf("kafka sink: batch %d task %d: %w", w.batchID, w.task, err))
		w.s.writerDone(w.gen, err)
		return nil, err
	}
	w.s.writerDone(w.gen, nil)
	return message{gen: w.gen, task: w.task, rows: rows, dl: w.dl}, nil
}

// Abort implements sink.Writer: the transaction can no longer commit; the
// next attempt aborts it.
func (w *writer) Abort(context.Context) {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
	w.s.writerDone(w.gen, errWriterAborted)
}

// skipWriter drops the rows of a batch that is already committed.
type skipWriter struct{}

func (skipWriter) Write(context.Context, *batch.Batch) error   { return nil }
func (skipWriter) Close(context.Context) (sink.Message, error) { return skipped{}, nil }
func (skipWriter) Abort(context.Context)                       {}

// skipped is the commit message of a skipped batch's writer.
type skipped struct{}
