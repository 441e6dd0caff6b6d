package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
)

func TestGroupOptionErrors(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1", "subscribe": "t", "sluice.group": "g"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name   string
		opts   map[string]string
		option string // the option the error names
		text   string
	}{
		{"assign", base("subscribe", "", "assign", `{"t":[0]}`), "assign", "the group assigns the partitions"},
		{"commitGroup", base("sluice.commitGroup", "lag"), "sluice.commitGroup", "commits to the group itself"},
		{"JSON start", base("startingOffsets", `{"t":{"0":5}}`), "startingOffsets", `"earliest" or "latest"`},
		{"timestamp start", base("startingTimestamp", "1000"), "startingTimestamp", "not supported in group mode"},
		{"bad member", base("sluice.group.member", "a/b"), "sluice.group.member", "letters, digits"},
		{"member without group", base("sluice.group", "", "sluice.group.member", "m1"), "sluice.group.member", `set "sluice.group" too`},
		{"heartbeat", base("kafka.session.timeout.ms", "6000", "kafka.heartbeat.interval.ms", "6000"), "kafka.heartbeat.interval.ms", "below kafka.session.timeout.ms (6000)"},
		{"instance without group", base("sluice.group", "", "kafka.group.instance.id", "pod-0"), "kafka.group.instance.id", `set "sluice.group" too`},
		{"bad instance", base("kafka.group.instance.id", "pod 0"), "kafka.group.instance.id", "a stable name per member"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kafka.ParseConfig(c.opts)
			if err == nil || options.OptionOf(err) != c.option || !strings.Contains(err.Error(), c.text) {
				t.Errorf("err = %v; want one naming %q and saying %q", err, c.option, c.text)
			}
		})
	}
	cfg, err := kafka.ParseConfig(base("sluice.group.member", "pod-1", "kafka.session.timeout.ms", "7000"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Group != "g" || cfg.Member != "pod-1" || cfg.SessionTimeout != 7*time.Second || cfg.HeartbeatInterval != 3*time.Second {
		t.Errorf("config = group %q member %q session %v heartbeat %v", cfg.Group, cfg.Member, cfg.SessionTimeout, cfg.HeartbeatInterval)
	}
	if cfg, _ := kafka.ParseConfig(base()); cfg.Member != kafka.DefaultMember() || !strings.Contains(cfg.Member, "-") {
		t.Errorf("default member %q, want %q", cfg.Member, kafka.DefaultMember())
	}
}

// groupQuery starts a group-mode query member writing to a memory sink.
func groupQuery(t *testing.T, addr, member string) (*engine.Query, *kafka.Source, *memory.Sink) {
	t.Helper()
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "grp", "startingOffsets": "earliest",
		"sluice.group": "members", "sluice.group.member": member, "maxOffsetsPerTrigger": "50",
		"kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sk := memory.New()
	q := startMember(t, src, sk)
	return q, src, sk
}

// waitUntil polls cond until it holds, failing after timeout.
// startMember runs src into sk with the default trigger (a fresh
// checkpoint, 2 workers) until the test ends.
func startMember(t *testing.T, src *kafka.Source, sk sink.Sink) *engine.Query {
	t.Helper()
	q, err := engine.Start(context.Background(), engine.Config{Source: src, Sink: sk, Trigger: trigger.Trigger{Kind: trigger.Default},
		CheckpointDir: t.TempDir(), Logger: quiet, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Stop() })
	return q
}

// waitGroupAt waits until group has committed offset at for n partitions.
func waitGroupAt(t *testing.T, addr, group string, at int64, n int, what string) {
	t.Helper()
	adm := kadm.NewClient(brokertest.Client(t, addr))
	waitUntil(t, 20*time.Second, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		got := 0
		offs.Each(func(o kadm.OffsetResponse) {
			if o.At == at {
				got++
			}
		})
		return got == n
	})
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two members split the partitions; the group's committed offsets follow
// their batches (at least once with a memory sink); a member stopped
// gracefully leaves the group, so the other takes its partitions over at
// once — well before the 30 s session timeout.
func TestGroupMembersSplitPartitionsAndHandOverOnStop(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grp", Partitions: 4})
	addr := b.Addr()
	produce := func(round int) {
		var recs []*kgo.Record
		for p := int32(0); p < 4; p++ {
			for i := 0; i < 100; i++ {
				recs = append(recs, &kgo.Record{Topic: "grp", Partition: p, Value: []byte(fmt.Sprintf("r%d-p%d-%d", round, p, i))})
			}
		}
		brokertest.ProduceSync(t, addr, recs...)
	}
	adm := kadm.NewClient(brokertest.Client(t, addr))
	caughtUp := func(want int64) func() bool {
		return func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			offs, err := adm.FetchOffsets(ctx, "members")
			if err != nil {
				return false
			}
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
			return sum == want
		}
	}
	owned := func(src *kafka.Source) int { return len(src.GroupMember().Partitions) }

	produce(0)
	qa, srcA, sinkA := groupQuery(t, addr, "a")
	waitUntil(t, 30*time.Second, "member a to own all 4 partitions", func() bool { return owned(srcA) == 4 })
	waitUntil(t, 30*time.Second, "the group to commit 400 offsets", caughtUp(400))

	_, srcB, sinkB := groupQuery(t, addr, "b")
	waitUntil(t, 30*time.Second, "the members to split the partitions", func() bool { return owned(srcA) == 2 && owned(srcB) == 2 })
	if m := srcB.GroupMember(); m.Group != "members" || m.Name != "b" || m.MemberID == "" {
		t.Errorf("member b = %+v", m)
	}
	produce(1)
	waitUntil(t, 30*time.Second, "the group to commit 800 offsets", caughtUp(800))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := qa.StopGracefully(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	waitUntil(t, 20*time.Second, "member b to take all partitions over after a left", func() bool { return owned(srcB) == 4 })
	t.Logf("member b owned all partitions %v after member a stopped", time.Since(stopped).Round(time.Millisecond))
	produce(2)
	waitUntil(t, 30*time.Second, "the group to commit 1200 offsets", caughtUp(1200))

	// At least once: every record reached one of the sinks.
	seen := map[string]bool{}
	for _, sk := range []*memory.Sink{sinkA, sinkB} {
		for _, row := range sk.Rows() {
			seen[string(row[1].([]byte))] = true
		}
	}
	for round := 0; round < 3; round++ {
		for p := 0; p < 4; p++ {
			for i := 0; i < 100; i++ {
				if k := fmt.Sprintf("r%d-p%d-%d", round, p, i); !seen[k] {
					t.Fatalf("record %s never reached a sink", k)
				}
			}
		}
	}
	var _ source.Grouped = srcB
}

// Trigger.AvailableNow in group mode: the member reads what its partitions
// held when it started, not what arrives while it drains them.
func TestGroupAvailableNowStopsAtTheSnapshot(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grp", Partitions: 2})
	addr := b.Addr()
	produce := func(tag string) {
		var recs []*kgo.Record
		for p := int32(0); p < 2; p++ {
			for i := 0; i < 50; i++ {
				recs = append(recs, &kgo.Record{Topic: "grp", Partition: p, Value: []byte(fmt.Sprintf("%s-p%d-%d", tag, p, i))})
			}
		}
		brokertest.ProduceSync(t, addr, recs...)
	}
	produce("before")
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "grp", "startingOffsets": "earliest",
		"sluice.group": "drain", "maxOffsetsPerTrigger": "30", "kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sk := memory.New()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: src, Sink: sk, Trigger: trigger.Trigger{Kind: trigger.AvailableNow}, CheckpointDir: t.TempDir(), Logger: quiet, Workers: 2,
		BeforeCommit: func(id int64) error {
			if id == 0 {
				produce("during") // arrives while the member drains
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	rows := sk.Rows()
	for _, row := range rows {
		if v := string(row[1].([]byte)); !strings.HasPrefix(v, "before-") {
			t.Fatalf("read %q, produced after the member started", v)
		}
	}
	if len(rows) != 100 {
		t.Fatalf("read %d rows, want the 100 there at start", len(rows))
	}
}

// A member that crashed between writing a batch's offsets and committing
// it restarts under the same name on the same local log (a StatefulSet pod,
// a container restarted in its pod): the batch it logged is not replayed —
// the group's offsets say where to start — and its next batch takes the
// next id instead of failing on the write-once offsets file.
func TestGroupMemberRestartsOverItsUncommittedBatch(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grp", Partitions: 2})
	addr := b.Addr()
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 40; i++ {
			recs = append(recs, &kgo.Record{Topic: "grp", Partition: p, Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	brokertest.ProduceSync(t, addr, recs...)
	dir := t.TempDir()
	run := func(beforeCommit func(int64) error) (*engine.Query, *memory.Sink) {
		src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "grp", "startingOffsets": "earliest",
			"sluice.group": "restart", "sluice.group.member": "m-0", "maxOffsetsPerTrigger": "30",
			"kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		sk := memory.New()
		q, err := engine.Start(context.Background(), engine.Config{Source: src, Sink: sk, Trigger: trigger.Trigger{Kind: trigger.AvailableNow},
			CheckpointDir: dir, Logger: quiet, Workers: 2, BeforeCommit: beforeCommit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Stop() })
		return q, sk
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	crash := errors.New("crash before the commit")
	q, _ := run(func(id int64) error {
		if id == 1 {
			return crash
		}
		return nil
	})
	if err := q.AwaitTermination(ctx); !errors.Is(err, crash) {
		t.Fatalf("first run ended with %v, want the crash", err)
	}
	q, sk := run(nil)
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatalf("restart over the uncommitted batch: %v", err)
	}
	// Batch 0 (30 records) was committed to the group; the restart reads
	// the other 50 (at least once: batch 1's rows may have reached the
	// first sink too, never fewer here).
	if n := len(sk.Rows()); n != 50 {
		t.Fatalf("restarted member read %d rows, want the 50 after the group's offsets", n)
	}
}

// In group mode the default client id names the member, so the group's
// tools tell members apart; an explicit kafka.client.id is kept.
func TestGroupClientIDNamesTheMember(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"sluice.group": "g", "sluice.group.member": "m-1"}, "sluice-m-1"},
		{map[string]string{"sluice.group": "g", "sluice.group.member": "m-1", "kafka.client.id": "orders-app"}, "orders-app"},
		{map[string]string{}, "sluice"},
	} {
		opts := map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1", "subscribe": "t"}
		for k, v := range tc.opts {
			opts[k] = v
		}
		c, err := kafka.ParseConfig(opts)
		if err != nil {
			t.Fatal(err)
		}
		if c.ClientID != tc.want {
			t.Errorf("%v: client id %q, want %q", tc.opts, c.ClientID, tc.want)
		}
	}
}

// failOnDataLoss holds in group mode as in one process: a member given a
// partition whose committed offset retention has since deleted fails with
// the data-loss error (the default, as Spark), or with
// failOnDataLoss=false skips to the log start, reading what is left —
// instead of the consumer silently resetting.
func TestGroupDataLossAfterRetention(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grp", Partitions: 2})
	addr := b.Addr()
	produce := func(round int) {
		var recs []*kgo.Record
		for p := int32(0); p < 2; p++ {
			for i := 0; i < 100; i++ {
				recs = append(recs, &kgo.Record{Topic: "grp", Partition: p, Value: []byte(fmt.Sprintf("r%d-p%d-%d", round, p, i))})
			}
		}
		brokertest.ProduceSync(t, addr, recs...)
	}
	member := func(extra map[string]string) (*engine.Query, *memory.Sink) {
		opts := map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "grp", "startingOffsets": "earliest",
			"sluice.group": "lossy", "maxOffsetsPerTrigger": "1000", "kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}
		for k, v := range extra {
			opts[k] = v
		}
		src, err := kafka.New(opts, quiet)
		if err != nil {
			t.Fatal(err)
		}
		sk := memory.New()
		q := startMember(t, src, sk)
		return q, sk
	}
	produce(0)
	q, sk := member(nil)
	waitUntil(t, 30*time.Second, "the first member to read 200 records", func() bool { return len(sk.Rows()) == 200 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.StopGracefully(ctx); err != nil {
		t.Fatal(err)
	}
	// While no member runs, 100 more records arrive per partition and
	// retention deletes partition 0 up to offset 150: 50 records the group
	// never read are gone.
	produce(1)
	if err := b.DeleteRecords(ctx, "grp", 0, 150); err != nil {
		t.Fatal(err)
	}

	q, _ = member(nil)
	err := q.AwaitTermination(ctx)
	var loss *kafka.DataLossError
	if !errors.As(err, &loss) || loss.Topic != "grp" || loss.Partition != 0 || loss.Expected != 100 || loss.Earliest != 150 {
		t.Fatalf("member with failOnDataLoss=true ended with %v, want the data-loss error for grp-0 (expected 100, earliest 150)", err)
	}

	_, sk = member(map[string]string{"failOnDataLoss": "false"})
	waitUntil(t, 30*time.Second, "the member with failOnDataLoss=false to read what is left", func() bool { return len(sk.Rows()) >= 150 })
	time.Sleep(300 * time.Millisecond)
	got := map[string]bool{}
	for _, row := range sk.Rows() {
		got[string(row[1].([]byte))] = true
	}
	for p := 0; p < 2; p++ {
		for i := 0; i < 100; i++ {
			k := fmt.Sprintf("r1-p%d-%d", p, i)
			if want := p == 1 || i >= 50; got[k] != want {
				t.Errorf("record %s read %v, want %v", k, got[k], want)
			}
		}
	}
	if len(got) != 150 {
		t.Errorf("read %d distinct records, want 150", len(got))
	}
}

// Static membership (kafka.group.instance.id): a stopped member stays in
// the group (it does not leave, so no rebalance starts), and a restart
// under the same instance id takes its place — same partitions, no
// second member — and reads on from the group's offsets.
func TestGroupStaticMembership(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grp", Partitions: 2})
	addr := b.Addr()
	produce := func(round int) {
		var recs []*kgo.Record
		for p := int32(0); p < 2; p++ {
			for i := 0; i < 50; i++ {
				recs = append(recs, &kgo.Record{Topic: "grp", Partition: p, Value: []byte(fmt.Sprintf("r%d-p%d-%d", round, p, i))})
			}
		}
		brokertest.ProduceSync(t, addr, recs...)
	}
	member := func() (*engine.Query, *kafka.Source, *memory.Sink) {
		src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": addr, "subscribe": "grp", "startingOffsets": "earliest",
			"sluice.group": "static", "sluice.group.member": "m", "kafka.group.instance.id": "pod-0",
			"kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		sk := memory.New()
		q := startMember(t, src, sk)
		return q, src, sk
	}
	adm := kadm.NewClient(brokertest.Client(t, addr))
	describe := func() kadm.DescribedGroup {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		dg, err := adm.DescribeGroups(ctx, "static")
		if err != nil {
			t.Fatal(err)
		}
		return dg["static"]
	}
	produce(0)
	q, src, sk := member()
	waitUntil(t, 30*time.Second, "the member to read 100 records", func() bool { return len(sk.Rows()) == 100 })
	first := src.GroupMember()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.StopGracefully(ctx); err != nil {
		t.Fatal(err)
	}
	g := describe()
	if len(g.Members) != 1 || g.Members[0].InstanceID == nil || *g.Members[0].InstanceID != "pod-0" {
		t.Fatalf("after the static member stopped the group has %d members (%+v), want it still there with instance id pod-0", len(g.Members), g.Members)
	}
	produce(1)
	_, src2, sk2 := member()
	waitUntil(t, 30*time.Second, "the restarted member to read the 100 new records", func() bool { return len(sk2.Rows()) >= 100 })
	g = describe()
	if len(g.Members) != 1 || *g.Members[0].InstanceID != "pod-0" {
		t.Fatalf("after the restart the group has %d members, want the one static member", len(g.Members))
	}
	if got := src2.GroupMember().Partitions; len(got) != len(first.Partitions) || len(got) != 2 {
		t.Errorf("restarted member owns %v, want both partitions as before (%v)", got, first.Partitions)
	}
	for _, row := range sk2.Rows() {
		if v := string(row[1].([]byte)); !strings.HasPrefix(v, "r1-") {
			t.Fatalf("restarted member read %q again: it should start at the group's offsets", v)
		}
	}
}

// An idle group member long-polls as a single-process query does
// (sluice.fetch.idleLongPoll): few fetches while nothing arrives, the first
// record read at once, and a member joining during the long poll ends it
// (the partitions move) without losing a record.
func TestGroupIdleMemberLongPolls(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grp", Partitions: 4})
	var fetches atomic.Int64
	b.Cluster().ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		fetches.Add(1)
		return nil, nil, false
	})
	member := func(name string) (*kafka.Source, *memory.Sink) {
		src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "grp", "startingOffsets": "earliest",
			"sluice.group": "idle", "sluice.group.member": name, "sluice.fetch.idleLongPoll": "20s",
			"kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "1000"}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		sk := memory.New()
		startMember(t, src, sk)
		return src, sk
	}
	produce := func(round int) {
		var recs []*kgo.Record
		for p := int32(0); p < 4; p++ {
			recs = append(recs, &kgo.Record{Topic: "grp", Partition: p, Value: []byte(fmt.Sprintf("r%d-p%d", round, p))})
		}
		brokertest.ProduceSync(t, b.Addr(), recs...)
	}
	srcA, skA := member("a")
	waitUntil(t, 30*time.Second, "member a to own the partitions", func() bool { return len(srcA.GroupMember().Partitions) == 4 })
	time.Sleep(3 * time.Second) // past wakerAfter: the long poll has begun
	before := fetches.Load()
	time.Sleep(2 * time.Second)
	if n := fetches.Load() - before; n > 3 {
		t.Fatalf("idle member sent %d fetches in 2 s; the long poll should have sent at most one or two", n)
	}
	start := time.Now()
	produce(1)
	waitUntil(t, 10*time.Second, "the idle member to read the new records", func() bool { return len(skA.Rows()) == 4 })
	t.Logf("first records after an idle spell read in %s", time.Since(start).Round(time.Millisecond))

	// Idle again; a second member joins: the partitions move during the
	// long poll, and the records produced next are read by their owners.
	time.Sleep(3 * time.Second)
	srcB, skB := member("b")
	waitUntil(t, 30*time.Second, "the members to split the partitions", func() bool {
		return len(srcA.GroupMember().Partitions) == 2 && len(srcB.GroupMember().Partitions) == 2
	})
	produce(2)
	waitUntil(t, 15*time.Second, "both members to read round 2", func() bool {
		n := 0
		for _, sk := range []*memory.Sink{skA, skB} {
			for _, row := range sk.Rows() {
				if strings.HasPrefix(string(row[1].([]byte)), "r2-") {
					n++
				}
			}
		}
		return n == 4
	})
}

// A partition whose sink record (the Delta table's txn, the file sink's
// group log) is ahead of the group's offset — its last owner wrote the
// batch but died before committing to the group — moves the group's offset
// up as soon as a member takes it, even when no record follows: lag tools
// read the group.
func TestGroupCatchesUpWithTheSinkRecord(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grp", Partitions: 2})
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 100; i++ {
			recs = append(recs, &kgo.Record{Topic: "grp", Partition: p, Value: []byte("x")})
		}
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "grp", "startingOffsets": "earliest",
		"sluice.group": "behind", "kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	src.SetSinkOffsets(func(tps []partition.ID) (map[partition.ID]int64, error) {
		out := map[partition.ID]int64{}
		for _, tp := range tps {
			out[tp] = 100 // the sink holds everything
		}
		return out, nil
	})
	sk := memory.New()
	startMember(t, src, sk)
	waitGroupAt(t, b.Addr(), "behind", 100, 2, "the group's offsets to reach the sink's record")
	if rows := len(sk.Rows()); rows != 0 {
		t.Errorf("read %d rows: the sink's record says everything was written", rows)
	}
}

// TestGroupSendsAFailedCommitAgain: the broker refuses the member's first
// group commits (as during a rebalance); the sink has the batch, the
// producer has stopped, and no batch follows — the member still gets the
// group's offsets to the end by sending them again while it waits.
func TestGroupSendsAFailedCommitAgain(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "grp", Partitions: 2})
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 50; i++ {
			recs = append(recs, &kgo.Record{Topic: "grp", Partition: p, Value: []byte("x")})
		}
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	var refused atomic.Int32
	b.Cluster().ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		r := req.(*kmsg.OffsetCommitRequest)
		if r.Group != "refused" || refused.Load() >= 3 {
			return nil, nil, false
		}
		refused.Add(1)
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.RebalanceInProgress.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "grp", "startingOffsets": "earliest",
		"sluice.group": "refused", "kafka.session.timeout.ms": "30000", "kafka.heartbeat.interval.ms": "300"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	sk := memory.New()
	startMember(t, src, sk)
	waitGroupAt(t, b.Addr(), "refused", 50, 2, "the group's offsets to reach the end after refused commits")
	if refused.Load() == 0 {
		t.Fatal("the broker refused no commit: the test tested nothing")
	}
	if rows := len(sk.Rows()); rows != 100 {
		t.Errorf("the sink holds %d rows, want 100 (each record once)", rows)
	}
}
