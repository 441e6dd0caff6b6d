package lag

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
)

// win builds samples one second apart from (offset, latest) pairs,
// batches numbered from 1.
func win(pairs ...int64) []Sample {
	var out []Sample
	for i := 0; i < len(pairs); i += 2 {
		n := int64(i / 2)
		out = append(out, Sample{Batch: n + 1, Time: at(float64(n)), Offset: pairs[i], Latest: pairs[i+1]})
	}
	return out
}

// growing returns n samples where offsets advance by step and lag grows by grow.
func growing(n int, startLag, step, grow int64) []Sample {
	var pairs []int64
	for i := range int64(n) {
		off := 1000 + i*step
		pairs = append(pairs, off, off+startLag+i*grow)
	}
	return win(pairs...)
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name      string
		window    []Sample
		now       time.Time
		cfg       Config
		want      Status
		wantLag   int64
		reasonHas []string
	}{
		{"empty", nil, at(0), Config{}, StatusErr, 0, []string{"no committed batch"}},
		{"caught up", win(100, 200, 200, 200), at(1), Config{}, StatusOK, 0, []string{"caught up at offset 200"}},
		{"rewind even when caught up", win(500, 600, 300, 600, 600, 600), at(2), Config{}, StatusRewind, 0,
			[]string{"backwards from 500 to 300", "batch 1 and batch 2"}},
		{"warn: lag grew", growing(10, 1200, 100, 466), at(9), Config{}, StatusWarn, 1200 + 9*466,
			[]string{"lag grew from 1200 to 5394 records over the last 10 batches", "offsets advanced from 1000 to 1900"}},
		{"warn: lag flat while advancing", growing(5, 800, 100, 0), at(4), Config{}, StatusWarn, 800,
			[]string{"stayed at 800 records over the last 5 batches"}},
		{"ok: lag decreasing", win(100, 900, 300, 1000, 600, 1050), at(2), Config{}, StatusOK, 450,
			[]string{"from 800 to 450"}},
		{"ok: one dip is enough", win(100, 300, 200, 500, 400, 550, 500, 800), at(3), Config{}, StatusOK, 300, nil},
		{"stall", win(700, 900, 700, 950, 700, 1200), at(2), Config{}, StatusStall, 500,
			[]string{"stuck at 700 for the last 3 batches while 500 records behind"}},
		{"ok: zero lag in window beats stall", win(700, 700, 700, 950, 700, 1200), at(2), Config{}, StatusOK, 500,
			[]string{"caught up at batch 1, 2 batches ago"}},
		{"stop: burrow span", win(100, 900, 300, 1000, 500, 1100), at(2 + 2.5), Config{}, StatusStop, 600,
			[]string{"no commit for 2.5s (threshold 2s) since batch 3", "600 records behind"}},
		{"stop beats zero lag in window", win(100, 100, 300, 1000), at(1 + 60), Config{StopAfter: 30 * time.Second}, StatusStop, 700,
			[]string{"threshold 30s"}},
		{"no stop within threshold", win(100, 900, 300, 1000, 500, 1100), at(2 + 20), Config{StopAfter: 30 * time.Second}, StatusOK, 600, []string{"from 800 to 600"}},
		{"no stop when caught up", win(100, 900, 900, 900), at(1000), Config{}, StatusOK, 0, nil},
		{"single sample behind", win(100, 900), at(0), Config{}, StatusOK, 800, []string{"no trend yet"}},
		{"single sample, stop threshold", win(100, 900), at(100), Config{StopAfter: time.Minute}, StatusStop, 800, nil},
		// Only the newest 3 samples count: the early rewind is out of the window.
		{"window bounds history", win(500, 600, 100, 600, 200, 700, 300, 900, 400, 1200), at(4), Config{Window: 3}, StatusWarn, 800, []string{"last 3 batches"}},
		{"latest below offset counts as no lag", win(100, 50), at(0), Config{}, StatusOK, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Evaluate(tt.window, tt.now, tt.cfg)
			if h.Status != tt.want || h.Lag != tt.wantLag {
				t.Errorf("Evaluate = %v lag %d (%q), want %v lag %d", h.Status, h.Lag, h.Reason, tt.want, tt.wantLag)
			}
			for _, s := range tt.reasonHas {
				if !strings.Contains(h.Reason, s) {
					t.Errorf("reason %q lacks %q", h.Reason, s)
				}
			}
		})
	}
}

// heads builds samples one second apart from (offset, planned latest,
// sampled head) triples, batches numbered from 1.
func heads(triples ...int64) []Sample {
	var out []Sample
	for i := 0; i < len(triples); i += 3 {
		n := int64(i / 3)
		out = append(out, Sample{Batch: n + 1, Time: at(float64(n)), Offset: triples[i], Latest: triples[i+1], Head: triples[i+2]})
	}
	return out
}

// TestEvaluateWithSampledHeads: the lag a batch leaves is measured against
// the head sampled after it, not only against its plan.
func TestEvaluateWithSampledHeads(t *testing.T) {
	tests := []struct {
		name      string
		window    []Sample
		want      Status
		wantLag   int64
		reasonHas []string
	}{
		// A limit of 12,000 per batch, 32,000 arriving per batch: one
		// caught-up batch before the spike must not hide the growth.
		{"spike under a binding limit", heads(
			10_000, 10_000, 10_100,
			22_000, 40_000, 42_000,
			34_000, 72_000, 74_000,
			46_000, 104_000, 106_000), StatusWarn, 60_000,
			[]string{"lag grew from 100 to 60000 records over the last 4 batches", "offsets advanced from 10000 to 46000"}},
		{"healthy without a limit: what arrived during the batch", heads(
			1_000, 1_000, 1_180,
			1_200, 1_200, 1_390,
			1_400, 1_400, 1_570,
			1_600, 1_600, 1_810), StatusOK, 210,
			[]string{"210 records arrived while batch 4 ran; it took all its plan saw"}},
		{"no limit, batches snowball", heads(
			1_000, 1_000, 1_500,
			1_600, 1_600, 2_600,
			2_700, 2_700, 4_700,
			4_800, 4_800, 8_800), StatusWarn, 4_000,
			[]string{"lag grew from 500 to 4000 records over the last 4 batches"}},
		// At equilibrium the lag wobbles by less than a batch reads: no
		// growth alarm (the planned lag decreased once: OK).
		{"binding limit at equilibrium", heads(
			10_000, 15_000, 15_400,
			22_000, 27_100, 27_500,
			34_000, 39_000, 39_600,
			46_000, 51_200, 51_700), StatusOK, 5_700, []string{"decreasing at least once"}},
		{"draining after a spike", heads(
			46_000, 104_000, 106_000,
			58_000, 108_000, 110_000,
			70_000, 112_000, 113_000), StatusOK, 43_000, []string{"from 60000 to 43000"}},
		{"caught up with nothing arriving", heads(500, 500, 500), StatusOK, 0, []string{"caught up at offset 500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Evaluate(tt.window, at(float64(len(tt.window)-1)), Config{})
			if h.Status != tt.want || h.Lag != tt.wantLag {
				t.Errorf("Evaluate = %v lag %d (%q), want %v lag %d", h.Status, h.Lag, h.Reason, tt.want, tt.wantLag)
			}
			for _, s := range tt.reasonHas {
				if !strings.Contains(h.Reason, s) {
					t.Errorf("reason %q lacks %q", h.Reason, s)
				}
			}
		})
	}
}

func TestEvaluateComplete(t *testing.T) {
	h := Evaluate(growing(4, 10, 5, 1), at(3), Config{Window: 8})
	if h.Samples != 4 || h.Complete != 0.5 {
		t.Errorf("Samples %d Complete %v, want 4 and 0.5", h.Samples, h.Complete)
	}
	h = Evaluate(growing(20, 10, 5, 1), at(19), Config{})
	if h.Samples != DefaultWindow || h.Complete != 1 {
		t.Errorf("Samples %d Complete %v, want %d and 1", h.Samples, h.Complete, DefaultWindow)
	}
}

func TestQueryHealth(t *testing.T) {
	ph := func(topic string, part int32, s Status, lag int64, reason string) PartitionHealth {
		return PartitionHealth{Partition: partition.ID{Topic: topic, Partition: part}, Health: Health{Status: s, Lag: lag, Reason: reason, Complete: 1}}
	}
	tests := []struct {
		name       string
		parts      []PartitionHealth
		want       Status
		wantLag    int64
		wantReason string
	}{
		{"none", nil, StatusErr, 0, "no partitions"},
		{"all ok", []PartitionHealth{ph("o", 0, StatusOK, 5, ""), ph("o", 1, StatusOK, 7, "")}, StatusOK, 12,
			"all 2 partitions OK, 12 records behind in total"},
		{"worst wins", []PartitionHealth{ph("o", 0, StatusWarn, 50, "w0"), ph("o", 1, StatusStall, 10, "stuck"), ph("o", 2, StatusWarn, 70, "w2")},
			StatusStall, 130, "o-1: stuck (1 of 3 partitions STALL)"},
		{"tie: larger lag", []PartitionHealth{ph("o", 0, StatusWarn, 50, "w0"), ph("o", 1, StatusWarn, 90, "w1"), ph("o", 2, StatusOK, 0, "")},
			StatusWarn, 140, "o-1: w1 (2 of 3 partitions WARN)"},
		{"unknown does not hide ok", []PartitionHealth{ph("o", 0, StatusErr, 0, "no data"), ph("o", 1, StatusOK, 3, "")}, StatusErr, 3,
			"o-0: no data (1 of 2 partitions ERR)"},
		{"unknown below warn", []PartitionHealth{ph("o", 0, StatusErr, 0, "no data"), ph("o", 1, StatusWarn, 3, "growing")}, StatusWarn, 3,
			"o-1: growing"},
		{"rewind is worst", []PartitionHealth{ph("o", 0, StatusStop, 9, "stop"), ph("a", 0, StatusRewind, 0, "back")}, StatusRewind, 9,
			"a-0: back"},
	}
	for _, tt := range tests {
		h := QueryHealth(tt.parts)
		if h.Status != tt.want || h.Lag != tt.wantLag || !strings.HasPrefix(h.Reason, tt.wantReason) {
			t.Errorf("%s: QueryHealth = %v lag %d %q; want %v lag %d %q", tt.name, h.Status, h.Lag, h.Reason, tt.want, tt.wantLag, tt.wantReason)
		}
	}
}

func TestTracker(t *testing.T) {
	tr := NewTracker(Config{Window: 4})
	a, b := partition.ID{Topic: "o", Partition: 0}, partition.ID{Topic: "o", Partition: 1}
	for i, s := range growing(6, 100, 10, 50) {
		tr.Add(a, s)
		tr.Add(b, Sample{Batch: s.Batch, Time: s.Time, Offset: int64(i * 10), Latest: int64(i * 10)})
	}
	if w := tr.Window(a); len(w) != 4 || w[0].Batch != 3 || w[3].Batch != 6 {
		t.Fatalf("window of a = %+v, want batches 3..6", w)
	}
	parts, q := tr.Evaluate(at(5), nil)
	if len(parts) != 2 || parts[0].Partition != a || parts[0].Status != StatusWarn || parts[1].Status != StatusOK {
		t.Fatalf("partitions %+v", parts)
	}
	if q.Status != StatusWarn || q.Lag != parts[0].Lag || !strings.HasPrefix(q.Reason, "o-0: lag grew") {
		t.Errorf("query %+v", q)
	}
	// b was caught up at its last commit; new data arrived and no commit
	// came for a long time: with the head given, that is STOP.
	parts, _ = tr.Evaluate(at(60), map[partition.ID]int64{b: 400})
	if parts[1].Status != StatusStop || parts[1].Lag != 350 {
		t.Errorf("b with newer head = %+v, want STOP with 350 behind", parts[1])
	}
	if w := tr.Window(b); w[len(w)-1].Latest != 50 {
		t.Errorf("Evaluate changed the stored window: %+v", w[len(w)-1])
	}
	tr.Forget(b)
	if parts, _ := tr.Evaluate(at(5), nil); len(parts) != 1 {
		t.Errorf("Forget left %d partitions", len(parts))
	}
}

func TestStatusText(t *testing.T) {
	for s := StatusOK; s <= StatusRewind; s++ {
		b, err := json.Marshal(Health{Status: s})
		if err != nil {
			t.Fatal(err)
		}
		var h Health
		if err := json.Unmarshal(b, &h); err != nil || h.Status != s {
			t.Errorf("%v round-trips to %v (%v) via %s", s, h.Status, err, b)
		}
	}
	var s Status
	if err := s.UnmarshalText([]byte("FINE")); err == nil {
		t.Error("unknown status accepted")
	}
	if !(StatusOK < StatusErr && StatusErr < StatusWarn && StatusWarn < StatusStall && StatusStall < StatusStop && StatusStop < StatusRewind) {
		t.Error("severity order broken")
	}
}

func TestStalled(t *testing.T) {
	t0 := time.Unix(1000, 0)
	busy := Busy{Active: true, Since: t0, Step: "Getting offsets from KafkaV2[Subscribe[o]]"}
	for _, c := range []struct {
		name string
		b    Busy
		now  time.Time
		want string // "" = not stalled
	}{
		{"within the threshold", busy, t0.Add(10 * time.Second), ""},
		{"past the threshold", busy, t0.Add(12 * time.Second),
			"no progress for 12s (threshold 10s), still at: Getting offsets from KafkaV2[Subscribe[o]]"},
		{"with the source's explanation", Busy{Active: true, Since: t0, Step: "Getting offsets", Waiting: "Waiting for Kafka brokers b:9092"},
			t0.Add(time.Minute), "no progress for 1m0s (threshold 10s), still at: Getting offsets; Waiting for Kafka brokers b:9092"},
		{"between triggers", Busy{Since: t0}, t0.Add(time.Hour), ""},
		{"never active", Busy{Active: true}, t0, ""},
	} {
		h, ok := Stalled(c.b, c.now, 10*time.Second)
		if (c.want == "") == ok || (ok && (h.Status != StatusStall || h.Reason != c.want)) {
			t.Errorf("%s: %v %+v, want %q", c.name, ok, h, c.want)
		}
	}
}
