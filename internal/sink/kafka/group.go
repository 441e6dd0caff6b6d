package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

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
}

// GroupProducerOpts are the producer settings the group's client needs to
// serve as this sink's producer. The transactional id is the sink's plus
// the member's name, so members never fence each other.
func (s *Sink) GroupProducerOpts(member string) []kgo.Opt {
	return append([]kgo.Opt{kgo.WithLogger(kgoLogger{s.log})}, s.txnOpts(s.cfg.TransactionalID+"-"+member)...)
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
