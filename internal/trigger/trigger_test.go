package trigger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/trigger/triggertest"
)

func TestNextAligned(t *testing.T) {
	cases := []struct {
		at, iv, want int64 // ms
	}{
		{3000, 10000, 10000},
		{10000, 10000, 20000},
		{17000, 10000, 20000},
		{0, 20000, 20000},
	}
	for _, c := range cases {
		got := NextAligned(time.UnixMilli(c.at), time.Duration(c.iv)*time.Millisecond).UnixMilli()
		if got != c.want {
			t.Errorf("NextAligned(%d, %d) = %d, want %d", c.at, c.iv, got, c.want)
		}
	}
}

func TestProcessingTimeIsEpochAlignedAndOverrunStartsAtOnce(t *testing.T) {
	clk := triggertest.New(time.UnixMilli(3000))
	var starts []int64
	durations := []time.Duration{2 * time.Second, 14 * time.Second, 1 * time.Second, 0}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	i := 0
	err := Run(context.Background(), Trigger{Kind: ProcessingTime, Interval: 10 * time.Second}, clk, log, func(ctx context.Context, _ time.Time) (Result, error) {
		starts = append(starts, clk.Now().UnixMilli())
		clk.Advance(durations[i])
		i++
		return Result{Ran: true, Done: i == len(durations)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 3 s (2 s batch) → wait for 10 s; 10 s (14 s batch, overrun) → 24 s at
	// once; 24 s (1 s) → 30 s.
	want := []int64{3000, 10000, 24000, 30000}
	if len(starts) != len(want) {
		t.Fatalf("starts %v, want %v", starts, want)
	}
	for k := range want {
		if starts[k] != want[k] {
			t.Fatalf("starts %v, want %v", starts, want)
		}
	}
	if !strings.Contains(logs.String(), "Current batch is falling behind. The trigger interval is 10000 milliseconds, but spent 14000 milliseconds") {
		t.Fatalf("missing Spark's falling-behind warning; log: %s", logs.String())
	}
}

func TestDefaultTriggerBacksOffWhenIdle(t *testing.T) {
	clk := triggertest.New(time.Unix(0, 0))
	runs := 0
	err := Run(context.Background(), Trigger{}, clk, nil, func(ctx context.Context, _ time.Time) (Result, error) {
		runs++
		switch {
		case runs <= 2:
			return Result{Ran: true}, nil
		case runs <= 9:
			return Result{Ran: false}, nil
		case runs == 10:
			return Result{Ran: true}, nil
		case runs == 11:
			return Result{Ran: false}, nil
		}
		return Result{Done: true}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{10, 20, 40, 80, 160, 250, 250, 10}
	if len(clk.Sleeps()) != len(want) {
		t.Fatalf("sleeps %v, want %v ms", clk.Sleeps(), want)
	}
	for i, w := range want {
		if clk.Sleeps()[i] != w*time.Millisecond {
			t.Fatalf("sleeps %v, want %v ms", clk.Sleeps(), want)
		}
	}
}

// TestDefaultTriggerAfterAWait: an attempt that already waited for data
// (event-driven) is followed at once by the next, and the back-off
// restarts from 10 ms.
func TestDefaultTriggerAfterAWait(t *testing.T) {
	clk := triggertest.New(time.Unix(0, 0))
	runs := 0
	err := Run(context.Background(), Trigger{}, clk, nil, func(ctx context.Context, _ time.Time) (Result, error) {
		runs++
		switch runs {
		case 1, 2:
			return Result{Ran: false}, nil // poll: 10, 20 ms
		case 3, 4, 5:
			return Result{Waited: true}, nil // no sleep
		case 6:
			return Result{Ran: false}, nil // back to 10 ms
		}
		return Result{Done: true}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(clk.Sleeps()); got != "[10ms 20ms 10ms]" {
		t.Fatalf("sleeps %s, want [10ms 20ms 10ms]", got)
	}
}

func TestOnceAndAvailableNow(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		want int
	}{{Once, 1}, {AvailableNow, 3}} {
		runs := 0
		err := Run(context.Background(), Trigger{Kind: tc.kind}, triggertest.New(time.Time{}), nil, func(ctx context.Context, _ time.Time) (Result, error) {
			runs++
			return Result{Ran: runs < 3}, nil
		})
		if err != nil || runs != tc.want {
			t.Errorf("%v: runs %d err %v, want %d runs", tc.kind, runs, err, tc.want)
		}
	}
}

func TestErrorsStopAndCancelIsClean(t *testing.T) {
	boom := errors.New("boom")
	if err := Run(context.Background(), Trigger{}, triggertest.New(time.Time{}), nil, func(context.Context, time.Time) (Result, error) { return Result{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Run(ctx, Trigger{}, triggertest.New(time.Time{}), nil, func(context.Context, time.Time) (Result, error) {
		n++
		if n == 3 {
			cancel()
		}
		return Result{Ran: true}, nil
	})
	if err != nil || n != 3 {
		t.Fatalf("cancel: err %v after %d runs, want nil after 3", err, n)
	}
}

func TestCheckInterval(t *testing.T) {
	const allowed = `(allowed: 0 = as fast as possible, or whole milliseconds ≥ 1, e.g. "1 millisecond" or "20 seconds")`
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, ""},
		{time.Millisecond, ""},
		{20 * time.Second, ""},
		{1500 * time.Millisecond, ""},
		{time.Nanosecond, "1ns is below 1 millisecond " + allowed},
		{999 * time.Microsecond, "999µs is below 1 millisecond " + allowed},
		{1500 * time.Microsecond, "1.5ms is not a whole number of milliseconds " + allowed},
		{-time.Second, "-1s is negative " + allowed},
	} {
		err := CheckInterval(c.d)
		if got := fmt.Sprint(err); (c.want == "" && err != nil) || (c.want != "" && got != c.want) {
			t.Errorf("CheckInterval(%v) = %v, want %q", c.d, err, c.want)
		}
	}
}

// A query whose every batch overruns its interval used to log Spark's
// warning once per batch: 383,121 lines a minute with a 1 ns interval. The
// warning is now logged at most once per FallingBehindLogEvery, with a count
// of the batches it stands for.
func TestFallingBehindWarningIsRateLimited(t *testing.T) {
	clk := triggertest.New(time.UnixMilli(0))
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	const batches = 100_000 // 3 ms each against a 1 ms interval: 300 s
	i := 0
	err := Run(context.Background(), Trigger{Kind: ProcessingTime, Interval: time.Millisecond}, clk, log, func(ctx context.Context, _ time.Time) (Result, error) {
		clk.Advance(3 * time.Millisecond)
		i++
		return Result{Ran: true, Done: i == batches}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	elapsed := time.Duration(batches) * 3 * time.Millisecond
	if max := 1 + int(elapsed/FallingBehindLogEvery); len(lines) > max || len(lines) < 2 {
		t.Fatalf("%d warning lines for %v of overrunning batches, want between 2 and %d", len(lines), elapsed, max)
	}
	if !strings.Contains(lines[0], "Current batch is falling behind. The trigger interval is 1 milliseconds, but spent 3 milliseconds") {
		t.Errorf("first line: %s", lines[0])
	}
	if !strings.Contains(lines[1], "batches fell behind since the last warning") {
		t.Errorf("second line does not count the batches it stands for: %s", lines[1])
	}
}
