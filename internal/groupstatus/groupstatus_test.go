package groupstatus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/groupstatus"
	"github.com/sluice-stream/sluice/internal/lag"
)

// base is the timestamp of offset 0: the record at offset o of every
// partition is stamped base + o seconds.
var base = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// sizes are the records per partition of topic "orders"; commits the
// offsets the group commits (p0 and p2 caught up, p1 and p3 behind).
var (
	sizes   = []int{10, 20, 30, 40}
	commits = []int64{10, 5, 30, 12}
)

// groupFixture is a broker with topic orders:4 and two kgo group consumers
// (clients "member-a" and "member-b", cooperative-sticky) in group "g"
// that have committed commits.
type groupFixture struct {
	b      *broker.Broker
	adm    *kadm.Client
	owners map[int32]string // partition → member id
	stop   func()           // closes the consumers (they leave the group)
}

func startGroup(t *testing.T) *groupFixture {
	t.Helper()
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 4})
	var recs []*kgo.Record
	for p, n := range sizes {
		for o := range n {
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(p), Value: []byte("x"),
				Timestamp: base.Add(time.Duration(o) * time.Second)})
		}
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	clients := map[string]*kgo.Client{}
	for _, name := range []string{"member-a", "member-b"} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ClientID(name), kgo.ConsumerGroup("g"),
			kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit(),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		clients[name] = cl
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cl.PollFetches(ctx)
			}
		}()
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			for _, cl := range clients {
				cl.Close() // leaves the group
			}
		})
	}
	t.Cleanup(stop)

	admCl := brokertest.Client(t, b.Addr())
	adm := kadm.NewClient(admCl)
	// Wait until the group is stable with both members owning partitions.
	owners := map[int32]string{}
	byClient := map[string]string{} // member id → client id
	deadline := time.Now().Add(brokertest.Timeout)
	for {
		owners, byClient = map[int32]string{}, map[string]string{}
		dg, err := adm.DescribeGroups(context.Background(), "g")
		if err == nil {
			g := dg["g"]
			for _, m := range g.Members {
				byClient[m.MemberID] = m.ClientID
				if c, ok := m.Assigned.AsConsumer(); ok {
					for _, tp := range c.Topics {
						for _, p := range tp.Partitions {
							owners[p] = m.MemberID
						}
					}
				}
			}
			if g.State == "Stable" && len(g.Members) == 2 && len(owners) == 4 && distinct(owners) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group g did not become stable with two members owning 4 partitions: %v %v", err, owners)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for p, owner := range owners {
		cl := clients[byClient[owner]]
		off := map[string]map[int32]kgo.EpochOffset{"orders": {p: {Epoch: -1, Offset: commits[p]}}}
		var cerr error
		cl.CommitOffsetsSync(context.Background(), off, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			cerr = err
			if err == nil {
				for _, tp := range resp.Topics {
					for _, pp := range tp.Partitions {
						if pp.ErrorCode != 0 {
							cerr = fmt.Errorf("commit %s-%d: error code %d", tp.Topic, pp.Partition, pp.ErrorCode)
						}
					}
				}
			}
		})
		if cerr != nil {
			t.Fatalf("commit partition %d by %s: %v", p, owner, cerr)
		}
	}
	return &groupFixture{b: b, adm: adm, owners: owners, stop: stop}
}

func distinct(m map[int32]string) int {
	s := map[string]bool{}
	for _, v := range m {
		s[v] = true
	}
	return len(s)
}

func TestDescribeMembersOffsetsLag(t *testing.T) {
	f := startGroup(t)
	now := base.Add(time.Hour)
	rep, err := groupstatus.Describe(context.Background(), f.adm, "g", groupstatus.Options{
		ClientOpts: []kgo.Opt{kgo.SeedBrokers(f.b.Addr())}, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.State != "Stable" || rep.Protocol != "cooperative-sticky" || rep.ProtocolType != "consumer" {
		t.Errorf("state %q protocol %q type %q", rep.State, rep.Protocol, rep.ProtocolType)
	}
	if len(rep.Members) != 2 {
		t.Fatalf("members %+v", rep.Members)
	}
	owned := 0
	for _, m := range rep.Members {
		if m.ClientID != "member-a" && m.ClientID != "member-b" || m.Host == "" || m.MemberID == "" {
			t.Errorf("member %+v", m)
		}
		for _, p := range m.Partitions {
			if p.Topic != "orders" || f.owners[p.Partition] != m.MemberID {
				t.Errorf("member %s lists %v, owner is %s", m.MemberID, p, f.owners[p.Partition])
			}
			owned++
		}
	}
	if owned != 4 {
		t.Errorf("members own %d partitions, want 4", owned)
	}
	if len(rep.Partitions) != 4 {
		t.Fatalf("partitions %+v", rep.Partitions)
	}
	var total int64
	for _, p := range rep.Partitions {
		i := p.Partition
		wantLag := int64(sizes[i]) - commits[i]
		total += wantLag
		if p.Topic != "orders" || p.MemberID != f.owners[i] || p.ClientID == "" {
			t.Errorf("partition %d: owner %q client %q, want %q", i, p.MemberID, p.ClientID, f.owners[i])
		}
		if p.Committed == nil || *p.Committed != commits[i] || p.Latest == nil || *p.Latest != int64(sizes[i]) ||
			p.Lag == nil || *p.Lag != wantLag {
			t.Errorf("partition %d: committed %v latest %v lag %v, want %d %d %d", i, deref(p.Committed), deref(p.Latest), deref(p.Lag), commits[i], sizes[i], wantLag)
		}
		// The record at the committed offset is stamped base + committed s.
		wantSec := now.Sub(base.Add(time.Duration(commits[i]) * time.Second)).Seconds()
		wantMethod := lag.MethodRecordTimestamp
		if wantLag == 0 {
			wantSec, wantMethod = 0, lag.MethodCaughtUp
		}
		if p.LagSeconds == nil || *p.LagSeconds != wantSec || p.LagMethod != wantMethod {
			t.Errorf("partition %d: lag seconds %v (%s), want %v (%s)", i, p.LagSeconds, p.LagMethod, wantSec, wantMethod)
		}
		if p.Status != lag.StatusOK {
			t.Errorf("partition %d: one snapshot gives %s (%s), want OK", i, p.Status, p.Reason)
		}
	}
	if rep.LagRecords != total || rep.MaxLagSeconds == nil || *rep.MaxLagSeconds != now.Sub(base.Add(5*time.Second)).Seconds() {
		t.Errorf("total lag %d (want %d), max seconds %v", rep.LagRecords, total, rep.MaxLagSeconds)
	}
	if rep.Health.Status != lag.StatusOK {
		t.Errorf("group health %+v", rep.Health)
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
	parts := back["partitions"].([]any)
	p1 := parts[1].(map[string]any)
	if p1["committedOffset"] != 5.0 || p1["latestOffset"] != 20.0 || p1["lagRecords"] != 15.0 || p1["status"] != "OK" ||
		p1["memberId"] != f.owners[1] || p1["lagSecondsMethod"] != "record-timestamp" {
		t.Errorf("json partition 1: %v", p1)
	}

	var tb bytes.Buffer
	if err := rep.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	out := tb.String()
	for _, want := range []string{
		"Group g: state Stable, protocol cooperative-sticky, 2 members",
		"MEMBER-ID", "CLIENT-ID", "member-a", "member-b",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 8 {
			rows[f[0]+"/"+f[1]] = strings.Join(f[2:], " ")
		}
	}
	for key, want := range map[string]string{
		"TOPIC/PARTITION": "MEMBER-ID COMMITTED-OFFSET LATEST-OFFSET LAG LAG-SECONDS STATUS",
		"orders/1":        f.owners[1] + " 5 20 15 3595.0 OK",
		"orders/2":        f.owners[2] + " 30 30 0 0.0 OK",
		"TOTAL/-":         "- - - 43 3595.0 OK",
	} {
		if rows[key] != want {
			t.Errorf("table row %s = %q, want %q:\n%s", key, rows[key], want, out)
		}
	}
}

// A committed offset that does not move while records are behind is
// STALL over two snapshots; the caught-up partitions stay OK.
func TestDescribeStallOverSamples(t *testing.T) {
	f := startGroup(t)
	rep, err := groupstatus.Describe(context.Background(), f.adm, "g", groupstatus.Options{
		Samples: 3, Interval: 50 * time.Millisecond, ClientOpts: []kgo.Opt{kgo.SeedBrokers(f.b.Addr())},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []lag.Status{lag.StatusOK, lag.StatusStall, lag.StatusOK, lag.StatusStall}
	for _, p := range rep.Partitions {
		if p.Status != want[p.Partition] {
			t.Errorf("partition %d: %s (%s), want %s", p.Partition, p.Status, p.Reason, want[p.Partition])
		}
	}
	if rep.Health.Status != lag.StatusStall || !strings.Contains(rep.Health.Reason, "orders-3") {
		t.Errorf("group health %+v, want STALL naming orders-3 (the larger lag)", rep.Health)
	}
	if rep.Samples != 3 {
		t.Errorf("samples %d", rep.Samples)
	}
}

// When every member has left, the commits remain; partitions behind are
// STOP (nobody reads them) and the members list is empty.
func TestDescribeEmptyGroupAndUnknownGroup(t *testing.T) {
	f := startGroup(t)
	f.stop()
	var rep *groupstatus.Report
	deadline := time.Now().Add(brokertest.Timeout)
	for {
		var err error
		rep, err = groupstatus.Describe(context.Background(), f.adm, "g", groupstatus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.State == "Empty" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rep.State != "Empty" || len(rep.Members) != 0 {
		t.Fatalf("state %s members %+v", rep.State, rep.Members)
	}
	for _, p := range rep.Partitions {
		want := lag.StatusOK
		if *p.Lag > 0 {
			want = lag.StatusStop
		}
		if p.Status != want || p.MemberID != "" || *p.Committed != commits[p.Partition] {
			t.Errorf("partition %d: %s %q owner %q committed %d", p.Partition, p.Status, p.Reason, p.MemberID, *p.Committed)
		}
		if p.LagSeconds != nil && *p.Lag > 0 {
			t.Errorf("partition %d: lag seconds %v without a record reader", p.Partition, *p.LagSeconds)
		}
	}
	if rep.Health.Status != lag.StatusStop {
		t.Errorf("group health %+v", rep.Health)
	}

	_, err := groupstatus.Describe(context.Background(), f.adm, "no-such-group", groupstatus.Options{})
	if !errors.Is(err, groupstatus.ErrNoGroup) || !strings.Contains(err.Error(), "no-such-group") {
		t.Errorf("unknown group: %v", err)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
