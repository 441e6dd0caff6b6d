package plan

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/operator"
)

var clicks = batch.Schema{Fields: []batch.Field{
	{Name: "user", Type: batch.String, Nullable: true},
	{Name: "ts", Type: batch.Timestamp, Nullable: true},
}}

func sessionPlan(groupBy ...string) *Node {
	return build(Op{Kind: WithWatermark, EventTime: "ts", Delay: "1 minute"},
		Op{Kind: Aggregate, GroupBy: groupBy, Aggs: []string{"count(*) AS clicks"}})
}

// A session_window grouping key makes a session aggregation whose event
// time is the session (compared by its end), explained as such.
func TestAnalyzeSessionWindow(t *testing.T) {
	q, err := Analyze(sessionPlan("user", "session_window(ts, '5 minutes') AS session"), clicks, Options{OutputMode: ModeAppend})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := q.Stateful.(*operator.SessionAggregate)
	if !ok || s.Session != 1 || s.EventTime != 1 || !s.NoDataBatches() {
		t.Fatalf("stateful = %#v", q.Stateful)
	}
	if got := strings.Join(q.Output.Names(), ","); got != "user,session,clicks" {
		t.Errorf("output %s", got)
	}
	out := q.Explain(ExplainOptions{Sink: "console", Partitions: 4, ShuffleBuffer: 1 << 20})
	for _, want := range []string{"SessionWindowStateStoreSave", "sessionWindowStateStoreSaveExec", "sessions keyed by [user] and start",
		"MergingSessions", "Exchange hashpartitioning([user], 4)", "each row's initial session"} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain lacks %q:\n%s", want, out)
		}
	}
	// Complete mode runs without a watermark and never needs no-data batches.
	q, err = Analyze(build(Op{Kind: Aggregate, GroupBy: []string{"session_window(ts, '5 minutes')", "user"}, Aggs: []string{"count(*)"}}),
		clicks, Options{OutputMode: ModeComplete})
	if err != nil {
		t.Fatal(err)
	}
	if s := q.Stateful.(*operator.SessionAggregate); s.EventTime != -1 || s.NoDataBatches() {
		t.Errorf("complete: %#v", s)
	}
}

func TestAnalyzeSessionWindowErrors(t *testing.T) {
	for _, c := range []struct {
		plan *Node
		mode string
		want error
	}{
		{sessionPlan("user", "session_window(ts, '5 minutes')"), ModeUpdate, ErrUpdateSessionWindow},
		{sessionPlan("session_window(ts, '5 minutes')"), ModeUpdate, ErrUpdateSessionWindow},
		{sessionPlan("session_window(ts, '5 minutes')"), ModeAppend, ErrGlobalSessionWindow},
		{sessionPlan("session_window(ts, '5 minutes')"), ModeComplete, ErrGlobalSessionWindow},
		{build(Op{Kind: Aggregate, GroupBy: []string{"user", "session_window(ts, '5 minutes')"}, Aggs: []string{"count(*)"}}), ModeAppend, ErrAppendWithoutWatermark},
	} {
		_, err := Analyze(c.plan, clicks, Options{OutputMode: c.mode})
		if !errors.Is(err, c.want) {
			t.Errorf("%s in %s mode: err = %v, want %v", c.plan.Op, c.mode, err, c.want)
		}
	}
}
