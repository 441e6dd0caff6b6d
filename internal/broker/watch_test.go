package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestSessionWatchWaiting follows one member through a rebalance as the
// watch sees it: waiting from its JoinGroup until its first own Heartbeat
// after the SyncGroup, for at most its rebalance timeout plus awaitSlack,
// at the generation its group last sent; the watch's own heartbeats do
// not end the wait.
func TestSessionWatchWaiting(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newSessionWatch()
	w.now = func() time.Time { return now }
	k := memberKey{"g", "m"}
	waiting := func() (bool, int32) {
		for _, a := range w.waiting() {
			if a.key == k {
				return true, a.generation
			}
		}
		return false, 0
	}

	if w.heartbeat("g", "other", 4) != true { // another member's: the group is at 4
		t.Fatal("another member's heartbeat taken for the watch's")
	}
	w.joined("g", "m", 10*time.Second, nil)
	if ok, gen := waiting(); !ok || gen != 4 {
		t.Fatalf("after JoinGroup: waiting %v at generation %d, want true at 4", ok, gen)
	}
	w.sending(k) // a keep-alive in flight is not the member speaking
	if w.heartbeat("g", "m", 4) {
		t.Fatal("the watch's keep-alive taken for the member's heartbeat")
	}
	if ok, _ := waiting(); !ok {
		t.Fatal("the watch's keep-alive ended the wait")
	}
	w.answered(k, 5, kerr.RebalanceInProgress.Code) // generation 5 taken
	w.synced("g", "m", 5, nil)
	if ok, gen := waiting(); !ok || gen != 5 {
		t.Fatalf("after SyncGroup: waiting %v at generation %d, want true at 5", ok, gen)
	}
	now = now.Add(19 * time.Second)
	if ok, _ := waiting(); !ok {
		t.Fatal("wait ended before the rebalance timeout plus awaitSlack")
	}
	if !w.heartbeat("g", "m", 5) {
		t.Fatal("the member's own heartbeat taken for the watch's")
	}
	if ok, _ := waiting(); ok {
		t.Fatal("still waiting after the member's own heartbeat")
	}

	// A member that never speaks again is let go after its wait's bound.
	w.joined("g", "dead", 10*time.Second, nil)
	now = now.Add(20 * time.Second)
	for _, a := range w.waiting() {
		if a.key.member == "dead" {
			t.Fatal("a member kept alive past its rebalance timeout plus awaitSlack")
		}
	}
	// One the broker no longer knows is let go at once.
	w.joined("g", "gone", 10*time.Second, nil)
	w.answered(memberKey{"g", "gone"}, 5, kerr.UnknownMemberID.Code)
	for _, a := range w.waiting() {
		if a.key.member == "gone" {
			t.Fatal("a member the broker does not know kept alive")
		}
	}
}
