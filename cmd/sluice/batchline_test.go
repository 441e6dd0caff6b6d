package main

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/progress"
)

func lineProgress(mod func(*progress.Progress)) *progress.Progress {
	p := &progress.Progress{
		BatchID: 7, NumInputRows: 500, InputRowsPerSecond: 249.6, ProcessedRowsPerSecond: 1000, BatchDuration: 500,
		Sluice: &progress.Sluice{
			Timing: &progress.TimingInfo{TriggerIntervalMs: 1000, BatchDurationVsTrigger: 0.5},
			Lag:    &progress.LagInfo{Records: 1500, Seconds: 3.25, DrainETASeconds: 75},
			Health: &progress.HealthInfo{Status: "OK", Reason: "fine"},
		},
	}
	if mod != nil {
		mod(p)
	}
	return p
}

func TestFormatBatchLine(t *testing.T) {
	tests := []struct {
		name string
		p    *progress.Progress
		want string
	}{
		{"full", lineProgress(nil),
			"batch 7: 500 rows, in 250/s, processed 1000/s, 500 ms of 1000 ms trigger, lag 1500 records / 3.2 s (drains in 1m15s), OK"},
		{"falling behind and never draining", lineProgress(func(p *progress.Progress) {
			p.BatchDuration = 2500
			p.Sluice.Timing.BatchDurationVsTrigger = 2.5
			p.Sluice.Lag.DrainETASeconds = progress.Never()
			p.Sluice.Health = &progress.HealthInfo{Status: "WARN", Reason: "lag grew from 10 to 1500 records"}
		}), "batch 7: 500 rows, in 250/s, processed 1000/s, 2500 ms of 1000 ms trigger (2.5x, falling behind), " +
			"lag 1500 records / 3.2 s (never drains at this rate), WARN: lag grew from 10 to 1500 records"},
		{"caught up, default trigger, unknown input rate", lineProgress(func(p *progress.Progress) {
			p.InputRowsPerSecond = progress.NaN()
			p.Sluice.Timing = &progress.TimingInfo{BatchDurationVsTrigger: progress.Ratio(math.NaN())}
			p.Sluice.Lag = &progress.LagInfo{Records: 0, Seconds: 0}
		}), "batch 7: 500 rows, in -/s, processed 1000/s, 500 ms, lag 0 records / 0.0 s, OK"},
		{"lag seconds unknown", lineProgress(func(p *progress.Progress) {
			p.Sluice.Lag.Seconds = progress.NaN()
			p.Sluice.Lag.DrainETASeconds = 4000
		}), "batch 7: 500 rows, in 250/s, processed 1000/s, 500 ms of 1000 ms trigger, lag 1500 records (drains in 1h07m), OK"},
		{"capped by the read limit, with the diagnosis", lineProgress(func(p *progress.Progress) {
			p.Sluice.Admission = &progress.AdmissionInfo{Limit: 500, LimitBound: true, Reason: "maxOffsetsPerTrigger", Mode: "static"}
			p.Sluice.Health = &progress.HealthInfo{Status: "WARN", Reason: "lag grew from 10 to 1500 records"}
			p.Sluice.Diagnosis = &progress.DiagnosisInfo{Limiting: "read limit", Findings: []string{"read limit is binding: capacity ≈ 1,000/s, admitting 500/s; raising maxOffsetsPerTrigger to ≈ 800 would drain in 6 s"}}
		}), "batch 7: 500 rows (capped by the limit 500), in 250/s, processed 1000/s, 500 ms of 1000 ms trigger, lag 1500 records / 3.2 s (drains in 1m15s), " +
			"WARN: lag grew from 10 to 1500 records; read limit is binding: capacity ≈ 1,000/s, admitting 500/s; raising maxOffsetsPerTrigger to ≈ 800 would drain in 6 s"},
		{"no sluice group: Spark's metric", lineProgress(func(p *progress.Progress) {
			p.Sluice = nil
			p.Sources = []progress.SourceProgress{{Metrics: map[string]string{"maxOffsetsBehindLatest": "42"}}}
		}), "batch 7: 500 rows, in 250/s, processed 1000/s, 500 ms, max offsets behind 42"},
	}
	for _, tt := range tests {
		if got := formatBatchLine(tt.p); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestRenderBar(t *testing.T) {
	tests := []struct {
		done, total int64
		eta         progress.ETA
		want        string
	}{
		{0, 100, 12, "[>         ]   0% 0/100 rows, ETA 12 s"},
		{45, 100, 5.5, "[====>     ]  45% 45/100 rows, ETA 5.5 s"},
		{50, 100, progress.Never(), "[=====>    ]  50% 50/100 rows, ETA never"},
		{50, 100, progress.ETA(math.NaN()), "[=====>    ]  50% 50/100 rows"},
		{100, 100, 0, "[==========] 100% 100/100 rows, done"},
		{0, 0, 0, "[==========] 100% 0/0 rows, done"},
	}
	for _, tt := range tests {
		if got := renderBar(tt.done, tt.total, tt.eta, 10); got != tt.want {
			t.Errorf("renderBar(%d, %d, %v):\n got %q\nwant %q", tt.done, tt.total, tt.eta, got, tt.want)
		}
	}
}

func TestFormatSeconds(t *testing.T) {
	for in, want := range map[float64]string{0.04: "0.0 s", 9.96: "10.0 s", 12.4: "12 s", 200: "3m20s", 7500: "2h05m", math.Inf(1): "never", math.NaN(): "?"} {
		if got := formatSeconds(in); got != want {
			t.Errorf("formatSeconds(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestBatchLineBar drives the listener with the bar on: each report erases
// the bar, prints its line and redraws the bar over the rows read so far
// plus the remaining lag; termination ends the bar's line.
func TestBatchLineBar(t *testing.T) {
	var buf bytes.Buffer
	b := &batchLine{w: &buf, bar: true}
	report := func(id, rows, remaining int64, eta progress.ETA) {
		b.OnQueryProgress(progress.ProgressEvent{Progress: lineProgress(func(p *progress.Progress) {
			p.BatchID, p.NumInputRows = id, rows
			p.Sluice.Lag = &progress.LagInfo{Records: remaining, Seconds: 1, DrainETASeconds: eta}
		})})
	}
	report(0, 30, 70, 7) // trigger not known yet: plain line, rows still counted
	b.setAvailableNow(true)
	report(1, 30, 40, 4)
	report(2, 40, 0, 0)
	b.OnQueryTerminated(progress.TerminatedEvent{})
	got := buf.String()
	want := "batch 0: 30 rows, in 250/s, processed 1000/s, 500 ms of 1000 ms trigger, lag 70 records / 1.0 s (drains in 7.0 s), OK\n" +
		"\r\033[Kbatch 1: 30 rows, in 250/s, processed 1000/s, 500 ms of 1000 ms trigger, lag 40 records / 1.0 s (drains in 4.0 s), OK\n" +
		"[==================>           ]  60% 60/100 rows, ETA 4.0 s" +
		"\r\033[Kbatch 2: 40 rows, in 250/s, processed 1000/s, 500 ms of 1000 ms trigger, lag 0 records / 1.0 s, OK\n" +
		"[==============================] 100% 100/100 rows, done\n"
	if got != want {
		t.Errorf("output\n%q\nwant\n%q", got, want)
	}
	// Without a terminal no escape codes are written.
	if isTerminal(&buf) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || newBatchLine(f).bar {
		t.Error("a regular file is a terminal")
	}
	plain := &batchLine{w: &buf}
	buf.Reset()
	plain.setAvailableNow(true)
	plain.OnQueryProgress(progress.ProgressEvent{Progress: lineProgress(nil)})
	plain.OnQueryTerminated(progress.TerminatedEvent{})
	if s := buf.String(); strings.Contains(s, "\033") || strings.Count(s, "\n") != 1 {
		t.Errorf("non-terminal output %q", s)
	}
}
