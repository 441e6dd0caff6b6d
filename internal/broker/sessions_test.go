package broker_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

// severable hands out connections it can cut all at once, after which it
// dials nothing: a process killed mid-request, as the broker sees it.
type severable struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (s *severable) dial(ctx context.Context, network, host string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut {
		return nil, errors.New("severed")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err == nil {
		s.conns = append(s.conns, c)
	}
	return c, err
}

func (s *severable) sever() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = true
	for _, c := range s.conns {
		c.Close()
	}
}

// TestSessionWatchRemovesAMemberThatDiedInJoin: a member whose process dies
// while it waits in JoinGroup for a rebalance is still part of that
// rebalance (kfake cannot deliver its answer and starts no session timer
// for it) and may be assigned partitions nobody owns; the group turns
// Stable with the dead member owning them. The embedded broker must remove
// it after its session timeout, as a Kafka broker does, so the live member
// gets every partition back.
func TestSessionWatchRemovesAMemberThatDiedInJoin(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "t", Partitions: 4})
	const group = "g"
	// Members heartbeat every 2 s: a rebalance waits up to 2 s for a live
	// member to rejoin, and the doomed member dies inside that wait.
	opts := func(rebalance time.Duration, more ...kgo.Opt) []kgo.Opt {
		return append([]kgo.Opt{kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics("t"),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(2 * time.Second), kgo.RebalanceTimeout(rebalance)}, more...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var polls sync.WaitGroup
	defer func() { cancel(); polls.Wait() }()
	member := func() *kgo.Client {
		cl, err := kgo.NewClient(opts(10 * time.Second)...)
		if err != nil {
			t.Fatal(err)
		}
		polls.Add(1)
		go func() {
			defer polls.Done()
			for ctx.Err() == nil {
				cl.PollFetches(ctx)
			}
		}()
		return cl
	}
	live, leaving := member(), member()
	defer live.Close()
	adm := kadm.NewClient(brokertest.Client(t, b.Addr()))
	// owners is the group's state and its members' partition counts.
	owners := func() (string, map[string]int) {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		dg, err := adm.DescribeGroups(dctx, group)
		if err != nil {
			return "", nil
		}
		g := dg[group]
		out := map[string]int{}
		for _, m := range g.Members {
			out[m.MemberID] = 0
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, tp := range a.Topics {
					out[m.MemberID] += len(tp.Partitions)
				}
			}
		}
		return g.State, out
	}
	waitFor := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !ok() {
			if time.Now().After(deadline) {
				st, o := owners()
				t.Fatalf("%s: not within %s (group %s, partitions per member %v)", what, d, st, o)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("two live members sharing the 4 partitions", 20*time.Second, func() bool {
		st, o := owners()
		return st == "Stable" && len(o) == 2
	})
	liveID, _ := live.GroupMetadata()

	// The doomed member (told apart by its rebalance timeout) joins the
	// rebalance that the leaving member's exit starts; when the live
	// member rejoins, which completes that rebalance, the doomed one's
	// connections are cut first — it dies waiting in JoinGroup, and the
	// leaving member's partitions, owned by nobody, can go to it.
	var sv severable
	var joined, died atomic.Bool
	c := b.Cluster()
	c.ControlKey(kmsg.JoinGroup.Int16(), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req, ok := r.(*kmsg.JoinGroupRequest)
		switch {
		case !ok:
		case req.MemberID != "" && req.RebalanceTimeoutMillis == 11000:
			joined.Store(true)
		case req.MemberID == liveID && joined.Load() && !died.Load():
			sv.sever()
			time.Sleep(300 * time.Millisecond) // the broker sees the connections close
			died.Store(true)
		}
		return nil, nil, false
	})
	leaving.Close()
	doomed, err := kgo.NewClient(opts(11*time.Second, kgo.Dialer(sv.dial), kgo.RetryTimeout(time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { // its leave cannot reach the broker; do not wait long for it
		closed := make(chan struct{})
		go func() { doomed.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
		}
	}()
	waitFor("the doomed member to join and die", 20*time.Second, died.Load)
	// With the dead member kept (the broker's gap), the group is Stable
	// with it owning partitions; the watch removes it 6 s (its session
	// timeout) + 2 s after its last request.
	var sawDeadOwner bool
	waitFor("the dead member to be removed and the live member to own all 4 partitions again", 30*time.Second, func() bool {
		st, o := owners()
		if st == "Stable" && len(o) == 2 && o[liveID] < 4 {
			sawDeadOwner = true
		}
		return st == "Stable" && len(o) == 1 && o[liveID] == 4
	})
	if !sawDeadOwner {
		t.Skip("the rebalance did not complete with the dead member owning partitions this time (timing): the case was not exercised")
	}
}
