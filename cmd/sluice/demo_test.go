package main

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemoShowsBackpressure runs `sluice demo` shortened — a 500 ms
// trigger, 500 records per batch (1,000/s), 200/s with a ×10 spike for
// 3 s — and checks what it is for: lag builds during the spike on batches
// the limit caps, then drains, and the demo stops by itself with the
// summary.
func TestDemoShowsBackpressure(t *testing.T) {
	var stderr bytes.Buffer
	code := realMain([]string{"demo", "--trigger", "500 milliseconds", "--max-offsets-per-trigger", "500", "--rate", "200",
		"--spike", "10", "--spike-at", "2s", "--spike-for", "3s", "--num-rows", "1", "--duration", "90s"}, io.Discard, &stderr)
	out := stderr.String()
	if code != 0 {
		t.Fatalf("demo exit %d:\n%s", code, out)
	}
	capped := regexp.MustCompile(`(?m)^batch \d+: 500 rows \(capped by the limit 500\).*, lag (\d+) records`)
	lagged := 0
	for _, m := range capped.FindAllStringSubmatch(out, -1) {
		if n, _ := strconv.Atoi(m[1]); n > 0 {
			lagged++
		}
	}
	if lagged == 0 {
		t.Fatalf("no capped batch with lag > 0 during the spike:\n%s", out)
	}
	for _, want := range []string{"the spike's lag has drained; stopping", "sluice demo: summary", "vs a physical minimum of"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	peak := regexp.MustCompile(`peak lag: (\d+) records, .* behind \(batch \d+\)`).FindStringSubmatch(out)
	caps := regexp.MustCompile(`batches capped by maxOffsetsPerTrigger=500: (\d+) of (\d+)`).FindStringSubmatch(out)
	if peak == nil || caps == nil {
		t.Fatalf("summary incomplete:\n%s", out)
	}
	if n, _ := strconv.Atoi(peak[1]); n <= 0 {
		t.Errorf("peak lag %s records, want > 0", peak[1])
	}
	if n, _ := strconv.Atoi(caps[1]); n < lagged {
		t.Errorf("summary counts %s capped batches, the lines show %d", caps[1], lagged)
	}
}
