package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/source"
)

// txnGroup stands in for the Kafka source's group session: a
// transactional client whose transactions the sink begins and ends;
// revoke makes the next end abort, as a rebalance that overtook the batch
// makes the GroupTransactSession abort.
type txnGroup struct {
	cl     *kgo.Client
	revoke bool
}

func (g *txnGroup) Client() *kgo.Client  { return g.cl }
func (g *txnGroup) BeginGroupTxn() error { return g.cl.BeginTransaction() }
func (g *txnGroup) Member() string       { return "m1" }
func (g *txnGroup) SessionFenced() error { return errors.New("fenced") }
func (g *txnGroup) EndGroupTxn(ctx context.Context, commit bool) (bool, error) {
	commit = commit && !g.revoke
	g.revoke = false
	if !commit {
		if err := g.cl.AbortBufferedRecords(ctx); err != nil {
			return false, err
		}
	} else if err := g.cl.Flush(ctx); err != nil {
		return false, err
	}
	err := g.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
	return commit && err == nil, err
}

// deadLetterRows is a batch of the engine's dead-letter schema (reason,
// batchId, topic, partition, offset, key, value, input) for input records
// of topic "in" partition 0 at offsets.
func deadLetterRows(batchID int64, offsets ...int64) *batch.Batch {
	schema := batch.Schema{Fields: []batch.Field{
		{Name: "reason", Type: batch.String}, {Name: "batchId", Type: batch.Long},
		{Name: "topic", Type: batch.String, Nullable: true}, {Name: "partition", Type: batch.Int, Nullable: true},
		{Name: "offset", Type: batch.Long, Nullable: true}, {Name: "key", Type: batch.Binary, Nullable: true},
		{Name: "value", Type: batch.Binary, Nullable: true}, {Name: "input", Type: batch.String, Nullable: true},
	}}
	n := len(offsets)
	cols := make([]*batch.Column, len(schema.Fields))
	for i, f := range schema.Fields {
		cols[i] = batch.NewColumn(f.Type, n)
	}
	for _, off := range offsets {
		cols[0].AppendBytes([]byte("[CAST_INVALID_INPUT] bad"))
		cols[1].AppendInt(batchID)
		cols[2].AppendBytes([]byte("in"))
		cols[3].AppendInt(0)
		cols[4].AppendInt(off)
		cols[5].AppendNull()
		cols[6].AppendBytes([]byte("bad-" + string(rune('a'+off))))
		cols[7].AppendBytes([]byte("{}"))
	}
	return batch.New(schema, cols, n)
}

// TestGroupDeadLettersCommitWithTheBatch: in group mode the dead letters
// are produced in the batch's transaction, so a batch a rebalance
// overtook after its dead-letter sink "committed" leaves no dead letters,
// and the partition's next run writes them once. (Committed in their own
// transaction before the main sink's, as outside group mode, the
// overtaken batch's dead letters would stay and the re-run would add
// them again.)
func TestGroupDeadLettersCommitWithTheBatch(t *testing.T) {
	addr := startBroker(t)
	ctx := testCtx(t)
	main := newSink(t, addr, "q", nil)
	dlRaw := DeadLetters(newSink(t, addr, "q-deadletter", map[string]string{"topic": "alt"}))
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, main.GroupProducerOpts("m1")...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	grp := &txnGroup{cl: cl}
	main.UseGroup(grp)

	// Refused: a dead-letter sink that is not a Kafka topic on the sink's
	// cluster.
	if _, err := main.GroupDeadLetters(newSink(t, addr, "x", nil)); err == nil {
		t.Error("a plain Kafka sink (not a dead-letter sink) was accepted")
	}
	other := DeadLetters(newSink(t, addr, "q-deadletter", map[string]string{"topic": "alt", "kafka.bootstrap.servers": "elsewhere:9092"}))
	if _, err := main.GroupDeadLetters(other); err == nil || !strings.Contains(err.Error(), "cluster") {
		t.Errorf("a dead-letter topic on another cluster: %v", err)
	}
	dl, err := main.GroupDeadLetters(dlRaw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dl.NewWriter(ctx, 0, 0, batch.Schema{}); err == nil {
		t.Error("a dead-letter writer opened before the batch's transaction")
	}

	run := func(id int64) error {
		w, err := main.NewWriter(ctx, id, 0, valueSchema)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(ctx, values("good-b", "good-d")); err != nil {
			t.Fatal(err)
		}
		dw, err := dl.NewWriter(ctx, id, 0, batch.Schema{})
		if err != nil {
			t.Fatal(err)
		}
		if err := dw.Write(ctx, deadLetterRows(id, 0, 2)); err != nil {
			t.Fatal(err)
		}
		dm, err := dw.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := dl.Commit(ctx, id, []sink.Message{dm}); err != nil {
			t.Fatalf("batch %d: dead-letter commit: %v", id, err)
		}
		if err := dl.Commit(ctx, id, []sink.Message{m}); err == nil {
			t.Errorf("batch %d: the dead-letter sink accepted the main writer's message", id)
		}
		return main.Commit(ctx, id, []sink.Message{m})
	}
	grp.revoke = true
	if err := run(0); !errors.Is(err, source.ErrRevoked) {
		t.Fatalf("batch 0 overtaken by a rebalance: %v, want ErrRevoked", err)
	}
	if err := run(1); err != nil {
		t.Fatalf("batch 1: %v", err)
	}
	dead := readCommitted(t, addr, "alt")
	if got := valueCounts(dead); len(dead) != 2 || got["bad-a"] != 1 || got["bad-c"] != 1 {
		t.Fatalf("dead-letter topic: %v, want bad-a and bad-c once", got)
	}
	for _, r := range dead {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[HeaderDeadLetterBatch] != "1" || h[HeaderDeadLetterTopic] != "in" || !strings.Contains(h[HeaderDeadLetterReason], "CAST_INVALID_INPUT") {
			t.Errorf("dead letter %q: headers %v", r.Value, h)
		}
	}
	if got := valueCounts(readCommitted(t, addr, "out")); len(got) != 2 || got["good-b"] != 1 || got["good-d"] != 1 {
		t.Fatalf("output: %v, want good-b and good-d once", got)
	}
}
