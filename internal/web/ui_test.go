package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluice-stream/sluice/progress"
)

// findChromium returns the browser to drive: $SLUICE_CHROMIUM, or the first
// of Debian's and other usual names on PATH.
func findChromium() string {
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// rendered mirrors window.__sluiceRendered.
type rendered struct {
	Charts        int    `json:"charts"`
	Points        int    `json:"points"`
	Batches       int    `json:"batches"`
	Partitions    int    `json:"partitions"`
	Query         string `json:"query"`
	Polls         int    `json:"polls"`
	ArrivalPoints int    `json:"arrivalPoints"`
	LimitMarks    int    `json:"limitMarks"`
	BatchRows     int    `json:"batchRows"`
	Findings      int    `json:"findings"`
	GroupRows     int    `json:"groupRows"`
	GroupMembers  int    `json:"groupMembers"`
	GroupMine     int    `json:"groupMine"`
}

// countColours is a page function counting, in the first canvas under
// selector, the opaque pixels within 8 of each #rrggbb colour.
const countColours = `(sel, colours) => {
  const c = document.querySelector(sel + ' canvas');
  if (!c) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const out = {};
  for (const [name, hex] of Object.entries(colours)) {
    const r = parseInt(hex.slice(1, 3), 16), g = parseInt(hex.slice(3, 5), 16), b = parseInt(hex.slice(5, 7), 16);
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 240 && Math.abs(d[i] - r) <= 8 && Math.abs(d[i + 1] - g) <= 8 && Math.abs(d[i + 2] - b) <= 8) n++;
    }
    out[name] = n;
  }
  return out;
}`

// TestUIInChromium serves the UI with a running fake query (30 batches, 4
// partitions with lag, one stalled for a while), drives the page in
// headless Chromium and checks what it drew: every chart has its points,
// the lag dots carry the status colours, the header and the partition
// table show the last report, a new batch appears without reloading, the
// limits form reaches the query, and queries without data or without the
// sluice key render without errors. It saves screenshots.
func TestUIInChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		if os.Getenv("SLUICE_REQUIRE_INTEROP") == "1" {
			t.Fatal("chromium not found and SLUICE_REQUIRE_INTEROP=1 (apt-get install -y chromium)")
		}
		t.Skip("chromium not found; set SLUICE_REQUIRE_INTEROP=1 to make this a failure")
	}

	const batches = 30
	busy, idle, plain := fixture()
	all := simulate("q-orders", "run-1", "orders", batches+1, t0)
	busy.recent = all[:batches]
	grouped := groupFixture()
	srv := NewServer(Config{Addr: "127.0.0.1:0", Queries: func() []Query { return []Query{busy, idle, plain, grouped} }})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()

	shotDir := os.Getenv("SLUICE_SCREENSHOT_DIR")
	if shotDir == "" {
		shotDir = t.TempDir()
	} else if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	began := time.Now()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if testing.Verbose() {
			t.Logf("%6.2fs %s", time.Since(began).Seconds(), what)
		}
	}
	waitFor := func(cond string) rendered {
		t.Helper()
		r, err := chromedp.Run(bctx, chromedp.Poll[rendered](
			`(window.__sluiceRendered && (`+cond+`)) ? window.__sluiceRendered : null`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			state, _ := chromedp.Run(bctx, chromedp.Evaluate[json.RawMessage](`JSON.stringify({r: window.__sluiceRendered, e: window.__sluiceErrors})`))
			t.Fatalf("waiting for %s: %v (page state %s)", cond, err, state)
		}
		return r
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById(`+jsString(id)+`).textContent`))
		must("read #"+id, err)
		return strings.TrimSpace(s)
	}
	noErrors := func() {
		t.Helper()
		errs, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.__sluiceErrors || []`))
		must("read page errors", err)
		if len(errs) > 0 {
			t.Fatalf("page reported errors: %q", errs)
		}
		// Missing fields must show as a dash, never as JavaScript's words
		// for a missing value.
		bad, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
			`['NaN', 'undefined', 'Invalid Date', 'null', 'Infinity'].filter(w => new RegExp('\\b' + w + '\\b').test(document.body.innerText))`))
		must("read page text", err)
		if len(bad) > 0 {
			t.Fatalf("page text shows %q", bad)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		must("screenshot", err)
		path := filepath.Join(shotDir, name)
		must("write screenshot", os.WriteFile(path, png, 0o644))
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
	}

	must("viewport", chromedp.Do(bctx, chromedp.EmulateViewport(1400, 1000)))
	must("navigate", chromedp.Do(bctx, chromedp.Navigate(base+"/?poll=150#q=q-orders")))

	// All six charts drawn from the 30 reports: per report 3 rates
	// (admitted, processed, capacity), 3 duration lines, 4+4 partition
	// lags, 2 ratios and 1 checkpoint size; plus the arrival series from
	// the live state (two samples a second, the first without a rate).
	r := waitFor(fmt.Sprintf("window.__sluiceRendered.query === 'q-orders' && window.__sluiceRendered.batches === %d && window.__sluiceRendered.arrivalPoints > 0", batches))
	arrivalPoints := 2*batches - 1
	if want := batches*(3+3+4+4+2+1) + arrivalPoints; r.Charts != 6 || r.Points != want || r.Partitions != 4 || r.ArrivalPoints != arrivalPoints {
		t.Errorf("rendered %+v, want 6 charts, %d points (%d of them arrival), 4 partitions", r, want, arrivalPoints)
	}
	// Every batch the limit capped has its marker on the rates chart.
	capped := 0
	for _, p := range busy.recent {
		if p.Sluice.Admission.LimitBound {
			capped++
		}
	}
	if capped == 0 || r.LimitMarks != capped {
		t.Errorf("%d limit markers, want %d (capped batches in the fixture)", r.LimitMarks, capped)
	}
	marks, err := chromedp.Run(bctx, chromedp.PollFunction[map[string]int](countColours,
		chromedp.WithPollingArgs("#chart-rates", map[string]string{"marker": "#d63b3b", "arrival": "#9333ea"}),
		chromedp.WithPollingTimeout(5*time.Second)))
	must("count rate chart colours", err)
	if marks["marker"] == 0 || marks["arrival"] == 0 {
		t.Errorf("rates chart pixels %v: want the limit markers and the arrival line", marks)
	}
	canvases, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('.chart .uplot canvas').length`))
	must("count canvases", err)
	if canvases != 6 {
		t.Errorf("%d uPlot canvases, want 6", canvases)
	}

	// The lag chart's dots are coloured by status: the fixture has WARN
	// batches (lag growing), STALL batches (partition 3) and OK batches.
	px, err := chromedp.Run(bctx, chromedp.PollFunction[map[string]int](countColours,
		chromedp.WithPollingArgs("#chart-lag-records", map[string]string{"ok": "#1f9d55", "warn": "#e0a000", "stall": "#d63b3b", "rewind": "#8e44ad"}),
		chromedp.WithPollingTimeout(5*time.Second)))
	must("count status colours", err)
	if px["ok"] == 0 || px["warn"] == 0 || px["stall"] == 0 || px["rewind"] != 0 {
		t.Errorf("status colour pixels in lag chart = %v, want ok, warn and stall > 0 and no rewind", px)
	}

	last := busy.recent[batches-1]
	if got, want := text("health"), last.Sluice.Health.Status; got != want {
		t.Errorf("health badge %q, want %q", got, want)
	}
	if got := text("last-batch"); !strings.HasPrefix(got, fmt.Sprintf("#%d ·", batches-1)) {
		t.Errorf("last batch tile %q", got)
	}
	if got := text("q-name"); got != "orders" {
		t.Errorf("query name %q", got)
	}
	if got := text("status-msg"); got != "Processing new data" {
		t.Errorf("status message %q", got)
	}
	rows, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#part-rows tr')].map(tr => [...tr.cells].slice(0, 3).map(c => c.textContent).join('|'))`))
	must("read partition table", err)
	var wantRows []string
	for _, p := range last.Sluice.Lag.Partitions {
		wantRows = append(wantRows, fmt.Sprintf("orders|%d|%s", p.Partition, groupThousands(p.OffsetsBehind)))
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("partition table rows %q, want %q", rows, wantRows)
	}
	// The state panel: the operator's rows, memory, late rows and the
	// watermark's delay behind now.
	srows, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#state-rows tr')].map(tr => [...tr.cells].map(c => c.textContent).join('|'))`))
	must("read state table", err)
	so := last.StateOperators[0]
	if want := fmt.Sprintf("0 stateStoreSave|%s|", groupThousands(so.NumRowsTotal)); len(srows) != 1 || !strings.HasPrefix(srows[0], want) ||
		!strings.Contains(srows[0], fmt.Sprintf("|%d|8|12", so.NumRowsDroppedByWatermark)) {
		t.Errorf("state table %q, want one row starting %q with %d late rows, 8 stores, commit 12 ms", srows, want, so.NumRowsDroppedByWatermark)
	}
	if wm := text("state-watermark"); !strings.Contains(wm, "watermark "+last.EventTime["watermark"][:19]) || !strings.Contains(wm, "behind now") {
		t.Errorf("state watermark %q, want the watermark and its delay", wm)
	}
	// The diagnosis, the batch table with Spark's durationMs keys, the start
	// time and uptime, times in UTC.
	if want := last.Sluice.Diagnosis.Findings; len(want) == 0 || text("diagnosis") != want[0] {
		t.Errorf("diagnosis %q, want %q", text("diagnosis"), want)
	}
	brows, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#batch-rows tr')].map(tr => [...tr.cells].map(c => c.textContent).join('|'))`))
	must("read batch table", err)
	if len(brows) != 20 {
		t.Fatalf("batch table has %d rows, want the newest 20", len(brows))
	}
	lp := last
	dm := lp.DurationMs
	g := groupThousands
	wantRow := fmt.Sprintf("#%d|%s|%s%s|3,000|%s|%s|%s|%s|%s|%s|%s|%s|%s", lp.BatchID, lp.Timestamp, g(lp.NumInputRows),
		map[bool]string{true: "capped", false: ""}[lp.Sluice.Admission.LimitBound], g(dm["latestOffset"]), g(dm["getBatch"]), g(dm["queryPlanning"]), g(dm["walCommit"]),
		g(dm["addBatch"]), g(dm["commitOffsets"]), g(dm["triggerExecution"]), g(lp.Sluice.Lag.Records), lp.Sluice.Health.Status)
	if brows[0] != wantRow {
		t.Errorf("newest batch row\n %q\nwant %q", brows[0], wantRow)
	}
	if got := text("q-start"); got != progress.FormatTime(t0.Add(-90*time.Second)) {
		t.Errorf("start time %q", got)
	}
	if got := text("q-uptime"); got != "2m 0s" {
		t.Errorf("uptime %q, want 2m 0s (90 s before the first batch + 30 batches of 1 s)", got)
	}
	if got := text("last-batch-sub"); !strings.Contains(got, lp.Timestamp) {
		t.Errorf("last batch tile %q does not give its time in UTC (%s)", got, lp.Timestamp)
	}
	noErrors()
	shot("ui.png")

	// A new batch shows up without a reload.
	busy.add(all[batches])
	waitFor(fmt.Sprintf("window.__sluiceRendered.batches === %d", batches+1))
	if got := text("last-batch"); !strings.HasPrefix(got, fmt.Sprintf("#%d ·", batches)) {
		t.Errorf("after a new batch the last batch tile is %q", got)
	}

	// The limits form posts what was typed and shows the answer.
	must("fill limits", chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(`#limits-form input[name=maxOffsetsPerTrigger]`), "1234"),
		chromedp.SetValue(chromedp.CSS(`#limits-form select[name=admission]`), "adaptive"),
		chromedp.Click(chromedp.CSS(`#limits-form button`)),
	))
	answer, err := chromedp.Run(bctx, chromedp.Poll[string](
		`(t => t.startsWith('HTTP ') ? t : null)(document.getElementById('limits-answer').textContent)`,
		chromedp.WithPollingTimeout(5*time.Second)))
	must("wait for limits answer", err)
	if !strings.HasPrefix(answer, "HTTP 200") || !strings.Contains(answer, `"maxOffsetsPerTrigger": 1234`) {
		t.Errorf("limits answer %q", answer)
	}
	if calls := busy.calls(); len(calls) != 1 || calls[0] != `{"maxOffsetsPerTrigger":1234,"admission":"adaptive"}` {
		t.Errorf("SetLimits calls %q", calls)
	}

	// A query without the sluice key: rates, durations and lag in records
	// (from the source offsets) are still drawn; the rest waits.
	_, err = chromedp.Run(bctx, chromedp.Evaluate[string](`location.hash = 'q=q-plain'`))
	must("switch to plain", err)
	r = waitFor("window.__sluiceRendered.query === 'q-plain' && window.__sluiceRendered.batches === 5")
	if want := 5 * (2 + 1 + 4); r.Charts != 3 || r.Points != want || r.Partitions != 4 {
		t.Errorf("plain query rendered %+v, want 3 charts, %d points, 4 partitions", r, want)
	}
	if stateHidden, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.getElementById('state-panel').hidden`)); err != nil || !stateHidden {
		t.Errorf("state panel shown for a stateless query (%v)", err)
	}
	if groupHidden, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.getElementById('group-panel').hidden`)); err != nil || !groupHidden {
		t.Errorf("group panel shown for a query not in group mode (%v)", err)
	}
	hidden, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.getElementById('limits').hidden`))
	must("read limits visibility", err)
	if !hidden {
		t.Error("limits form shown for a query that cannot change limits")
	}
	if got := text("health"); got != "n/a" {
		t.Errorf("plain query health %q, want n/a", got)
	}
	noErrors()
	shot("ui-plain.png")

	// A group-mode query: the group panel lists both members and every
	// partition with its owner (the unowned one says so), this member's
	// partitions highlighted, in partition order.
	_, err = chromedp.Run(bctx, chromedp.Evaluate[string](`location.hash = 'q=q-group'`))
	must("switch to group", err)
	r = waitFor("window.__sluiceRendered.query === 'q-group' && window.__sluiceRendered.groupRows === 4")
	if r.GroupMembers != 2 || r.GroupMine != 2 {
		t.Errorf("group panel rendered %+v, want 2 members and 2 partitions of this member", r)
	}
	grows, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#group-rows tr')].map(tr => (tr.className === 'mine' ? '*' : '') + [...tr.cells].map(c => c.textContent).join('|'))`))
	must("read group table", err)
	wantGroup := []string{
		"*orders|0|sluice-m1 (/10.0.0.1)|1,000|1,000|0|0 ms|OK",
		"*orders|1|sluice-m1 (/10.0.0.1)|1,200|1,500|300|2.5 s|OK",
		"orders|2|sluice-m2 (/10.0.0.2)|10|12,010|12,000|40 s|WARN",
		"orders|3|none|—|700|700|—|STOP",
	}
	if !slices.Equal(grows, wantGroup) {
		t.Errorf("group table\n %q\nwant %q", grows, wantGroup)
	}
	if note := text("group-note"); !strings.Contains(note, "group orders-group · Stable · 2 members") || !strings.Contains(note, "this member: m1") {
		t.Errorf("group note %q", note)
	}
	if m := text("group-members"); !strings.Contains(m, "sluice-m1 (/10.0.0.1): 2 partitions — this member") || !strings.Contains(m, "sluice-m2 (/10.0.0.2): 1 partition") {
		t.Errorf("group members line %q", m)
	}
	noErrors()
	shot("ui-group.png")

	// An idle query with no report yet: nothing drawn, no error.
	_, err = chromedp.Run(bctx, chromedp.Evaluate[string](`location.hash = 'q=q-idle'`))
	must("switch to idle", err)
	r = waitFor("window.__sluiceRendered.query === 'q-idle'")
	if r.Charts != 0 || r.Points != 0 || r.Batches != 0 {
		t.Errorf("idle query rendered %+v, want nothing", r)
	}
	if got := text("status-msg"); got != "Waiting for data to arrive" {
		t.Errorf("idle status %q", got)
	}
	noErrors()
}

// groupThousands formats n with a comma every three digits, as the page
// does.
func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
