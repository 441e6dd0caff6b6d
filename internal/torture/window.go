package torture

import (
	"encoding/json"
	"fmt"
	"time"
)

// The "window" pipeline's data: record i has the key k(i mod windowKeys)
// and the event time windowBase + i·windowStep, so its 10-second window and
// every window's count and sum of ids follow from the records produced.
// The watermark delay (300 records of event time) is far more than the
// spread of a batch's partitions (the Kafka source splits
// maxOffsetsPerTrigger in proportion to backlog and the producer writes
// round-robin), so no record is ever late: every window's count is exact.
const (
	windowKeys  = 5
	windowStep  = 100 * time.Millisecond
	windowSize  = 10 * time.Second
	windowDelay = 30 * time.Second
)

var windowBase = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// windowTransform parses the records, puts a watermark on their event time,
// counts them (and sums their ids) per key and window in append mode, and
// writes one row per window as JSON in the value column (the Kafka sink's
// column; the Delta table has it too).
const windowTransform = `  - selectExpr: ["from_json(CAST(value AS STRING), 'id BIGINT, k STRING, ts TIMESTAMP') AS o"]
  - selectExpr: ["o.id AS id", "o.k AS k", "o.ts AS ts"]
  - withWatermark: {eventTime: ts, delay: 30 seconds}
  - groupBy: ["window(ts, '10 seconds')", k]
    agg: ["count(*) AS n", "sum(id) AS ids"]
  - selectExpr: ["k AS key", "to_json(struct(CAST(window.start AS BIGINT) AS wstart, CAST(window.end AS BIGINT) AS wend, k, n, ids)) AS value"]
`

// windowRecord is record i of the "window" pipeline.
func windowRecord(i int) (key, value []byte) {
	k := fmt.Sprintf("k%d", i%windowKeys)
	ts := windowBase.Add(time.Duration(i) * windowStep)
	return []byte(k), []byte(fmt.Sprintf(`{"id":%d,"k":%q,"ts":%q}`, i, k, ts.Format("2006-01-02T15:04:05.000Z")))
}

// windowRow is one output row of the "window" pipeline.
type windowRow struct {
	Start int64  `json:"wstart"` // epoch seconds
	End   int64  `json:"wend"`
	K     string `json:"k"`
	N     int64  `json:"n"`
	IDs   int64  `json:"ids"`
}

type windowKey struct {
	start int64
	k     string
}

// expectedWindows returns the count and sum of ids of every window (per
// key) that the final watermark — the largest event time produced minus the
// delay — has passed: Spark's append mode emits a window when its end is at
// or below the watermark.
func expectedWindows(produced int) map[windowKey]windowRow {
	want := map[windowKey]windowRow{}
	if produced == 0 {
		return want
	}
	watermark := windowBase.Add(time.Duration(produced-1)*windowStep - windowDelay)
	for i := 0; i < produced; i++ {
		ts := windowBase.Add(time.Duration(i) * windowStep)
		start := ts.Truncate(windowSize) // windowBase is on a window boundary
		if end := start.Add(windowSize); end.After(watermark) {
			continue
		}
		wk := windowKey{start.Unix(), fmt.Sprintf("k%d", i%windowKeys)}
		w := want[wk]
		w.Start, w.End, w.K = wk.start, start.Add(windowSize).Unix(), wk.k
		w.N++
		w.IDs += int64(i)
		want[wk] = w
	}
	return want
}

// checkWindows compares the output rows (JSON values) with the windows the
// produced records make.
func checkWindows(res *Result, values []string) error {
	want := expectedWindows(res.Produced)
	res.Windows = len(want)
	res.Output = len(values)
	seen := map[windowKey]int{}
	for _, v := range values {
		var row windowRow
		if err := json.Unmarshal([]byte(v), &row); err != nil {
			return fmt.Errorf("torture: output row %q: %w", v, err)
		}
		wk := windowKey{row.Start, row.K}
		seen[wk]++
		w, ok := want[wk]
		switch {
		case !ok:
			res.Unexpected++
		case seen[wk] == 1 && row != w:
			res.WrongCount++
		}
	}
	res.Distinct = len(seen)
	for wk := range want {
		switch n := seen[wk]; {
		case n == 0:
			res.Lost++
		case n > 1:
			res.Duplicated += n - 1
		}
	}
	return nil
}
