package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
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

// Members waiting in a rebalance, where kfake misses a second case.
//
// A Kafka broker keeps a member alive while it waits in JoinGroup or
// SyncGroup: the request in flight satisfies its heartbeat expiry. kfake
// keeps the timer of the member's last heartbeat running instead, so a known
// member that waits in a rebalance longer than its session timeout (a
// rebalance held up by a slow member for up to the rebalance timeout, or a
// leader that never syncs) is removed while it waits. Its request is never
// answered: the client waits for its own timeout (the rebalance timeout plus
// ten seconds in franz-go), finds itself unknown, joins again as a new member
// and so restarts the rebalance's wait. With a 6 s session and a 10 s
// rebalance timeout, members killed and restarted every few seconds kept a
// group in PreparingRebalance for minutes this way.
//
// The watch therefore heartbeats, in the member's name, every member whose
// JoinGroup or SyncGroup is not answered yet; kfake restarts the member's
// session timer, as a Kafka broker keeps it alive. The watch sees requests
// only, so it reads answers from them: a JoinGroup is answered when a
// member sends the group's next generation (every member syncs right after
// the join completes), a SyncGroup when the leader's SyncGroup of its
// generation arrives. A member answered and killed before its next request
// is thus not kept (it would hold up the next rebalance until its
// rebalance timeout), and none is kept past its rebalance timeout plus
// awaitSlack, when its client has given up on the request. The heartbeat
// carries the group's generation as last seen in its members' requests (a
// member waiting in JoinGroup sends none).

// awaitSlack is added to a member's rebalance timeout to bound how long it
// may wait for the answer to a JoinGroup or SyncGroup: franz-go gives up on
// those requests after the rebalance timeout plus its 10 s request overhead.
const awaitSlack = 10 * time.Second

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

// awaitState is a member waiting for the answer to its JoinGroup or
// SyncGroup: which of the two, the generation the group had when it asked
// (a JoinGroup's answer starts the next one; a SyncGroup carries the one it
// syncs), until when it may still wait, and its static instance id.
type awaitState struct {
	sync     bool
	gen      int32
	until    time.Time
	instance *string
}

// sessionWatch is the state of the watch (see above).
type sessionWatch struct {
	mu   sync.Mutex
	seen map[memberKey]memberSeen
	now  func() time.Time

	// awaiting holds the members that sent a JoinGroup or SyncGroup the
	// broker has not answered yet, as far as the watch can tell from the
	// requests alone: a JoinGroup is answered when the group reaches a
	// newer generation (a member sends it), a SyncGroup when the leader's
	// SyncGroup of its generation arrives (leaderSynced) or a newer
	// generation shows. rebalance is each member's rebalance timeout from
	// its last JoinGroup; generation the highest generation each group's
	// members sent; ours counts the watch's own heartbeats in flight per
	// member, which the control function must not take for the member's.
	awaiting     map[memberKey]awaitState
	rebalance    map[memberKey]time.Duration
	generation   map[string]int32
	leaderSynced map[string]int32
	ours         map[memberKey]int
}

func newSessionWatch() *sessionWatch {
	return &sessionWatch{seen: map[memberKey]memberSeen{}, now: time.Now,
		awaiting: map[memberKey]awaitState{}, rebalance: map[memberKey]time.Duration{},
		generation: map[string]int32{}, leaderSynced: map[string]int32{}, ours: map[memberKey]int{}}
}

// joined records a member's JoinGroup: it waits for the answer until the
// group's next generation, for up to its rebalance timeout (plus
// awaitSlack).
func (w *sessionWatch) joined(group, member string, rebalance time.Duration, instance *string) {
	if group == "" || member == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	k := memberKey{group, member}
	w.rebalance[k] = rebalance
	w.awaiting[k] = awaitState{gen: w.generation[group], until: w.now().Add(rebalance + awaitSlack), instance: instance}
}

// synced records a member's SyncGroup at generation; leader says it
// carried the group's assignment, which answers every SyncGroup of that
// generation.
func (w *sessionWatch) synced(group, member string, generation int32, leader bool, instance *string) {
	if group == "" || member == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	k := memberKey{group, member}
	w.sawGeneration(group, generation)
	if leader {
		w.leaderSynced[group] = max(w.leaderSynced[group], generation)
		for o, a := range w.awaiting {
			if o.group == group && a.sync && a.gen <= generation {
				delete(w.awaiting, o)
			}
		}
		delete(w.awaiting, k)
		return
	}
	if w.leaderSynced[group] >= generation {
		delete(w.awaiting, k) // the group is Stable: answered at once
		return
	}
	w.awaiting[k] = awaitState{sync: true, gen: generation, until: w.now().Add(w.rebalance[k] + awaitSlack), instance: instance}
}

// heartbeat records a Heartbeat in member's name and reports whether it
// was the member's own (false: one of the watch's keep-alives).
func (w *sessionWatch) heartbeat(group, member string, generation int32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := memberKey{group, member}
	if w.ours[k] > 0 {
		w.ours[k]--
		if w.ours[k] == 0 {
			delete(w.ours, k)
		}
		return false
	}
	w.sawGeneration(group, generation)
	delete(w.awaiting, k) // it had its answer
	return true
}

// sawGeneration notes a generation a member of group sent. w.mu is held.
func (w *sessionWatch) sawGeneration(group string, generation int32) {
	if generation > w.generation[group] {
		w.generation[group] = generation
	}
}

// keepAlive is one heartbeat the watch sends in a waiting member's name.
type keepAlive struct {
	key        memberKey
	generation int32
	instance   *string
}

// waiting returns the members still waiting for the answer to their
// JoinGroup or SyncGroup, each with its group's generation, and drops
// those answered or past their wait.
func (w *sessionWatch) waiting() []keepAlive {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var out []keepAlive
	for k, a := range w.awaiting {
		if !now.Before(a.until) || w.generation[k.group] > a.gen {
			delete(w.awaiting, k)
			continue
		}
		out = append(out, keepAlive{key: k, generation: w.generation[k.group], instance: a.instance})
	}
	return out
}

// sending marks a keep-alive heartbeat about to be sent in k's name.
func (w *sessionWatch) sending(k memberKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ours[k]++
}

// answered notes what the broker said to a keep-alive at generation. A
// member it no longer has needs nothing more. REBALANCE_IN_PROGRESS says
// the group is still preparing at generation: a JoinGroup the watch
// placed at an older one (it had not seen this one) is still waiting.
func (w *sessionWatch) answered(k memberKey, generation int32, code int16) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch code {
	case kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code:
		delete(w.awaiting, k)
	case kerr.RebalanceInProgress.Code:
		if generation > w.generation[k.group] {
			for o, a := range w.awaiting {
				if o.group == k.group && !a.sync && a.gen < generation {
					a.gen = generation
					w.awaiting[o] = a
				}
			}
		}
		w.sawGeneration(k.group, generation)
	case 0:
		w.sawGeneration(k.group, generation)
	}
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
	k := memberKey{group, member}
	delete(w.seen, k)
	delete(w.awaiting, k)
	delete(w.rebalance, k)
	delete(w.ours, k)
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
			w.joined(req.Group, req.MemberID, time.Duration(req.RebalanceTimeoutMillis)*time.Millisecond, req.InstanceID)
			b.logger.Debug("group: JoinGroup", "group", req.Group, "member", req.MemberID)
		}
	})
	look(kmsg.SyncGroup.Int16(), func(r kmsg.Request) {
		if req, ok := r.(*kmsg.SyncGroupRequest); ok {
			w.note(req.Group, req.MemberID, 0)
			w.synced(req.Group, req.MemberID, req.Generation, len(req.GroupAssignment) > 0, req.InstanceID)
			b.logger.Debug("group: SyncGroup", "group", req.Group, "member", req.MemberID, "generation", req.Generation, "leader", len(req.GroupAssignment) > 0)
		}
	})
	look(kmsg.Heartbeat.Int16(), func(r kmsg.Request) {
		if req, ok := r.(*kmsg.HeartbeatRequest); ok && w.heartbeat(req.Group, req.MemberID, req.Generation) {
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
			for _, k := range w.waiting() {
				b.keepWaitingAlive(ctx, w, k)
			}
			for group, members := range w.silent() {
				b.expireSilent(ctx, w, group, members)
			}
		}
	}()
	return done
}

// keepWaitingAlive heartbeats in the name of a member waiting in a
// rebalance (see "Members waiting in a rebalance" above). A generation the
// broker refuses is followed by the next one: a rebalance may have
// completed before any member sent the new generation.
func (b *Broker) keepWaitingAlive(ctx context.Context, w *sessionWatch, k keepAlive) {
	for gen := k.generation; gen <= k.generation+1; gen++ {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation, req.InstanceID = k.key.group, k.key.member, gen, k.instance
		w.sending(k.key)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := req.RequestWith(rctx, b.client)
		cancel()
		if err != nil {
			b.logger.Debug("group: keep-alive of a member waiting in a rebalance failed", "group", k.key.group, "member", k.key.member, "err", err)
			return
		}
		b.logger.Debug("group: kept alive a member waiting in a rebalance", "group", k.key.group, "member", k.key.member, "generation", gen, "answer", kerr.ErrorForCode(resp.ErrorCode))
		w.answered(k.key, gen, resp.ErrorCode)
		if resp.ErrorCode != kerr.IllegalGeneration.Code {
			return
		}
	}
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
