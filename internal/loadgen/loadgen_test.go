package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

func TestShapes(t *testing.T) {
	now := time.Date(2026, 11, 25, 13, 0, 0, 123e6, time.UTC)
	for _, tc := range []struct {
		shape string
		size  int
		key   string
		check func(v []byte) bool
	}{
		{ShapeOrders, 0, "c-0042", func(v []byte) bool {
			var o map[string]any
			return json.Unmarshal(v, &o) == nil && o["customer_id"] == "c-0042" && o["ts"] == "2026-11-25T13:00:00.123Z"
		}},
		{ShapeOrders, 300, "c-0042", func(v []byte) bool { return len(v) == 300 && json.Valid(v) }},
		{ShapeIoT, 0, "dev-0042", func(v []byte) bool {
			var r struct {
				DeviceID string  `json:"device_id"`
				Seq      int     `json:"seq"`
				Battery  float64 `json:"battery"`
				Humidity float64 `json:"humidity"`
			}
			return json.Unmarshal(v, &r) == nil && r.DeviceID == "dev-0042" && r.Seq >= 1 && r.Battery >= 0.2 && r.Battery <= 1 && r.Humidity >= 30 && r.Humidity <= 70
		}},
		{ShapeRandom, 77, "k-42", func(v []byte) bool {
			return len(v) == 77 && strings.Trim(string(v), alphabet) == ""
		}},
	} {
		s, err := NewShape(tc.shape, tc.size, 1)
		if err != nil {
			t.Fatal(err)
		}
		var prev []byte
		for i := range 50 {
			k, v := s.Record(now, 42)
			if string(k) != tc.key || !tc.check(v) {
				t.Fatalf("%s/%d record %d: key %q value %s", tc.shape, tc.size, i, k, v)
			}
			if bytes.Equal(v, prev) && tc.shape != ShapeOrders {
				t.Fatalf("%s: two identical values in a row", tc.shape)
			}
			prev = v
		}
	}
	if _, err := NewShape("xml", 0, 1); err == nil || !strings.Contains(err.Error(), "orders, iot, random") {
		t.Fatalf("unknown shape error = %v", err)
	}
	if _, err := NewShape(ShapeRandom, 0, 1); err == nil {
		t.Fatal("random shape of size 0 accepted")
	}
}

func TestKeyDistribution(t *testing.T) {
	const n = 100_000
	count := func(k Keys) []int {
		d := newKeyDrawer(k, 7)
		c := make([]int, k.Count)
		for range n {
			c[d.next()]++
		}
		return c
	}
	uni := count(Keys{Count: 10})
	for i, c := range uni {
		if math.Abs(float64(c)-n/10) > 0.05*n/10 {
			t.Errorf("uniform: key %d drawn %d times, want %d ± 5%%", i, c, n/10)
		}
	}
	z := count(Keys{Count: 10, Zipf: 1.5})
	for i := 1; i < len(z); i++ {
		if z[i] > z[i-1] {
			t.Errorf("zipf: key %d (%d) drawn more than key %d (%d)", i, z[i], i-1, z[i-1])
		}
	}
	if z[0] < n/3 {
		t.Errorf("zipf s=1.5: key 0 drawn %d times of %d, want the most frequent by far", z[0], n)
	}
	for _, bad := range []Keys{{Count: 0}, {Count: 5, Zipf: 1}, {Count: 5, Zipf: math.NaN()}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// TestTimingAchievedRateWithinFivePercent produces a steady and a spiky
// profile to a broker that keeps up: the achieved rate is within 5 % of the
// asked one, every record is acknowledged, and records spread over the
// partitions. The 5 % promise needs a machine that keeps up, so it is judged
// in CI's serial step (SLUICE_SERIAL_TESTS=1); in the parallel suite, where
// other test binaries compete for the cores, only a gross shortfall (under
// half the asked rate) fails.
func TestTimingAchievedRateWithinFivePercent(t *testing.T) {
	floor := 0.5
	if os.Getenv("SLUICE_SERIAL_TESTS") == "1" {
		floor = 0.95
	}
	b := brokertest.Start(t, broker.TopicSpec{Name: "lg", Partitions: 4})
	for _, tc := range []struct {
		profile Profile
		dur     time.Duration
	}{
		{Steady{Rate: 4000}, 2 * time.Second},
		{Spike{Base: 1000, Factor: 5, At: 500 * time.Millisecond, For: time.Second}, 2 * time.Second},
	} {
		shape, _ := NewShape(ShapeOrders, 0, 3)
		var secs []Second
		res, err := Run(context.Background(), Config{
			Brokers: []string{b.Addr()}, Topic: "lg", Profile: tc.profile, Duration: tc.dur,
			Shape: shape, Keys: Keys{Count: 1000}, OnSecond: func(s Second) { secs = append(secs, s) },
		})
		if err != nil {
			t.Fatal(err)
		}
		want := tc.profile.Expected(tc.dur)
		if res.Asked != int64(want) {
			t.Errorf("%s: asked %d, want %d", tc.profile, res.Asked, int64(want))
		}
		if r := res.AchievedRate() / res.AskedRate(); r < floor || r > 1.05 {
			t.Errorf("%s: achieved %.0f/s of %.0f/s asked (%.3f)", tc.profile, res.AchievedRate(), res.AskedRate(), r)
		}
		if res.Acked != res.Issued || res.Failed != 0 || res.Skipped != 0 {
			t.Errorf("%s: %+v, want every issued record acked", tc.profile, res)
		}
		if len(secs) != 2 || len(res.Seconds) != 2 {
			t.Fatalf("%s: %d per-second reports (%d in result), want 2", tc.profile, len(secs), len(res.Seconds))
		}
		var asked, acked int64
		for _, s := range secs {
			asked += s.Asked
			acked += s.Acked
		}
		if asked != res.Asked || acked != res.Acked {
			t.Errorf("%s: seconds sum to asked %d acked %d, result says %d %d", tc.profile, asked, acked, res.Asked, res.Acked)
		}
		var sum int64
		for p, c := range res.PartitionCounts {
			sum += c
			if float64(c) < 0.2*float64(res.Acked) {
				t.Errorf("%s: partition %d got %d of %d records", tc.profile, p, c, res.Acked)
			}
		}
		if sum != res.Acked {
			t.Errorf("partition counts sum to %d, acked %d", sum, res.Acked)
		}
	}
	// Both runs' records are in the topic: 4000/s × 2 s, then
	// 1000/s × 2 s + 4 × 1000/s × 1 s of spike.
	if got := brokertest.ConsumeAll(t, b.Addr(), "lg", 14000); len(got) != 14000 {
		t.Fatalf("topic holds %d records, want 14000", len(got))
	}
}

// TestSlowBrokerSlowsDown delays every produce request: the generator keeps
// its buffer bounded, falls behind, skips what is beyond MaxBehind and says
// so in its reports.
func TestSlowBrokerSlowsDown(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "slow", Partitions: 1})
	c := b.Cluster()
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(100 * time.Millisecond)
		return nil, nil, false
	})
	shape, _ := NewShape(ShapeRandom, 100, 1)
	var maxBuffered int64
	res, err := Run(context.Background(), Config{
		Brokers: []string{b.Addr()}, Topic: "slow", Profile: Steady{Rate: 20000}, Duration: 2 * time.Second,
		Shape: shape, Keys: Keys{Count: 10}, MaxBuffered: 500, MaxBehind: 200 * time.Millisecond,
		OnSecond: func(s Second) { maxBuffered = max(maxBuffered, s.Buffered) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if maxBuffered > 500 {
		t.Errorf("buffer reached %d records, bound 500", maxBuffered)
	}
	if !res.Throttled() || res.Skipped == 0 {
		t.Fatalf("result %s: want throttled with skipped records", res)
	}
	if res.AchievedRate() > 0.5*res.AskedRate() {
		t.Fatalf("achieved %.0f/s of %.0f/s against a broker taking 100 ms per request", res.AchievedRate(), res.AskedRate())
	}
	if res.Issued+res.Skipped > res.Asked || res.Asked-res.Issued-res.Skipped > 20000*2/10 {
		t.Fatalf("issued %d + skipped %d vs asked %d: the schedule is not accounted for", res.Issued, res.Skipped, res.Asked)
	}
	if s := res.Seconds[0].String(); !strings.Contains(s, "broker not keeping up") || !strings.Contains(s, "skipped") {
		t.Fatalf("report line %q does not say the broker is not keeping up", s)
	}
}

// TestRecordsAsShaped reads back what a run produced while the broker
// holds every produce request for 15 ms, so that several ticks' record
// buffers are in flight and reused: every record is the one the shape and
// the key draws made for its place in the run, on the key's partition,
// stamped at its tick.
func TestRecordsAsShaped(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "shaped", Partitions: 4})
	c := b.Cluster()
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(15 * time.Millisecond)
		return nil, nil, false
	})
	shape, _ := NewShape(ShapeOrders, 0, 3)
	keys := Keys{Count: 1000, Zipf: 1.1}
	res, err := Run(context.Background(), Config{
		Brokers: []string{b.Addr()}, Topic: "shaped", Profile: Steady{Rate: 20000}, Duration: time.Second,
		Shape: shape, Keys: keys, Seed: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Acked != res.Issued || res.Failed != 0 || res.Skipped != 0 || res.Acked < 10000 {
		t.Fatalf("%+v: want every issued record acked, at least half of 20,000", res)
	}
	if res.LastAck <= 0 || res.LastAck > res.Duration+5*time.Second {
		t.Errorf("last acknowledgement at %s of a %s run", res.LastAck, res.Duration)
	}
	got := brokertest.ConsumeAll(t, b.Addr(), "shaped", int(res.Acked))
	seq := func(r *kgo.Record) int {
		_, after, _ := strings.Cut(string(r.Value), `"order_id":"o-`)
		n, _ := strconv.Atoi(after[:strings.IndexByte(after, '"')])
		return n
	}
	slices.SortFunc(got, func(a, b *kgo.Record) int { return seq(a) - seq(b) })
	ref, _ := NewShape(ShapeOrders, 0, 3)
	draws := newKeyDrawer(keys, 5)
	for i, r := range got {
		k := draws.next()
		wk, wv := ref.Record(r.Timestamp, k)
		if !bytes.Equal(r.Key, wk) || !bytes.Equal(r.Value, wv) || r.Partition != int32(k%4) {
			t.Fatalf("record %d of %d (partition %d): %s = %s, want %s = %s on partition %d", i, len(got), r.Partition, r.Key, r.Value, wk, wv, k%4)
		}
	}
}
