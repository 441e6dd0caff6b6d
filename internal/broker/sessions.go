package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Session expiry for classic consumer groups, where kfake misses one case.
//
// kfake starts a member's session timer when it answers the member's
// JoinGroup, and only if the answer could be written: a member whose
// connection died while it waited in JoinGroup for the rebalance to
// complete (a process killed at that moment) keeps its place in the group
// with no timer at all. The rebalance still completes with it, the leader
// assigns it partitions, the group turns Stable — and no member ever
// consumes those partitions again, because nothing expires the dead member.
// A Kafka broker schedules every member's heartbeat expiry when the join
// completes, so there the dead member is removed after its session timeout
// and the group rebalances.
//
// sessionWatch gives the embedded broker that behaviour: it notes the last
// JoinGroup, SyncGroup, Heartbeat and OffsetCommit of every member (kfake
// control functions that only look and let kfake answer), and when a member
// of a Stable group has sent nothing for its session timeout plus
// sessionGrace, it asks kfake to remove it with a LeaveGroup in its name.
// A live member heartbeats far more often than its session timeout, and
// kfake expires one it has a timer for by itself before the grace is over,
// so only members kfake forgot are removed here.

// sessionGrace is how long past its session timeout a silent member of a
// Stable group is left to kfake's own expiry before the watch removes it.
const sessionGrace = 2 * time.Second

// sessionCheck is how often the watch looks for silent members.
const sessionCheck = time.Second

// defaultSessionTimeout is assumed for a member first seen without its
// JoinGroup (one that joined before a restart of a persisted broker):
// Kafka's default session.timeout.ms.
const defaultSessionTimeout = 45 * time.Second

// memberKey names a member of a group.
type memberKey struct{ group, member string }

// memberSeen is when a member last talked to its group and its session
// timeout.
type memberSeen struct {
	last    time.Time
	session time.Duration
}

// sessionWatch is the state of the watch (see above).
type sessionWatch struct {
	mu   sync.Mutex
	seen map[memberKey]memberSeen
	now  func() time.Time
}

func newSessionWatch() *sessionWatch {
	return &sessionWatch{seen: map[memberKey]memberSeen{}, now: time.Now}
}

// note records a request from member of group; session is the member's
// session timeout when the request says it (JoinGroup), else 0.
func (w *sessionWatch) note(group, member string, session time.Duration) {
	if group == "" || member == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	k := memberKey{group, member}
	s := w.seen[k]
	s.last = w.now()
	if session > 0 {
		s.session = session
	} else if s.session == 0 {
		s.session = defaultSessionTimeout
	}
	w.seen[k] = s
}

// silent returns, by group, the members that have sent nothing for their
// session timeout plus sessionGrace.
func (w *sessionWatch) silent() map[string][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var out map[string][]string
	for k, s := range w.seen {
		if now.Sub(s.last) >= s.session+sessionGrace {
			if out == nil {
				out = map[string][]string{}
			}
			out[k.group] = append(out[k.group], k.member)
		}
	}
	return out
}

// stillSilent re-checks one member just before it is removed (it may have
// spoken since silent listed it).
func (w *sessionWatch) stillSilent(group, member string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.seen[memberKey{group, member}]
	return ok && w.now().Sub(s.last) >= s.session+sessionGrace
}

// forget drops a member the group no longer has.
func (w *sessionWatch) forget(group, member string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.seen, memberKey{group, member})
}

// watchSessions installs the control functions that feed the watch and
// starts its loop, which ends with ctx.
func (b *Broker) watchSessions(ctx context.Context) <-chan struct{} {
	w := newSessionWatch()
	c := b.cluster
	look := func(key int16, see func(kmsg.Request)) {
		c.ControlKey(key, func(r kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			see(r)
			return nil, nil, false // kfake answers
		})
	}
	look(kmsg.JoinGroup.Int16(), func(r kmsg.Request) {
		if req, ok := r.(*kmsg.JoinGroupRequest); ok {
			w.note(req.Group, req.MemberID, time.Duration(req.SessionTimeoutMillis)*time.Millisecond)
		}
	})
	look(kmsg.SyncGroup.Int16(), func(r kmsg.Request) {
		if req, ok := r.(*kmsg.SyncGroupRequest); ok {
			w.note(req.Group, req.MemberID, 0)
		}
	})
	look(kmsg.Heartbeat.Int16(), func(r kmsg.Request) {
		if req, ok := r.(*kmsg.HeartbeatRequest); ok {
			w.note(req.Group, req.MemberID, 0)
		}
	})
	look(kmsg.OffsetCommit.Int16(), func(r kmsg.Request) {
		if req, ok := r.(*kmsg.OffsetCommitRequest); ok {
			w.note(req.Group, req.MemberID, 0)
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(sessionCheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for group, members := range w.silent() {
				b.expireSilent(ctx, w, group, members)
			}
		}
	}()
	return done
}

// expireSilent removes from group those of members it still has that are
// still silent, when the group is Stable (members waiting in a rebalance
// send nothing while they wait, and kfake times that wait itself).
func (b *Broker) expireSilent(ctx context.Context, w *sessionWatch, group string, members []string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	described, err := b.admin.DescribeGroups(ctx, group)
	if err != nil {
		return
	}
	g, ok := described[group]
	if !ok || g.Err != nil {
		return
	}
	has := map[string]bool{}
	for _, m := range g.Members {
		has[m.MemberID] = true
	}
	var leave []string
	for _, m := range members {
		switch {
		case !has[m]:
			w.forget(group, m)
		case g.State == "Stable" && w.stillSilent(group, m):
			leave = append(leave, m)
		}
	}
	if len(leave) == 0 {
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, m := range leave {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m
		reason := "sluice broker: no request from the member within its session timeout"
		lm.Reason = &reason
		req.Members = append(req.Members, lm)
	}
	if _, err := req.RequestWith(ctx, b.client); err != nil {
		b.logger.Warn("broker: could not remove silent group members", "group", group, "members", leave, "err", err)
		return
	}
	for _, m := range leave {
		w.forget(group, m)
	}
	b.logger.Info("broker: removed group members silent past their session timeout", "group", group, "members", leave)
}
