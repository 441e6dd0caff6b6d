package admission

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/trigger"
)

func TestParseLimitsUpdate(t *testing.T) {
	cases := []struct {
		body    string
		check   func(LimitsUpdate) bool
		wantErr string
	}{
		{`{"maxOffsetsPerTrigger":1234,"admission":"adaptive"}`, func(u LimitsUpdate) bool {
			return *u.MaxOffsetsPerTrigger == 1234 && *u.Mode == "adaptive"
		}, ""},
		{`{"triggerInterval":"2 seconds","targetBatchDuration":"1s"}`, func(u LimitsUpdate) bool {
			return *u.TriggerIntervalMs == 2000 && *u.TargetBatchDurationMs == 1000
		}, ""},
		{`{"triggerIntervalMs":500,"maxOffsetsPerTrigger":"77"}`, func(u LimitsUpdate) bool {
			return *u.TriggerIntervalMs == 500 && *u.MaxOffsetsPerTrigger == 77
		}, ""},
		{`{"maxLagSeconds":30}`, func(u LimitsUpdate) bool { return *u.MaxLagSeconds == 30 }, ""},
		{`{"maxOffsetPerTrigger":5}`, nil, `unknown key "maxOffsetPerTrigger" (allowed: maxOffsetsPerTrigger`},
		{`{"maxOffsetsPerTrigger":"lots"}`, nil, "maxOffsetsPerTrigger must be an integer"},
		{`{"triggerInterval":"soon"}`, nil, "triggerInterval"},
		{`{"triggerInterval":"999 microseconds"}`, nil, `limits: triggerInterval: "999 microseconds" is below 1 millisecond (allowed: 0 = as fast as possible, or whole milliseconds ≥ 1`},
		{`{"triggerInterval":"1.5 milliseconds"}`, nil, `limits: triggerInterval: "1.5 milliseconds" is not a whole number of milliseconds`},
		{`{"targetBatchDuration":"1.5 milliseconds"}`, func(u LimitsUpdate) bool { return *u.TargetBatchDurationMs == 1 }, ""},
		{`[1,2]`, nil, "must be a JSON object"},
	}
	for _, c := range cases {
		u, err := ParseLimitsUpdate([]byte(c.body), options.ParseInterval)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v, want %q", c.body, err, c.wantErr)
			}
			continue
		}
		if err != nil || !c.check(u) {
			t.Errorf("%s: %+v, %v", c.body, u, err)
		}
	}
}

func TestLimitsApply(t *testing.T) {
	base := Limits{MaxOffsetsPerTrigger: 100, Mode: ModeStatic, TriggerInterval: time.Second}
	i := func(v int64) *int64 { return &v }
	s := func(v string) *string { return &v }
	cases := []struct {
		name    string
		u       LimitsUpdate
		kind    trigger.Kind
		want    func(Limits) bool
		wantErr string
	}{
		{"raise max", LimitsUpdate{MaxOffsetsPerTrigger: i(500)}, trigger.ProcessingTime, func(l Limits) bool { return l.MaxOffsetsPerTrigger == 500 }, ""},
		{"clear max", LimitsUpdate{MaxOffsetsPerTrigger: i(0)}, trigger.ProcessingTime, func(l Limits) bool { return l.MaxOffsetsPerTrigger == 0 }, ""},
		{"negative max", LimitsUpdate{MaxOffsetsPerTrigger: i(-1)}, trigger.ProcessingTime, nil, "maxOffsetsPerTrigger: -1 is negative"},
		{"min above max", LimitsUpdate{MinOffsetsPerTrigger: i(200)}, trigger.ProcessingTime, nil, "minOffsetsPerTrigger (200) is higher than maxOffsetsPerTrigger (100)"},
		{"interval", LimitsUpdate{TriggerIntervalMs: i(250)}, trigger.ProcessingTime, func(l Limits) bool { return l.TriggerInterval == 250*time.Millisecond }, ""},
		{"interval on availableNow", LimitsUpdate{TriggerIntervalMs: i(250)}, trigger.AvailableNow, nil, "has no interval"},
		{"adaptive", LimitsUpdate{Mode: s("adaptive"), TargetBatchDurationMs: i(300)}, trigger.Default, func(l Limits) bool {
			return l.Mode == ModeAdaptive && l.Target() == 300*time.Millisecond
		}, ""},
		{"bad mode", LimitsUpdate{Mode: s("pid")}, trigger.Default, nil, `"pid" is not a mode (allowed: static, adaptive)`},
	}
	for _, c := range cases {
		l, err := base.Apply(c.u, c.kind)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || !c.want(l) {
			t.Errorf("%s: %+v, %v", c.name, l, err)
		}
	}
	if (Limits{}).Target() != time.Second || (Limits{TriggerInterval: 5 * time.Second}).Target() != 5*time.Second {
		t.Error("default targets: 1 s without an interval, the interval otherwise")
	}
}

func TestDefaultBudget(t *testing.T) {
	for _, tc := range []struct{ limit, want int64 }{
		{0, DefaultBudgetCap},          // unknown
		{-1, DefaultBudgetCap},         // unknown
		{24 << 30, DefaultBudgetCap},   // a 24 GiB machine: capped
		{512 << 20, 128 << 20},         // a quarter of 512 MiB
		{256 << 20, 64 << 20},          // a quarter of 256 MiB
		{16 << 20, DefaultBudgetFloor}, // a tiny container: the floor
	} {
		if got := DefaultBudget(tc.limit); got != tc.want {
			t.Errorf("DefaultBudget(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}
