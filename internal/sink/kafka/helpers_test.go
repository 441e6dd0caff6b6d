package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/sink"
)

// startBroker starts an embedded broker with topics "out" (3 partitions)
// and "alt" (2 partitions) and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	b := brokertest.StartConfig(t, broker.Config{Topics: []broker.TopicSpec{{Name: "out", Partitions: 3}, {Name: "alt", Partitions: 2}}})
	return b.Addr()
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newSink creates a sink for queryID writing to topic "out"; extra adds
// options, and an empty value deletes one.
func newSink(t *testing.T, addr, queryID string, extra map[string]string) *Sink {
	t.Helper()
	opts := map[string]string{"kafka.bootstrap.servers": addr, "topic": "out", "kafka.linger.ms": "1"}
	for k, v := range extra {
		if v == "" {
			delete(opts, k)
		} else {
			opts[k] = v
		}
	}
	s, err := New(opts, queryID, quiet())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// abandon closes the producer without ending its transaction, as a crash
// would, and makes the sink unusable.
func (s *Sink) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		s.cl.Close()
	}
	s.cl, s.txn, s.closed = nil, nil, true
}

var valueSchema = batch.Schema{Fields: []batch.Field{{Name: "value", Type: batch.String, Nullable: true}}}

// values builds a batch with one string "value" column.
func values(vs ...string) *batch.Batch {
	c := batch.NewColumn(batch.String, len(vs))
	for _, v := range vs {
		c.AppendBytes([]byte(v))
	}
	return batch.New(valueSchema, []*batch.Column{c}, len(vs))
}

// batchRows returns the rows of batch id: tasks × n values named after
// the batch, task and row.
func batchRows(id int64, tasks, n int) [][]*batch.Batch {
	out := make([][]*batch.Batch, tasks)
	for t := range tasks {
		var vs []string
		for i := range n {
			vs = append(vs, fmt.Sprintf("b%d-t%d-r%d", id, t, i))
		}
		// Two chunks per task, to exercise several Writes.
		h := len(vs) / 2
		out[t] = []*batch.Batch{values(vs[:h]...), values(vs[h:]...)}
	}
	return out
}

// runBatch drives s as the engine does: one writer per task, concurrently,
// then Commit with the messages in task order.
func runBatch(ctx context.Context, s sink.Sink, id int64, tasks [][]*batch.Batch) error {
	msgs := make([]sink.Message, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for ti, chunks := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			schema := valueSchema
			if len(chunks) > 0 {
				schema = chunks[0].Schema
			}
			w, err := s.NewWriter(ctx, id, ti, schema)
			if err != nil {
				errs[ti] = err
				return
			}
			for _, c := range chunks {
				if err := w.Write(ctx, c); err != nil {
					w.Abort(ctx)
					errs[ti] = err
					return
				}
			}
			msgs[ti], errs[ti] = w.Close(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return s.Commit(ctx, id, msgs)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const sentinelKey = "__test_end__"

// readCommitted returns every record of topic that a read_committed
// consumer sees, in partition then offset order. To know it has read
// everything it first appends a non-transactional sentinel to every
// partition and reads until it meets them; sentinels are not returned.
// opts are extra client options (credentials).
func readCommitted(t *testing.T, addr, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ctx := testCtx(t)
	adm := kadm.NewClient(brokertest.Client(t, addr, opts...))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	mark := fmt.Sprint(time.Now().UnixNano())
	var sentinels []*kgo.Record
	ends.Each(func(o kadm.ListedOffset) {
		sentinels = append(sentinels, &kgo.Record{Topic: topic, Partition: o.Partition, Key: []byte(sentinelKey), Value: []byte(mark)})
	})
	pr := brokertest.Client(t, addr, append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err := pr.ProduceSync(ctx, sentinels...).FirstErr(); err != nil {
		t.Fatalf("produce sentinels to %s: %v", topic, err)
	}

	rd := brokertest.Client(t, addr, append(opts,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	var out []*kgo.Record
	seen := map[int32]bool{}
	for len(seen) < len(sentinels) {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: saw the sentinel in %d of %d partitions before %v", topic, len(seen), len(sentinels), ctx.Err())
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		for _, r := range fs.Records() {
			if string(r.Key) == sentinelKey {
				if string(r.Value) == mark {
					seen[r.Partition] = true
				}
				continue
			}
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// valueCounts counts the records by value.
func valueCounts(rs []*kgo.Record) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[string(r.Value)]++
	}
	return m
}

// wantOnce checks that the read records are exactly the rows of batches,
// each once.
func wantOnce(t *testing.T, rs []*kgo.Record, batches ...[][]*batch.Batch) {
	t.Helper()
	want := map[string]int{}
	for _, tasks := range batches {
		for _, chunks := range tasks {
			for _, c := range chunks {
				for i := range c.N {
					want[string(c.Columns[0].Bytes[i])]++
				}
			}
		}
	}
	got := valueCounts(rs)
	for v, n := range got {
		if want[v] != n {
			t.Errorf("value %q read %d times, want %d", v, n, want[v])
		}
	}
	for v, n := range want {
		if got[v] == 0 {
			t.Errorf("value %q (wanted %d times) is missing", v, n)
		}
	}
	if len(rs) != sumCounts(want) {
		t.Errorf("read %d records, want %d", len(rs), sumCounts(want))
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
