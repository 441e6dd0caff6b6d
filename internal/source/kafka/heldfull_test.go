package kafka

import (
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/partition"
)

// TestHeldFullMarksAPauseAfterTheTake: adjustPausesFor leaves the
// partition holding a response's last record running, and says whether
// it must be paused (heldFull) — fetchLoop pauses it as soon as that
// record is taken, before it yields to the client goroutine that builds
// the next request.
func TestHeldFullMarksAPauseAfterTheTake(t *testing.T) {
	s, err := New(map[string]string{"kafka.bootstrap.servers": "127.0.0.1:1", "subscribe": "t"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tp := partition.ID{Topic: "t", Partition: 0}
	for _, tc := range []struct {
		carried int64
		want    bool
	}{{carried: 10, want: false}, {carried: 1 << 20, want: true}} {
		s.fmu.Lock()
		s.prefetchBytes.Store(256 << 10)
		s.assigned = map[partition.ID]bool{tp: true}
		s.pos = map[partition.ID]int64{tp: 100}
		s.carry = map[partition.ID][]*kgo.Record{tp: {{Offset: 99}}}
		s.carryBytes = map[partition.ID]int64{tp: tc.carried}
		s.carryTotalBytes = tc.carried
		s.held = &tp
		s.heldFull = false
		s.adjustPausesFor(map[partition.ID]arriving{tp: {recs: 1, bytes: 10, next: 101}})
		got, paused := s.heldFull, s.paused[tp]
		s.fmu.Unlock()
		if got != tc.want || paused {
			t.Errorf("carry of %d bytes: heldFull %v, paused %v; want %v, false (paused once taken)", tc.carried, got, paused, tc.want)
		}
	}
}
