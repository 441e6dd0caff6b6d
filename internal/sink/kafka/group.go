package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/kgolog"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/source"
)

// Group mode: with a Kafka source in group mode (sluice.group) the sink
// produces through the group's own client, a kgo.GroupTransactSession, so
// that each batch's transaction carries both its records and the
// consumed partitions' end offsets committed to the group (KIP-447). The
// group's committed offsets are then the only record of what was written:
// no commit markers are written or read, and batch ids play no part in
// idempotence. A rebalance that overtakes a batch makes the session abort
// its transaction; Commit then fails with source.ErrRevoked and the
// partitions' new owners start from the offsets the group has.

// GroupSource is what the sink needs from the source that owns the
// group's client (the Kafka source with sluice.group).
type GroupSource interface {
	// Client is the group's client (the session's), nil before it joined.
	Client() *kgo.Client
	// BeginGroupTxn and EndGroupTxn begin and end a batch's transaction;
	// EndGroupTxn with commit commits the batch's end offsets to the
	// group in it, and reports whether the transaction committed.
	BeginGroupTxn() error
	EndGroupTxn(ctx context.Context, commit bool) (committed bool, err error)
	// Member is this member's name.
	Member() string
	// SessionFenced reports that the broker fenced the group's
	// transaction (it outlived kafka.transaction.timeout.ms): the batch is
	// abandoned and the source replaces its transactional session before
	// the next one. An error means the member must stop instead.
	SessionFenced() error
}

// groupFenced handles a fencing error in group mode (classify): the first
// report of a fence tells the source, which renews the session once the
// engine abandoned the batch; the error returned wraps
// source.ErrRevoked, so that the engine does abandon it. The sink takes
// the new client at its next use (ensureClient). When the source refuses
// (fenced too often) the fence is final, as outside group mode.
func (s *Sink) groupFenced(err error) error {
	if s.fenceSeen.CompareAndSwap(false, true) {
		if ferr := s.grp.SessionFenced(); ferr != nil {
			s.fenceFinal.Store(true)
			return s.fencedFinal(fmt.Errorf("%w (%w)", err, ferr))
		}
		s.log.Warn("kafka sink: the group's transaction was fenced, most likely because it outlived kafka.transaction.timeout.ms; the batch is abandoned and the member rejoins with a fresh transactional session",
			"transactionalId", s.cfg.TransactionalID, "timeout", s.cfg.TransactionTimeout, "err", err)
	}
	if s.fenceFinal.Load() {
		return s.fencedFinal(err)
	}
	return fmt.Errorf("kafka sink: the group's transaction was fenced (kafka.transaction.timeout.ms %s passed?): %w: %w", s.cfg.TransactionTimeout, source.ErrRevoked, err)
}

// GroupProducerOpts are the producer settings the group's client needs to
// serve as this sink's producer. The transactional id is the sink's plus
// the member's name, so members never fence each other.
func (s *Sink) GroupProducerOpts(member string) []kgo.Opt {
	return append([]kgo.Opt{kgo.WithLogger(kgolog.New(s.log, "kafka sink client: "))}, s.txnOpts(s.cfg.TransactionalID+"-"+member)...)
}

// CheckGroupCluster returns an error unless the sink writes to the
// brokers the source reads from: one transaction cannot span clusters.
func (s *Sink) CheckGroupCluster(sourceBootstrap []string) error {
	norm := func(l []string) []string {
		out := make([]string, 0, len(l))
		for _, b := range l {
			out = append(out, strings.ToLower(strings.TrimSpace(b)))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(norm(sourceBootstrap), norm(s.cfg.Bootstrap)) {
		return fmt.Errorf(`kafka sink: with the source option "sluice.group" the sink must write to the cluster the source reads (its offsets are committed in the sink's transaction), but "kafka.bootstrap.servers" differ: source %q, sink %q`,
			strings.Join(sourceBootstrap, ","), strings.Join(s.cfg.Bootstrap, ","))
	}
	return nil
}

// UseGroup makes the sink produce through src's group client (call it
// before the query starts, after src.UseGroupTransactions with
// GroupProducerOpts).
func (s *Sink) UseGroup(src GroupSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grp = src
	s.cfg.TransactionalID += "-" + src.Member()
}

// groupConnectLocked takes the group's client. s.mu is held.
func (s *Sink) groupConnectLocked() error {
	cl := s.grp.Client()
	if cl == nil {
		return errors.New("kafka sink: the group's client is not connected yet")
	}
	s.cl, s.last, s.txn = cl, -1, nil
	s.log.Info("kafka sink: producing through the consumer group's transactional client", "transactionalId", s.cfg.TransactionalID)
	return nil
}

// beginLocked begins a transaction. s.mu is held.
func (s *Sink) beginLocked() error {
	if s.grp != nil {
		return s.grp.BeginGroupTxn()
	}
	return s.cl.BeginTransaction()
}

// groupAbortLocked aborts the open transaction of batch id. s.mu is held;
// s.txn is already cleared.
func (s *Sink) groupAbortLocked(ctx context.Context, id int64) error {
	if _, err := s.grp.EndGroupTxn(ctx, false); err != nil {
		if ferr := s.classify(err); errors.Is(ferr, ErrFenced) {
			return ferr
		}
		return fmt.Errorf("kafka sink: batch %d: abort transaction: %w", id, err)
	}
	s.log.Info("kafka sink: aborted transaction", "batch", id)
	return nil
}

// groupCommitLocked commits batch batchID's transaction with its offsets.
// s.mu is held.
func (s *Sink) groupCommitLocked(ctx context.Context, batchID int64, messages []sink.Message) error {
	if s.txn == nil && len(messages) == 0 {
		return nil // nothing read, nothing written: no offsets moved
	}
	if err := s.checkMessages(batchID, messages); err != nil {
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
	committed, err := s.grp.EndGroupTxn(ctx, true)
	if err != nil {
		return s.classify(fmt.Errorf("kafka sink: batch %d: commit transaction: %w", batchID, err))
	}
	if !committed {
		return fmt.Errorf("kafka sink: batch %d: transaction aborted: %w", batchID, source.ErrRevoked)
	}
	return nil
}

// Dead letters in group mode. The dead-letter topic's records are produced
// into the batch's group transaction, beside the output records and the
// consumed partitions' end offsets: the three commit together or not at
// all. A batch a rebalance or a crash overtakes leaves no dead letters
// behind (its transaction aborts), and the partition's next owner, which
// starts from the group's committed offsets, routes the same malformed
// records again in its own transaction — exactly once, as the output.
// (The single-process path commits the dead-letter sink's own
// transaction before the main sink's; in group mode that order would
// leave a revoked member's dead letters committed while its output is
// not, and the new owner would write them again.)

// GroupDeadLetters returns the sink the engine gives a group-mode query's
// dead letters when both the sink and the dead-letter sink are Kafka
// topics (dl is the dead-letter sink as the registry opened it,
// DeadLetters over a *Sink): its writers produce into s's open
// transaction, to dl's topic, with dl's record shape (the input's key and
// value, the reason and coordinates in headers); its Commit only checks
// that every dead-letter writer of the batch closed into that
// transaction, and s's Commit ends it. Producer settings are s's: the
// records travel on the group's client. dl must write to s's cluster.
func (s *Sink) GroupDeadLetters(dl sink.Sink) (sink.Sink, error) {
	kd, ok := dl.(kafkaDeadLetters)
	if !ok {
		return nil, fmt.Errorf("kafka sink: in group mode the dead-letter sink must be a Kafka topic (got %s)", dl.Description())
	}
	ds, ok := kd.Sink.(*Sink)
	if !ok {
		return nil, fmt.Errorf("kafka sink: in group mode the dead-letter sink must be a Kafka topic (got %s)", dl.Description())
	}
	if err := ds.CheckGroupCluster(s.cfg.Bootstrap); err != nil {
		return nil, fmt.Errorf(`dead-letter sink: in group mode the dead letters are written in the Kafka sink's transaction, so they must go to the sink's cluster: %w`, err)
	}
	if ds.cfg.Topic == "" {
		return nil, errors.New(`dead-letter sink: in group mode the Kafka dead-letter sink needs the option "topic"`)
	}
	return &groupDeadLetters{main: s, dl: ds}, nil
}

// groupDeadLetters is the dead-letter sink of a group-mode Kafka query
// (GroupDeadLetters).
type groupDeadLetters struct {
	main, dl *Sink
}

func (g *groupDeadLetters) Description() string { return g.dl.Description() }

// NewWriter opens a dead-letter writer in the batch's open transaction:
// the engine opens a task's sink writer (which begins the transaction)
// before its dead-letter writer.
func (g *groupDeadLetters) NewWriter(ctx context.Context, batchID int64, task int, _ batch.Schema) (sink.Writer, error) {
	p, err := newPlan(kafkaDeadLetterSchema, g.dl.cfg.Topic)
	if err != nil {
		return nil, err
	}
	s := g.main
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureClient(ctx); err != nil {
		return nil, err
	}
	t := s.txn
	if t == nil || t.batchID != batchID || !t.tasks[task] {
		return nil, fmt.Errorf("kafka sink: batch %d task %d: no open transaction of the batch to write dead letters into (the task's sink writer opens it)", batchID, task)
	}
	if t.dlTasks == nil {
		t.dlTasks = map[int]bool{}
	}
	if t.dlTasks[task] {
		return nil, fmt.Errorf("kafka sink: batch %d task %d: a second dead-letter writer in one transaction", batchID, task)
	}
	t.dlTasks[task] = true
	t.open++
	return kafkaDLWriter{&writer{s: s, cl: s.cl, plan: p, topic: g.dl.cfg.Topic, batchID: batchID, task: task, gen: t.gen, dl: true}}, nil
}

// Commit checks that messages are exactly the batch's dead-letter writers
// in the open transaction; the main sink's Commit commits them.
func (g *groupDeadLetters) Commit(_ context.Context, batchID int64, messages []sink.Message) error {
	s := g.main
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(messages) == 0 {
		return nil
	}
	t := s.txn
	switch {
	case t == nil || t.batchID != batchID:
		return fmt.Errorf("kafka sink: batch %d: no open transaction holds its dead letters (it was aborted); the batch must be run again", batchID)
	case t.failed != nil:
		return fmt.Errorf("kafka sink: batch %d: refusing to commit dead letters: %w", batchID, t.failed)
	case len(messages) != len(t.dlTasks):
		return fmt.Errorf("kafka sink: batch %d: %d dead-letter commit messages for %d dead-letter writers in the transaction", batchID, len(messages), len(t.dlTasks))
	}
	seen := map[int]bool{}
	for i, m := range messages {
		msg, ok := m.(message)
		if !ok || !msg.dl || msg.gen != t.gen || !t.dlTasks[msg.task] || seen[msg.task] {
			return fmt.Errorf("kafka sink: batch %d: dead-letter message %d does not belong to the open transaction", batchID, i)
		}
		seen[msg.task] = true
	}
	return nil
}

// Close closes the dead-letter sink's own (unused) state; the main sink
// owns the transaction.
func (g *groupDeadLetters) Close() error { return g.dl.Close() }
