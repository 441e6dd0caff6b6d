package sluice

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	kafkasink "github.com/sluice-stream/sluice/internal/sink/kafka"
)

// TestDeadLetterRoutesBadRecords: under ANSI mode a value that cannot be
// cast fails the query, unless a dead-letter sink is configured: then bad
// records go there with their reason and coordinates, good ones go on.
func TestDeadLetterRoutesBadRecords(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "dl", Partitions: 2})
	var recs []*kgo.Record
	bad := map[string]bool{}
	for i := 0; i < 40; i++ {
		v := fmt.Sprint(i * 10)
		if i%7 == 3 {
			v = fmt.Sprintf("oops-%d", i)
			bad[v] = true
		}
		recs = append(recs, &kgo.Record{Topic: "dl", Partition: int32(i % 2), Value: []byte(v)})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	run := func(withDLQ bool, name string) (*Session, *StreamingQuery, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s := NewSession(WithLogger(quietLog), WithConf("spark.sql.ansi.enabled", "true"))
		w := s.ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "dl").Option("startingOffsets", "earliest").
			Option("maxOffsetsPerTrigger", 15).Load().
			SelectExpr("CAST(CAST(value AS STRING) AS INT) AS amount", "offset").
			Filter("amount >= 0").
			WriteStream().Format("memory").QueryName(name).Option("checkpointLocation", t.TempDir()).
			Trigger(AvailableNow())
		if withDLQ {
			w.DeadLetter("memory", nil)
		}
		q, err := w.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s, q, q.AwaitTermination(ctx)
	}
	_, _, err := run(false, "strict")
	if err == nil || !strings.Contains(err.Error(), "CAST_INVALID_INPUT") || !strings.Contains(err.Error(), "'oops-") {
		t.Fatalf("without a dead-letter sink: err = %v, want the ANSI cast failure", err)
	}
	s, q, err := run(true, "routed")
	if err != nil {
		t.Fatal(err)
	}
	_, good, _ := s.Table("routed")
	cols, dead, _ := s.Table("routed.deadLetter")
	if len(good)+len(dead) != 40 || len(dead) != len(bad) {
		t.Fatalf("%d good + %d dead-lettered rows, want %d + %d", len(good), len(dead), 40-len(bad), len(bad))
	}
	for _, g := range good {
		if g[0] == nil {
			t.Fatalf("a bad row reached the sink: %v", g)
		}
	}
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	for _, d := range dead {
		v := string(d[idx["value"]].([]byte))
		if !bad[v] {
			t.Fatalf("dead letter for %q, which is not a bad record", v)
		}
		reason := d[idx["reason"]].(string)
		if !strings.Contains(reason, "CAST_INVALID_INPUT") || !strings.Contains(reason, "'"+v+"'") {
			t.Errorf("reason %q does not explain the failure of %q", reason, v)
		}
		if d[idx["topic"]] != "dl" || d[idx["offset"]] == nil || d[idx["partition"]] == nil {
			t.Errorf("dead letter lacks coordinates: %v", d)
		}
	}
	var counted int64
	for _, p := range q.RecentProgress() {
		counted += p.Sink.NumOutputRows
	}
	if counted != int64(len(good)) {
		t.Errorf("progress counted %d output rows, sink has %d", counted, len(good))
	}
}

// TestDeadLetterToKafkaTopic: bad records land in a Kafka dead-letter topic
// with their original value and the reason and coordinates in headers;
// counts in progress match.
func TestDeadLetterToKafkaTopic(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "in", Partitions: 1}, broker.TopicSpec{Name: "dlq", Partitions: 1})
	var recs []*kgo.Record
	for i := 0; i < 30; i++ {
		v := fmt.Sprint(i)
		if i%10 == 5 {
			v = "bad-" + v
		}
		recs = append(recs, &kgo.Record{Topic: "in", Value: []byte(v)})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewSession(WithLogger(quietLog), WithConf("spark.sql.ansi.enabled", "true"))
	q, err := s.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "in").Option("startingOffsets", "earliest").Load().
		SelectExpr("CAST(CAST(value AS STRING) AS BIGINT) AS n").
		WriteStream().Format("memory").QueryName("good").Option("checkpointLocation", t.TempDir()).
		DeadLetter("kafka", map[string]string{"kafka.bootstrap.servers": b.Addr(), "topic": "dlq"}).
		Trigger(AvailableNow()).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	var counted int64
	for _, p := range q.RecentProgress() {
		if p.Sluice == nil || p.Sluice.DeadLetters == nil {
			t.Fatalf("batch %d progress lacks the dead-letter count", p.BatchID)
		}
		counted += *p.Sluice.DeadLetters
	}
	if counted != 3 {
		t.Fatalf("progress counted %d dead letters, want 3", counted)
	}
	cl := brokertest.Client(t, b.Addr(), kgo.ConsumeTopics("dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var dead []*kgo.Record
	for len(dead) < 3 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { dead = append(dead, r) })
		pcancel()
	}
	if len(dead) != 3 {
		t.Fatalf("dead-letter topic holds %d committed records, want 3", len(dead))
	}
	for _, r := range dead {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		if !strings.HasPrefix(string(r.Value), "bad-") {
			t.Errorf("dead letter value %q is not a bad record", r.Value)
		}
		if !strings.Contains(h[HeaderDeadLetterReason], "CAST_INVALID_INPUT") || h[HeaderDeadLetterTopic] != "in" ||
			h[HeaderDeadLetterPartition] != "0" || h[HeaderDeadLetterOffset] == "" {
			t.Errorf("dead letter %q headers %v lack the reason or coordinates", r.Value, h)
		}
		if want := strings.TrimPrefix(string(r.Value), "bad-"); h[HeaderDeadLetterOffset] != want {
			t.Errorf("dead letter %q offset header %s, want %s", r.Value, h[HeaderDeadLetterOffset], want)
		}
	}
	_, good, _ := s.Table("good")
	if len(good) != 27 {
		t.Fatalf("%d good rows, want 27", len(good))
	}
}

// TestDeadLetterHeaderNames: the documented header names are the ones the
// Kafka sink writes.
func TestDeadLetterHeaderNames(t *testing.T) {
	for _, c := range [][2]string{
		{HeaderDeadLetterReason, kafkasink.HeaderDeadLetterReason},
		{HeaderDeadLetterTopic, kafkasink.HeaderDeadLetterTopic},
		{HeaderDeadLetterPartition, kafkasink.HeaderDeadLetterPartition},
		{HeaderDeadLetterOffset, kafkasink.HeaderDeadLetterOffset},
		{HeaderDeadLetterBatch, kafkasink.HeaderDeadLetterBatch},
		{HeaderDeadLetterInput, kafkasink.HeaderDeadLetterInput},
	} {
		if c[0] != c[1] {
			t.Errorf("documented header %q, the sink writes %q", c[0], c[1])
		}
	}
}

// TestDivideByZeroUnderANSI: with spark.sql.ansi.enabled an integer
// division by zero fails the query with Spark's DIVIDE_BY_ZERO, or, with a
// dead-letter sink, sends the row there and keeps going.
func TestDivideByZeroUnderANSI(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "div", Partitions: 1})
	var recs []*kgo.Record
	for _, v := range []string{"4", "2", "0", "5", "0", "1"} {
		recs = append(recs, &kgo.Record{Topic: "div", Value: []byte(v)})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	run := func(withDLQ bool, name string) (*Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s := NewSession(WithLogger(quietLog), WithConf("spark.sql.ansi.enabled", "true"))
		w := s.ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "div").Option("startingOffsets", "earliest").Load().
			SelectExpr("100 DIV CAST(CAST(value AS STRING) AS INT) AS q").
			WriteStream().Format("memory").QueryName(name).Option("checkpointLocation", t.TempDir()).Trigger(AvailableNow())
		if withDLQ {
			w.DeadLetter("memory", nil)
		}
		q, err := w.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s, q.AwaitTermination(ctx)
	}
	if _, err := run(false, "strict"); err == nil || !strings.Contains(err.Error(), "[DIVIDE_BY_ZERO] Division by zero.") {
		t.Fatalf("without a dead-letter sink: %v, want DIVIDE_BY_ZERO", err)
	}
	s, err := run(true, "routed")
	if err != nil {
		t.Fatal(err)
	}
	_, good, _ := s.Table("routed")
	cols, dead, _ := s.Table("routed.deadLetter")
	var qs []any
	for _, g := range good {
		qs = append(qs, g[0])
	}
	if fmt.Sprint(qs) != "[25 50 20 100]" || len(dead) != 2 {
		t.Fatalf("sink %v and %d dead letters, want [25 50 20 100] and 2", qs, len(dead))
	}
	for _, d := range dead {
		for i, c := range cols {
			if c == "reason" && !strings.Contains(d[i].(string), "DIVIDE_BY_ZERO") {
				t.Errorf("dead-letter reason %q", d[i])
			}
		}
	}
}
