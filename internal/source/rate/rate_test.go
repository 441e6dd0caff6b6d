package rate

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/source"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type row struct {
	ts, v int64
	part  int
}

// readAll reads every task of [start, end) and returns the rows with the
// index of the task that produced them.
func readAll(t *testing.T, src source.Source, start, end source.Offset) []row {
	t.Helper()
	ctx := context.Background()
	r, err := src.Open(ctx, start, end)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	var out []row
	for i, tk := range r.Tasks() {
		var n int64
		err := r.Read(ctx, tk, func(_ context.Context, b *batch.Batch) error {
			if err := b.Validate(); err != nil {
				t.Fatalf("invalid batch: %v", err)
			}
			if b.Schema.String() != Schema().String() {
				t.Fatalf("schema %s", b.Schema)
			}
			for j := 0; j < b.N; j++ {
				out = append(out, row{ts: b.Columns[0].Ints[j], v: b.Columns[1].Ints[j], part: i})
			}
			n += int64(b.N)
			return nil
		})
		if err != nil {
			t.Fatalf("Read %s: %v", tk, err)
		}
		if n != tk.Size() {
			t.Errorf("task %s: Size()=%d but read %d rows", tk, tk.Size(), n)
		}
	}
	return out
}

func TestValueAtSecond(t *testing.T) {
	tests := []struct {
		rps, ramp int64
		want      []int64 // values at seconds 0, 1, 2, ...
	}{
		{rps: 1, ramp: 0, want: []int64{0, 1, 2, 3, 4}},
		{rps: 10, ramp: 0, want: []int64{0, 10, 20, 30}},
		// delta 2 per second: speeds 0,2,4,6,8 then 10.
		{rps: 10, ramp: 4, want: []int64{0, 2, 6, 12, 20, 30, 40}},
		// delta 3: speeds 0,3,6 then 10.
		{rps: 10, ramp: 2, want: []int64{0, 3, 9, 19, 29}},
		// rowsPerSecond < rampUp+1: nothing during ramp-up.
		{rps: 3, ramp: 5, want: []int64{0, 0, 0, 0, 0, 0, 3, 6}},
	}
	for _, tc := range tests {
		for s, want := range tc.want {
			if got := ValueAtSecond(int64(s), tc.rps, tc.ramp); got != want {
				t.Errorf("ValueAtSecond(%d, rps=%d, ramp=%d) = %d, want %d", s, tc.rps, tc.ramp, got, want)
			}
		}
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newRate(t *testing.T, opts map[string]string, clk *fakeClock) *Source {
	t.Helper()
	s, err := New(opts, quiet)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.SetClock(clk.now)
	return s
}

func TestRateRowsTimestampsPartitions(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	tests := []struct {
		name       string
		opts       map[string]string
		elapsed    time.Duration
		wantSecs   int64
		wantValues int64
	}{
		{"one per second", map[string]string{"numPartitions": "1"}, 3500 * time.Millisecond, 3, 3},
		{"four per second, 3 partitions", map[string]string{"rowsPerSecond": "4", "numPartitions": "3"}, 2 * time.Second, 2, 8},
		{"ramp-up", map[string]string{"rowsPerSecond": "10", "rampUpTime": "4s", "numPartitions": "2"}, 6 * time.Second, 6, 40},
		{"more partitions than rows", map[string]string{"rowsPerSecond": "2", "NUMPARTITIONS": "5"}, time.Second, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: t0}
			s := newRate(t, tc.opts, clk)
			ctx := context.Background()
			init, err := s.InitialOffset(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"startTimeMs":1700000000000,"seconds":0}`; init.JSON() != want {
				t.Errorf("initial offset %s, want %s", init.JSON(), want)
			}
			// Same second: no batch.
			end, _, err := s.Latest(ctx, init, source.ReadLimit{})
			if err != nil || end.JSON() != init.JSON() {
				t.Fatalf("Latest at start = %v, %v; want the start offset", end, err)
			}
			clk.t = t0.Add(tc.elapsed)
			end, latest, err := s.Latest(ctx, init, source.ReadLimit{})
			if err != nil {
				t.Fatal(err)
			}
			if got := end.(Offset).Seconds; got != tc.wantSecs {
				t.Fatalf("end seconds %d, want %d", got, tc.wantSecs)
			}
			if latest.JSON() != end.JSON() {
				t.Errorf("latest %s != end %s without a limit", latest.JSON(), end.JSON())
			}
			rows := readAll(t, s, init, end)
			if int64(len(rows)) != tc.wantValues {
				t.Fatalf("%d rows, want %d", len(rows), tc.wantValues)
			}
			seen := map[int64]bool{}
			n := int64(s.Config().NumPartitions)
			msPerValue := float64(tc.wantSecs*1000) / float64(tc.wantValues)
			for _, r := range rows {
				if r.v < 0 || r.v >= tc.wantValues || seen[r.v] {
					t.Fatalf("value %d out of range or duplicated", r.v)
				}
				seen[r.v] = true
				if int64(r.part) != r.v%n {
					t.Errorf("value %d in partition %d, want %d", r.v, r.part, r.v%n)
				}
				wantTs := (t0.UnixMilli() + int64(float64(r.v)*msPerValue+0.5)) * 1000
				if r.ts != wantTs {
					t.Errorf("value %d: timestamp %d, want %d", r.v, r.ts, wantTs)
				}
			}
		})
	}
}

func TestRateSecondBatchContinues(t *testing.T) {
	t0 := time.UnixMilli(1_000_000)
	clk := &fakeClock{t: t0}
	s := newRate(t, map[string]string{"rowsPerSecond": "3", "numPartitions": "2"}, clk)
	ctx := context.Background()
	init, _ := s.InitialOffset(ctx)
	clk.t = t0.Add(2 * time.Second)
	end1, _, _ := s.Latest(ctx, init, source.ReadLimit{})
	clk.t = t0.Add(5 * time.Second)
	end2, _, _ := s.Latest(ctx, end1, source.ReadLimit{})
	rows := readAll(t, s, end1, end2)
	if len(rows) != 9 {
		t.Fatalf("%d rows, want 9", len(rows))
	}
	for _, r := range rows {
		if r.v < 6 || r.v >= 15 {
			t.Errorf("value %d outside [6,15)", r.v)
		}
		if int64(r.part) != (r.v-6)%2 {
			t.Errorf("value %d in partition %d, want %d", r.v, r.part, (r.v-6)%2)
		}
		// Second 2 starts at value 6; 1000/3 ms per value.
		wantMs := t0.UnixMilli() + 2000 + int64(float64(r.v-6)*1000/3+0.5)
		if r.ts != wantMs*1000 {
			t.Errorf("value %d: timestamp %d, want %d", r.v, r.ts, wantMs*1000)
		}
	}
}

func TestRateMaxRowsPerTrigger(t *testing.T) {
	t0 := time.UnixMilli(0).Add(time.Hour)
	tests := []struct {
		name     string
		opts     map[string]string
		stall    time.Duration
		wantEnds []int64 // successive end seconds until caught up
	}{
		// A 10 s stall at 10 rows/s: Spark would read 100 rows at once.
		{"no cap reads all missed seconds", map[string]string{"rowsPerSecond": "10"}, 10 * time.Second, []int64{10}},
		{"cap 25 rows = 2 seconds", map[string]string{"rowsPerSecond": "10", "maxRowsPerTrigger": "25"}, 10 * time.Second, []int64{2, 4, 6, 8, 10}},
		{"cap below one second still advances", map[string]string{"rowsPerSecond": "10", "maxRowsPerTrigger": "3"}, 3 * time.Second, []int64{1, 2, 3}},
		// Ramp-up values 0,2,6,12,20,30: cap 10 → seconds 2 (6 rows), 3 (6), 4 (8), 5 (10).
		{"cap with ramp-up", map[string]string{"rowsPerSecond": "10", "rampUpTime": "4", "maxRowsPerTrigger": "10"}, 5 * time.Second, []int64{2, 3, 4, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: t0}
			s := newRate(t, tc.opts, clk)
			ctx := context.Background()
			start, _ := s.InitialOffset(ctx)
			clk.t = t0.Add(tc.stall)
			limit := s.DefaultReadLimit()
			var ends []int64
			for i := 0; i < 20; i++ {
				end, latest, err := s.Latest(ctx, start, limit)
				if err != nil {
					t.Fatal(err)
				}
				if want := int64(tc.stall / time.Second); latest.(Offset).Seconds != want {
					t.Errorf("latest seconds %d, want %d", latest.(Offset).Seconds, want)
				}
				if end.JSON() == start.JSON() {
					break
				}
				rows := readAll(t, s, start, end)
				if limitRows := s.Config().MaxRowsPerTrigger; limitRows > 0 && int64(len(rows)) > limitRows && end.(Offset).Seconds-start.(Offset).Seconds > 1 {
					t.Errorf("batch %s→%s has %d rows over the cap %d", start.JSON(), end.JSON(), len(rows), limitRows)
				}
				ends = append(ends, end.(Offset).Seconds)
				start = end
			}
			if len(ends) != len(tc.wantEnds) {
				t.Fatalf("ends %v, want %v", ends, tc.wantEnds)
			}
			for i := range ends {
				if ends[i] != tc.wantEnds[i] {
					t.Fatalf("ends %v, want %v", ends, tc.wantEnds)
				}
			}
		})
	}
}

func TestRateRestartReplaysSameRows(t *testing.T) {
	t0 := time.UnixMilli(1_234_567)
	clk := &fakeClock{t: t0}
	opts := map[string]string{"rowsPerSecond": "7", "numPartitions": "3"}
	s1 := newRate(t, opts, clk)
	ctx := context.Background()
	init, _ := s1.InitialOffset(ctx)
	clk.t = t0.Add(4 * time.Second)
	end, _, _ := s1.Latest(ctx, init, source.ReadLimit{})
	want := readAll(t, s1, init, end)

	// A new process, hours later, re-runs the logged batch from its JSON.
	clk2 := &fakeClock{t: t0.Add(5 * time.Hour)}
	s2 := newRate(t, opts, clk2)
	pInit, err := s2.ParseOffset(init.JSON())
	if err != nil {
		t.Fatal(err)
	}
	pEnd, err := s2.ParseOffset(end.JSON())
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s2, pInit, pEnd)
	if len(got) != len(want) {
		t.Fatalf("replay has %d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("replay row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// The next batch continues at the logged start time: 5h of seconds.
	next, _, _ := s2.Latest(ctx, pEnd, source.ReadLimit{})
	if next.(Offset).Seconds != 5*3600 || next.(Offset).StartTimeMs != t0.UnixMilli() {
		t.Errorf("next offset after restart %s", next.JSON())
	}
}

func TestRateOptions(t *testing.T) {
	tests := []struct {
		opts    map[string]string
		want    Config
		wantErr string
	}{
		{opts: map[string]string{"numPartitions": "2"}, want: Config{RowsPerSecond: 1, NumPartitions: 2}},
		{opts: map[string]string{"rampUpTime": "5", "numPartitions": "1"}, want: Config{RowsPerSecond: 1, RampUpSeconds: 5, NumPartitions: 1}},
		{opts: map[string]string{"rampUpTime": "1500ms", "numPartitions": "1"}, want: Config{RowsPerSecond: 1, RampUpSeconds: 1, NumPartitions: 1}},
		{opts: map[string]string{"RAMPUPTIME": "2 minutes", "numPartitions": "1"}, want: Config{RowsPerSecond: 1, RampUpSeconds: 120, NumPartitions: 1}},
		{opts: map[string]string{"rowsPerSecond": "0"}, wantErr: `option "rowsPerSecond": invalid value "0"`},
		{opts: map[string]string{"rowsPerSecond": "x"}, wantErr: `option "rowsPerSecond"`},
		{opts: map[string]string{"numPartitions": "0"}, wantErr: `option "numPartitions"`},
		{opts: map[string]string{"rampUpTime": "-3s"}, wantErr: `option "rampUpTime"`},
		{opts: map[string]string{"maxRowsPerTrigger": "0"}, wantErr: `option "maxRowsPerTrigger"`},
		{opts: map[string]string{"rowsPerSecnd": "3"}, wantErr: `did you mean "rowsPerSecond"?`},
		{opts: map[string]string{"rowsPerSecond": "9223372036854775807", "rampUpTime": "10"}, wantErr: "overflow"},
	}
	for _, tc := range tests {
		c, err := ParseConfig(tc.opts)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseConfig(%v) error %v, want %q", tc.opts, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseConfig(%v): %v", tc.opts, err)
			continue
		}
		if *c != tc.want {
			t.Errorf("ParseConfig(%v) = %+v, want %+v", tc.opts, *c, tc.want)
		}
	}
}

func TestRateOverflowIsAnError(t *testing.T) {
	clk := &fakeClock{t: time.UnixMilli(0)}
	s := newRate(t, map[string]string{"rowsPerSecond": "4611686018427387904"}, clk)
	init, _ := s.InitialOffset(context.Background())
	clk.t = clk.t.Add(3 * time.Second)
	if _, _, err := s.Latest(context.Background(), init, source.ReadLimit{}); err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("Latest past the max second: err = %v, want an overflow error", err)
	}
}

func TestRateParseOffset(t *testing.T) {
	s := newRate(t, nil, &fakeClock{})
	for _, bad := range []string{``, `5`, `{"seconds":-1,"startTimeMs":0}`, `{"seconds":1,"startTimeMs":0,"x":1}`, `{"seconds":1} {}`} {
		if _, err := s.ParseOffset(bad); err == nil {
			t.Errorf("ParseOffset(%q) accepted", bad)
		}
	}
	o, err := s.ParseOffset(`{"startTimeMs":12,"seconds":3}`)
	if err != nil || o.(Offset) != (Offset{StartTimeMs: 12, Seconds: 3}) || o.JSON() != `{"startTimeMs":12,"seconds":3}` {
		t.Errorf("ParseOffset = %+v, %v", o, err)
	}
}
