package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestSessionWatchWaiting follows members through rebalances as the watch
// sees them: a JoinGroup waits until a member sends the next generation, a
// follower's SyncGroup until the leader's of its generation, none past its
// rebalance timeout plus awaitSlack; the watch's own heartbeats do not end
// a wait, the member's do.
func TestSessionWatchWaiting(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newSessionWatch()
	w.now = func() time.Time { return now }
	waiting := func(member string) (bool, int32) {
		for _, a := range w.waiting() {
			if a.key == (memberKey{"g", member}) {
				return true, a.generation
			}
		}
		return false, 0
	}
	check := func(step, member string, want bool) {
		t.Helper()
		if got, _ := waiting(member); got != want {
			t.Fatalf("%s: %s waiting = %v, want %v", step, member, got, want)
		}
	}

	if !w.heartbeat("g", "other", 4) { // another member's: the group is at 4
		t.Fatal("another member's heartbeat taken for the watch's")
	}
	w.joined("g", "m", 10*time.Second, nil)
	w.joined("g", "n", 10*time.Second, nil) // will be killed once answered
	if ok, gen := waiting("m"); !ok || gen != 4 {
		t.Fatalf("after JoinGroup: waiting %v at generation %d, want true at 4", ok, gen)
	}
	w.sending(memberKey{"g", "m"}) // a keep-alive in flight is not the member speaking
	if w.heartbeat("g", "m", 4) {
		t.Fatal("the watch's keep-alive taken for the member's heartbeat")
	}
	check("after the watch's keep-alive", "m", true)
	w.heartbeat("g", "other", 4) // the group still at 4: m's join still open
	check("after a heartbeat at the same generation", "m", true)

	// The join completes: members sync at 5; m is a follower, "other" leads.
	w.synced("g", "m", 5, false, nil)
	check("after a follower's SyncGroup", "m", true)
	check("a JoinGroup of generation 4 once 5 showed (n answered, then killed)", "n", false)
	now = now.Add(19 * time.Second)
	check("before the rebalance timeout plus awaitSlack", "m", true)
	w.synced("g", "other", 5, true, nil)
	check("after the leader's SyncGroup", "m", false)
	w.synced("g", "slow", 5, false, nil) // a follower syncing after the leader: answered at once
	check("a SyncGroup after the leader's", "slow", false)

	// A member that joins and never speaks again is let go after its
	// rebalance timeout plus awaitSlack, even while the group prepares.
	w.joined("g", "dead", 10*time.Second, nil)
	w.answered(memberKey{"g", "dead"}, 5, kerr.RebalanceInProgress.Code)
	check("a JoinGroup waiting in a preparing group", "dead", true)
	now = now.Add(20 * time.Second)
	check("past the rebalance timeout plus awaitSlack", "dead", false)

	// One the broker no longer knows is let go at once.
	w.joined("g", "gone", 10*time.Second, nil)
	w.answered(memberKey{"g", "gone"}, 5, kerr.UnknownMemberID.Code)
	check("a member the broker does not know", "gone", false)

	// A JoinGroup placed at a generation the watch had not seen yet is
	// moved up when a keep-alive finds the group preparing at a newer one.
	w.joined("g", "stale", 10*time.Second, nil) // placed at 5
	w.answered(memberKey{"g", "stale"}, 6, kerr.RebalanceInProgress.Code)
	if ok, gen := waiting("stale"); !ok || gen != 6 {
		t.Fatalf("after REBALANCE_IN_PROGRESS at 6: waiting %v at %d, want true at 6", ok, gen)
	}
	if !w.heartbeat("g", "m", 6) || func() bool { ok, _ := waiting("stale"); return !ok }() {
		t.Fatal("a heartbeat at the generation the join waits in ended the wait")
	}
}
