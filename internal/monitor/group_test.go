package monitor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/progress"
)

// groupMember starts a group-mode member of group "lag" with its own
// monitor.
func groupMember(t *testing.T, addr, name string) *monitor.Monitor {
	t.Helper()
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "orders", "startingOffsets": "earliest",
		"maxOffsetsPerTrigger": "40", "sluice.group": "lag", "sluice.group.member": name,
		"kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	mon := monitor.New()
	q, err := engine.Start(context.Background(), engine.Config{Name: name, Source: src, Sink: memory.New(), Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: 50 * time.Millisecond},
		CheckpointDir: filepath.Join(t.TempDir(), "chk"), Logger: quiet, Observers: []engine.Observer{mon}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = q.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mon.Close(ctx)
	})
	return mon
}

// In group mode a member's progress names the partitions it owns, and its
// lag covers exactly those: a partition handed to another member leaves
// the member's lag (it is the other member's to judge).
func TestGroupMemberLagCoversOwnedPartitions(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 4})
	produce(t, b.Addr(), "orders", 4, 50)
	a := groupMember(t, b.Addr(), "a")
	owns := func(n int) func(*progress.Progress) bool {
		return func(p *progress.Progress) bool {
			return p.Sluice != nil && p.Sluice.Group != nil && len(p.Sluice.Group.Partitions) == n && p.Sluice.Lag != nil
		}
	}
	waitFor(t, a, 30*time.Second, "member a to report 4 partitions", owns(4))
	groupMember(t, b.Addr(), "b")
	produce(t, b.Addr(), "orders", 4, 50) // batches on both members after the split
	p := waitFor(t, a, 30*time.Second, "member a to report 2 partitions", owns(2))
	if g := p.Sluice.Group; g.Group != "lag" || g.Member != "a" || g.MemberID == "" {
		t.Errorf("group = %+v", g)
	}
	owned := map[string]bool{}
	for _, name := range p.Sluice.Group.Partitions {
		owned[name] = true
	}
	if len(p.Sluice.Lag.Partitions) != 2 {
		t.Fatalf("member a's lag lists %d partitions, want its 2: %+v", len(p.Sluice.Lag.Partitions), p.Sluice.Lag.Partitions)
	}
	for _, pl := range p.Sluice.Lag.Partitions {
		if name := fmt.Sprintf("%s-%d", pl.Topic, pl.Partition); !owned[name] {
			t.Errorf("member a's lag lists %s, which it does not own (%v)", name, p.Sluice.Group.Partitions)
		}
	}
}
