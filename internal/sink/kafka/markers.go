package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Commit markers. Every committed batch writes one marker record, in the
// batch's own transaction, to partition 0 of the commit topic:
//
//	key   = the query id
//	value = {"queryId":"…","batchId":N,"transactionalId":"…","timestampMs":…}
//
// A marker is visible to read_committed readers exactly when the batch's
// records are, so the highest marker batch id of a query is the last batch
// the sink committed. The commit topic is created compacted, so it keeps
// about one marker per query (the latest, which is the highest) plus one
// probe per query (below), however long the query runs.
//
// To learn the last committed batch the sink first takes over the
// transactional id (fencing any older producer and aborting its open
// transaction), then commits a probe record (key "probe/" + query id) and
// reads partition 0 with read_committed from the start up to the probe.
// Reaching the probe proves that every transaction that wrote to the
// partition before it has been decided, so no committed marker is missed.
// Another query's transaction left open on the partition (by a crash)
// delays this until the broker aborts it after its transaction timeout.

// marker is the JSON value of a commit marker or probe.
type marker struct {
	QueryID         string `json:"queryId"`
	BatchID         int64  `json:"batchId"`
	TransactionalID string `json:"transactionalId"`
	TimestampMs     int64  `json:"timestampMs"`
	Probe           bool   `json:"probe,omitempty"`
}

const probeKeyPrefix = "probe/"

// commitPartition is the partition of the commit topic markers go to.
const commitPartition = 0

// markerRecord builds the marker (or probe) record of this sink.
func (s *Sink) markerRecord(batchID int64, probe bool) (*kgo.Record, error) {
	m := marker{QueryID: s.queryID, BatchID: batchID, TransactionalID: s.cfg.TransactionalID, TimestampMs: time.Now().UnixMilli(), Probe: probe}
	v, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: encode commit marker: %w", err)
	}
	key := s.queryID
	if probe {
		key = probeKeyPrefix + s.queryID
	}
	return &kgo.Record{Topic: s.cfg.CommitTopic, Partition: commitPartition, Key: []byte(key), Value: v}, nil
}

// ensureCommitTopic creates the commit topic (one partition, compacted)
// unless it exists.
func (s *Sink) ensureCommitTopic(ctx context.Context, cl *kgo.Client) error {
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, s.cfg.CommitTopic)
	if err != nil {
		return fmt.Errorf("kafka sink: look up commit topic %q: %w", s.cfg.CommitTopic, err)
	}
	if d, ok := td[s.cfg.CommitTopic]; ok && d.Err == nil {
		if len(d.Partitions) == 0 {
			return fmt.Errorf("kafka sink: commit topic %q has no partitions", s.cfg.CommitTopic)
		}
		return nil
	}
	compact := "compact"
	_, err = adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, s.cfg.CommitTopic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafka sink: create commit topic %q (create it yourself with 1 partition and cleanup.policy=compact, or name another with the option \"sluice.commitTopic\"): %w", s.cfg.CommitTopic, err)
	}
	s.log.Info("kafka sink: created the commit topic", "topic", s.cfg.CommitTopic)
	return nil
}

// recover takes over the transactional id and reads the commit markers;
// it returns the last committed batch id of this query, or -1.
func (s *Sink) recover(ctx context.Context, cl *kgo.Client) (int64, error) {
	if err := s.ensureCommitTopic(ctx, cl); err != nil {
		return 0, err
	}
	// Loading the producer id fences older producers with our
	// transactional id and aborts a transaction they left open.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return 0, s.classify(fmt.Errorf("kafka sink: initialise transactional id %q: %w", s.cfg.TransactionalID, err))
	}
	probe, err := s.markerRecord(-1, true)
	if err != nil {
		return 0, err
	}
	if err := cl.BeginTransaction(); err != nil {
		return 0, s.classify(fmt.Errorf("kafka sink: begin probe transaction: %w", err))
	}
	if err := cl.ProduceSync(ctx, probe).FirstErr(); err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return 0, s.classify(fmt.Errorf("kafka sink: write probe to commit topic %q: %w", s.cfg.CommitTopic, err))
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return 0, s.classify(fmt.Errorf("kafka sink: commit probe transaction: %w", err))
	}
	return s.readMarkers(ctx, probe.Offset)
}

// readMarkers reads the commit partition with read_committed from its
// start through offset upTo (the probe) and returns the highest batch id
// among this query's markers, or -1.
func (s *Sink) readMarkers(ctx context.Context, upTo int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RecoveryTimeout)
	defer cancel()
	opts := append(s.connOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.CommitTopic: {commitPartition: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	rd, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, fmt.Errorf("kafka sink: create commit marker reader: %w", err)
	}
	defer rd.Close()
	last := int64(-1)
	for {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("kafka sink: read commit markers of query %s from %q up to offset %d: %w (another writer may hold a transaction open on the topic; it is aborted after its transaction timeout)", s.queryID, s.cfg.CommitTopic, upTo, err)
		}
		if err := fs.Err0(); err != nil {
			return 0, fmt.Errorf("kafka sink: read commit markers from %q: %w", s.cfg.CommitTopic, err)
		}
		done := false
		for _, r := range fs.Records() {
			if r.Offset >= upTo {
				done = true
			}
			if string(r.Key) != s.queryID {
				continue
			}
			var m marker
			if err := json.Unmarshal(r.Value, &m); err != nil || m.QueryID != s.queryID || m.Probe {
				return 0, fmt.Errorf("kafka sink: commit topic %q offset %d: unreadable marker for query %s: %q", s.cfg.CommitTopic, r.Offset, s.queryID, r.Value)
			}
			last = max(last, m.BatchID)
		}
		if done {
			return last, nil
		}
	}
}
