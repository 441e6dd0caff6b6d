package kafka

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/kafkaauth"
	"github.com/sluice-stream/sluice/internal/kafkaauth/authtest"
	"github.com/sluice-stream/sluice/internal/sink"
)

var _ sink.Sink = (*Sink)(nil)

func TestReplayedBatchIsWrittenOnce(t *testing.T) {
	addr := startBroker(t)
	ctx := testCtx(t)
	s1 := newSink(t, addr, "q-replay", nil)
	b := [][][]*batch.Batch{batchRows(0, 2, 6), batchRows(1, 2, 6), batchRows(2, 2, 6), batchRows(3, 3, 4)}
	for id := int64(0); id < 3; id++ {
		if err := runBatch(ctx, s1, id, b[id]); err != nil {
			t.Fatalf("batch %d: %v", id, err)
		}
	}
	// The same instance replays batch 2 (same id, same rows).
	if err := runBatch(ctx, s1, 2, b[2]); err != nil {
		t.Fatalf("replay of batch 2 on the same sink: %v", err)
	}
	// A new instance (a restarted query) replays it again, then goes on.
	s2 := newSink(t, addr, "q-replay", nil)
	last, err := s2.LastCommittedBatch(ctx)
	if err != nil || last != 2 {
		t.Fatalf("LastCommittedBatch = %d, %v; want 2", last, err)
	}
	if err := runBatch(ctx, s2, 2, b[2]); err != nil {
		t.Fatalf("replay of batch 2 on a new sink: %v", err)
	}
	if err := runBatch(ctx, s2, 3, b[3]); err != nil {
		t.Fatalf("batch 3: %v", err)
	}
	wantOnce(t, readCommitted(t, addr, "out"), b...)
	if last, _ := s2.LastCommittedBatch(ctx); last != 3 {
		t.Errorf("LastCommittedBatch after batch 3 = %d, want 3", last)
	}
}

func TestAbortedAttemptLeavesNothing(t *testing.T) {
	// Each case runs a first attempt of batch 0 whose task 1 fails, then
	// ends it a different way; the retry must be the only visible output.
	cases := []struct {
		name string
		// open: the attempt's transaction is still open after finish (a
		// read_committed reader blocks at it, so it is not read then).
		open bool
		// finish ends the failed attempt and returns the sink to retry on.
		finish func(t *testing.T, s *Sink, addr string) *Sink
	}{
		{"retry on the same sink", true, func(t *testing.T, s *Sink, addr string) *Sink { return s }},
		{"close the sink, retry on a new one", false, func(t *testing.T, s *Sink, addr string) *Sink {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return newSink(t, addr, "q-abort", nil)
		}},
		{"commit refused, then retry", false, func(t *testing.T, s *Sink, addr string) *Sink {
			err := s.Commit(testCtx(t), 0, []sink.Message{message{}, message{}})
			if err == nil {
				t.Fatal("Commit after a writer abort succeeded")
			}
			return s
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := startBroker(t)
			ctx := testCtx(t)
			s := newSink(t, addr, "q-abort", nil)
			rows := batchRows(0, 2, 10)
			w0, err := s.NewWriter(ctx, 0, 0, valueSchema)
			if err != nil {
				t.Fatal(err)
			}
			w1, err := s.NewWriter(ctx, 0, 1, valueSchema)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range rows[0] {
				if err := w0.Write(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := w1.Write(ctx, rows[1][0]); err != nil {
				t.Fatal(err)
			}
			if _, err := w0.Close(ctx); err != nil {
				t.Fatal(err)
			}
			w1.Abort(ctx)

			s = tc.finish(t, s, addr)
			if !tc.open {
				if got := readCommitted(t, addr, "out"); len(got) != 0 {
					t.Fatalf("after the failed attempt a read_committed reader sees %d records, want 0", len(got))
				}
			}
			if err := runBatch(ctx, s, 0, rows); err != nil {
				t.Fatalf("retry: %v", err)
			}
			wantOnce(t, readCommitted(t, addr, "out"), rows)
		})
	}
}

var errCrash = errors.New("simulated crash")

func TestCrashRecovery(t *testing.T) {
	cases := []struct {
		name string
		// crash runs batch 2 on s1 up to the simulated crash point.
		crash func(t *testing.T, s1 *Sink, rows [][]*batch.Batch)
		// abandon: s1's client is closed without ending its transaction
		// (a dead process); otherwise s1 stays alive and gets fenced.
		abandon bool
		// wantLast is the last committed batch the new sink finds.
		wantLast int64
	}{
		{
			name: "between produce and commit", abandon: true, wantLast: 1,
			crash: func(t *testing.T, s1 *Sink, rows [][]*batch.Batch) {
				writeTasks(t, s1, 2, rows)
			},
		},
		{
			name: "after the marker, before the transaction ends", abandon: true, wantLast: 1,
			crash: func(t *testing.T, s1 *Sink, rows [][]*batch.Batch) {
				s1.beforeEnd = func() error { return errCrash }
				if err := s1.Commit(testCtx(t), 2, writeTasks(t, s1, 2, rows)); !errors.Is(err, errCrash) {
					t.Fatalf("Commit = %v, want the simulated crash", err)
				}
			},
		},
		{
			name: "after the Kafka commit, before the checkpoint", abandon: true, wantLast: 2,
			crash: func(t *testing.T, s1 *Sink, rows [][]*batch.Batch) {
				if err := s1.Commit(testCtx(t), 2, writeTasks(t, s1, 2, rows)); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "old producer still alive", abandon: false, wantLast: 1,
			crash: func(t *testing.T, s1 *Sink, rows [][]*batch.Batch) {
				writeTasks(t, s1, 2, rows)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := startBroker(t)
			ctx := testCtx(t)
			b := [][][]*batch.Batch{batchRows(0, 2, 4), batchRows(1, 2, 4), batchRows(2, 2, 4), batchRows(3, 2, 4)}
			s1 := newSink(t, addr, "q-crash", nil)
			for id := int64(0); id < 2; id++ {
				if err := runBatch(ctx, s1, id, b[id]); err != nil {
					t.Fatal(err)
				}
			}
			tc.crash(t, s1, b[2])
			if tc.abandon {
				s1.abandon()
			}

			s2 := newSink(t, addr, "q-crash", nil)
			last, err := s2.LastCommittedBatch(ctx)
			if err != nil || last != tc.wantLast {
				t.Fatalf("LastCommittedBatch = %d, %v; want %d", last, err, tc.wantLast)
			}
			if err := runBatch(ctx, s2, 2, b[2]); err != nil {
				t.Fatalf("replay of batch 2: %v", err)
			}
			if err := runBatch(ctx, s2, 3, b[3]); err != nil {
				t.Fatalf("batch 3: %v", err)
			}
			if !tc.abandon {
				// The old producer wakes up and tries to finish batch 2.
				err := s1.Commit(ctx, 2, []sink.Message{message{gen: s1.gen, task: 0}, message{gen: s1.gen, task: 1}})
				if !errors.Is(err, ErrFenced) {
					t.Fatalf("commit by the fenced producer = %v, want ErrFenced", err)
				}
				if _, err := s1.NewWriter(ctx, 4, 0, valueSchema); !errors.Is(err, ErrFenced) {
					t.Fatalf("NewWriter on the fenced sink = %v, want ErrFenced", err)
				}
			}
			wantOnce(t, readCommitted(t, addr, "out"), b...)
		})
	}
}

// writeTasks opens, writes and closes one writer per task of batch id and
// returns their messages, without committing.
func writeTasks(t *testing.T, s *Sink, id int64, tasks [][]*batch.Batch) []sink.Message {
	t.Helper()
	ctx := testCtx(t)
	var msgs []sink.Message
	for ti, chunks := range tasks {
		w, err := s.NewWriter(ctx, id, ti, valueSchema)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chunks {
			if err := w.Write(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		m, err := w.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func TestQueriesShareTheCommitTopic(t *testing.T) {
	addr := startBroker(t)
	ctx := testCtx(t)
	runs := map[string]int64{"qa": 3, "qb": 1, "qc": 0}
	for q, n := range runs {
		s := newSink(t, addr, q, map[string]string{"sluice.commitTopic": "shared_commits"})
		for id := range n {
			if err := runBatch(ctx, s, id, [][]*batch.Batch{{values(q)}}); err != nil {
				t.Fatalf("%s batch %d: %v", q, id, err)
			}
		}
	}
	for q, n := range runs {
		s := newSink(t, addr, q, map[string]string{"sluice.commitTopic": "shared_commits"})
		last, err := s.LastCommittedBatch(ctx)
		if err != nil || last != n-1 {
			t.Errorf("%s: LastCommittedBatch = %d, %v; want %d", q, last, err, n-1)
		}
	}
	got := valueCounts(readCommitted(t, addr, "out"))
	for q, n := range runs {
		if got[q] != int(n) {
			t.Errorf("%s: %d records, want %d", q, got[q], n)
		}
	}
}

func TestEmptyBatchCommitsMarker(t *testing.T) {
	addr := startBroker(t)
	ctx := testCtx(t)
	s := newSink(t, addr, "q-empty", nil)
	if err := s.Commit(ctx, 0, nil); err != nil {
		t.Fatalf("Commit of a batch without tasks: %v", err)
	}
	if err := runBatch(ctx, s, 1, [][]*batch.Batch{{values()}}); err != nil {
		t.Fatalf("batch with an empty task: %v", err)
	}
	last, err := newSink(t, addr, "q-empty", nil).LastCommittedBatch(ctx)
	if err != nil || last != 1 {
		t.Fatalf("LastCommittedBatch = %d, %v; want 1", last, err)
	}
	if got := readCommitted(t, addr, "out"); len(got) != 0 {
		t.Errorf("read %d records, want 0", len(got))
	}
}

func TestBufferBoundsBackpressure(t *testing.T) {
	addr := startBroker(t)
	ctx := testCtx(t)
	const limit = 3
	s := newSink(t, addr, "q-bp", map[string]string{"sluice.maxBufferedRecords": "3"})
	w, err := s.NewWriter(ctx, 0, 0, valueSchema)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	maxSeen := int64(0)
	for i := range 60 {
		vs := []string{fmt.Sprintf("r%d-x", i), fmt.Sprintf("r%d-y", i)}
		all = append(all, vs...)
		if err := w.Write(ctx, values(vs...)); err != nil {
			t.Fatal(err)
		}
		maxSeen = max(maxSeen, s.cl.BufferedProduceRecords())
	}
	if maxSeen > limit {
		t.Errorf("the producer buffered %d records, limit %d", maxSeen, limit)
	}
	m, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.(message).rows; got != int64(len(all)) {
		t.Errorf("writer counted %d rows, want %d", got, len(all))
	}
	if err := s.Commit(ctx, 0, []sink.Message{m}); err != nil {
		t.Fatal(err)
	}
	wantOnce(t, readCommitted(t, addr, "out"), [][]*batch.Batch{{values(all...)}})
}

func TestRecoveryWaitsForOtherQueriesOpenTransactions(t *testing.T) {
	addr := startBroker(t)
	ctx := testCtx(t)
	// qb connects first, so its own recovery is done.
	qb := newSink(t, addr, "qb", nil)
	if _, err := qb.LastCommittedBatch(ctx); err != nil {
		t.Fatal(err)
	}
	// qa stops between writing its marker and ending its transaction: the
	// commit partition now has an open transaction.
	qa := newSink(t, addr, "qa", nil)
	qa.beforeEnd = func() error { return errCrash }
	if err := runBatch(ctx, qa, 0, [][]*batch.Batch{{values("qa")}}); !errors.Is(err, errCrash) {
		t.Fatalf("qa commit = %v, want the simulated crash", err)
	}
	// qb commits batch 0; its marker lands after qa's open one.
	if err := runBatch(ctx, qb, 0, [][]*batch.Batch{{values("qb")}}); err != nil {
		t.Fatal(err)
	}
	// A restarted qb cannot see its marker yet: it must fail, not report
	// that nothing was committed.
	short := map[string]string{"sluice.recoveryTimeout": "300ms"}
	if last, err := newSink(t, addr, "qb", short).LastCommittedBatch(ctx); err == nil {
		t.Fatalf("recovery behind an open transaction returned %d and no error", last)
	}
	// Once qa's transaction is aborted, qb's marker is found (with the
	// default timeout: the 300 ms one can run out on a loaded machine
	// before the abort is visible).
	if err := qa.Close(); err != nil {
		t.Fatal(err)
	}
	last, err := newSink(t, addr, "qb", nil).LastCommittedBatch(ctx)
	if err != nil || last != 0 {
		t.Fatalf("qb LastCommittedBatch = %d, %v; want 0", last, err)
	}
	if got := valueCounts(readCommitted(t, addr, "out")); got["qa"] != 0 || got["qb"] != 1 {
		t.Errorf("records by value = %v, want qb once and no qa", got)
	}
}

func TestSASLBroker(t *testing.T) {
	const pw = "s3cret-Pass"
	b := brokertest.StartConfig(t, broker.Config{
		Topics:    []broker.TopicSpec{{Name: "out", Partitions: 3}},
		ExtraOpts: authtest.SASLOpts("PLAIN", "alice", pw),
		AdminOpts: []kgo.Opt{kgo.SASL(plain.Auth{User: "alice", Pass: pw}.AsMechanism())},
	})
	ctx := testCtx(t)
	auth := func(pass string) map[string]string {
		return map[string]string{
			"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "PLAIN",
			"kafka.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="` + pass + `";`,
		}
	}
	s := newSink(t, b.Addr(), "q-sasl", auth(pw))
	rows := batchRows(0, 2, 3)
	if err := runBatch(ctx, s, 0, rows); err != nil {
		t.Fatalf("batch over SASL: %v", err)
	}
	wantOnce(t, readCommitted(t, b.Addr(), "out", kgo.SASL(plain.Auth{User: "alice", Pass: pw}.AsMechanism())), rows)

	const wrong = "wrong-Pass-1"
	bad := newSink(t, b.Addr(), "q-sasl-bad", auth(wrong))
	_, err := bad.NewWriter(ctx, 0, 0, valueSchema)
	if !kafkaauth.IsAuthError(err) {
		t.Fatalf("NewWriter with a wrong password = %v, want an authentication error", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error %q shows the password", err)
	}
}

func TestCommitTopicIsCreatedCompacted(t *testing.T) {
	addr := startBroker(t)
	ctx := testCtx(t)
	s := newSink(t, addr, "q-topic", map[string]string{"sluice.commitTopic": "my_commits"})
	if _, err := s.LastCommittedBatch(ctx); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(brokertest.Client(t, addr))
	td, err := adm.ListTopics(ctx, "my_commits")
	if err != nil || td["my_commits"].Err != nil {
		t.Fatalf("list commit topic: %v %v", err, td["my_commits"].Err)
	}
	if n := len(td["my_commits"].Partitions); n != 1 {
		t.Errorf("commit topic has %d partitions, want 1", n)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "my_commits")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("my_commits", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}
}
