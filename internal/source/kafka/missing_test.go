package kafka_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/testutil"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// availableNow on a topic that does not exist used to read nothing and
// stop with success, so a misspelled topic looked like an empty one. Spark
// does the same; sluice fails, naming the topic and the closest existing
// one, or warns when failOnDataLoss=false.
func TestAvailableNowOnMissingTopic(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 2})
	produce(t, b.Addr(), "orders", 2, 3)
	an := trigger.Trigger{Kind: trigger.AvailableNow}
	for _, c := range []struct {
		name string
		opts map[string]string
		want string
	}{
		{"subscribe", map[string]string{"subscribe": "ordres"},
			`kafka source: topic "ordres" does not exist; did you mean "orders"? (availableNow would read nothing and stop; set failOnDataLoss=false to warn instead)`},
		{"subscribe list", map[string]string{"subscribe": "orders,payments"},
			`kafka source: topic "payments" does not exist`},
		{"assign", map[string]string{"assign": `{"nope":[0]}`},
			`kafka source: topic "nope" does not exist`},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts["kafka.bootstrap.servers"] = b.Addr()
			sink := memory.New()
			_, err := runQuery(t, c.opts, an, t.TempDir(), sink, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if n := len(sink.Rows()); n != 0 {
				t.Errorf("%d rows written", n)
			}
		})
	}

	// failOnDataLoss=false: a warning, and the topics that exist are read.
	var logs testutil.SyncBuffer
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "orders,ordres",
		"startingOffsets": "earliest", "failOnDataLoss": "false"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sink := memory.New()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sink, Trigger: an, CheckpointDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.Rows()); n != 6 {
		t.Errorf("%d rows, want the 6 of orders", n)
	}
	if !strings.Contains(logs.String(), `level=WARN msg="kafka source: topic \"ordres\" does not exist; did you mean \"orders\"?`) {
		t.Errorf("no warning naming the missing topic:\n%s", logs.String())
	}
}
