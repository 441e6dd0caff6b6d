package sluice

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

// logged lists the batch ids of <chk>/<sub>.
func logged(t *testing.T, chk, sub string) []int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(chk, sub))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			ids = append(ids, n)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestMinBatchesToRetain: spark.sql.streaming.minBatchesToRetain is
// honoured as Spark does: after logging batch N, batches below N − 2 are
// purged, so 3 offsets and 3 commits files stay.
func TestMinBatchesToRetain(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "bp", Partitions: 2})
	preload(t, b.Addr(), "bp", 2, 30)
	chk := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := NewSession(WithLogger(quietLog), WithConf("spark.sql.streaming.minBatchesToRetain", "2")).ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "bp").Option("startingOffsets", "earliest").
		Option("maxOffsetsPerTrigger", 10).Load().
		WriteStream().Format("noop").Option("checkpointLocation", chk).Trigger(AvailableNow()).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	// 60 records at 10 a batch: batches 0..5.
	if o, c := logged(t, chk, "offsets"), logged(t, chk, "commits"); fmt.Sprint(o) != "[3 4 5]" || fmt.Sprint(c) != "[3 4 5]" {
		t.Fatalf("offsets %v commits %v, want [3 4 5] both (Spark keeps minBatchesToRetain + 1)", o, c)
	}
	_, err = NewSession(WithConf("spark.sql.streaming.minBatchesToRetain", "0")).ReadStream().Format("rate").Load().
		WriteStream().Format("noop").Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "spark.sql.streaming.minBatchesToRetain") {
		t.Fatalf("minBatchesToRetain=0: %v, want an error naming the setting", err)
	}
}
