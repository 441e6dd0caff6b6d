package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/progress"
)

// fakeQuery is a Query serving progress reports; add appends one, as a
// running query does after each batch.
type fakeQuery struct {
	id, runID, name string
	status          any

	pmu    sync.Mutex
	recent []*progress.Progress
}

func (q *fakeQuery) add(p *progress.Progress) {
	q.pmu.Lock()
	defer q.pmu.Unlock()
	q.recent = append(q.recent, p)
}

func (q *fakeQuery) ID() string    { return q.id }
func (q *fakeQuery) RunID() string { return q.runID }
func (q *fakeQuery) Name() string  { return q.name }
func (q *fakeQuery) Status() any   { return q.status }
func (q *fakeQuery) LastProgress() *progress.Progress {
	q.pmu.Lock()
	defer q.pmu.Unlock()
	if len(q.recent) == 0 {
		return nil
	}
	return q.recent[len(q.recent)-1]
}
func (q *fakeQuery) RecentProgress() []*progress.Progress {
	q.pmu.Lock()
	defer q.pmu.Unlock()
	return append([]*progress.Progress(nil), q.recent...)
}

// limitQuery is a fakeQuery whose limits can be set and read; it records
// every body it was given and answers with the merged limits, or err.
type limitQuery struct {
	fakeQuery
	err error

	mu     sync.Mutex
	bodies []string
	limits map[string]any
}

func (q *limitQuery) SetLimits(_ context.Context, body json.RawMessage) (any, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.bodies = append(q.bodies, string(body))
	if q.err != nil {
		return nil, q.err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("fake: decode limits: %w", err)
	}
	if q.limits == nil {
		q.limits = map[string]any{}
	}
	for k, v := range m {
		q.limits[k] = v
	}
	return q.limits, nil
}

func (q *limitQuery) Limits() any {
	q.mu.Lock()
	defer q.mu.Unlock()
	return map[string]any{"maxOffsetsPerTrigger": 3000, "triggerInterval": "1 second"}
}

// Live implements LiveReporter: the start time and an arrival series
// sampled every 500 ms along the simulated reports (4,200/s, then 900/s
// for the last third, as simulate's producer).
func (q *limitQuery) Live() any {
	q.pmu.Lock()
	n := len(q.recent)
	q.pmu.Unlock()
	type sample struct {
		Timestamp     string          `json:"timestamp"`
		Offsets       int64           `json:"offsets"`
		RowsPerSecond progress.Double `json:"rowsPerSecond,omitzero"`
	}
	var arrival []sample
	var offsets int64
	for i := 0; i < 2*n; i++ {
		rate := 4200.0
		if i/2 >= 30*2/3 {
			rate = 900
		}
		s := sample{Timestamp: progress.FormatTime(t0.Add(time.Duration(i) * 500 * time.Millisecond).Add(250 * time.Millisecond)), Offsets: offsets, RowsPerSecond: progress.Double(rate)}
		if i == 0 {
			s.RowsPerSecond = progress.NaN()
		}
		offsets += int64(rate / 2)
		arrival = append(arrival, s)
	}
	return map[string]any{"startTimestamp": progress.FormatTime(t0.Add(-90 * time.Second)),
		"timestamp": progress.FormatTime(t0.Add(time.Duration(n) * time.Second)), "arrival": arrival}
}

func (q *limitQuery) calls() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.bodies...)
}

// simulate builds n progress reports of a query reading 4 partitions of
// topic "orders" with maxOffsetsPerTrigger 3000 and a 1 s trigger: the
// producer outruns the limit for the first two thirds (lag grows, WARN),
// partition 3 stalls for a few batches (STALL), then the producer slows
// down and the backlog drains (OK). Offsets, lag and rates are consistent
// with each other.
func simulate(id, runID, name string, n int, start time.Time) []*progress.Progress {
	const (
		parts     = 4
		limit     = 3000
		triggerMs = 1000
	)
	share := [parts]float64{0.2, 0.2, 0.25, 0.35}
	var latest, committed, prevBehind [parts]int64
	var ckptBytes, ckptFiles int64 = 2048, 3
	var prevDur int64
	var out []*progress.Progress
	var namePtr *string
	if name != "" {
		namePtr = &name
	}
	for b := 0; b < n; b++ {
		ts := start.Add(time.Duration(b) * time.Second)
		arrival := 4200.0
		if b >= n*2/3 {
			arrival = 900
		}
		var from, end [parts]int64
		var backlog int64
		for p := range parts {
			latest[p] += int64(arrival * share[p])
			backlog += latest[p] - committed[p]
		}
		stalled := func(p int) bool { return p == 3 && b >= n/3 && b < n/3+4 }
		var rows int64
		for p := range parts {
			from[p] = committed[p]
			want := latest[p] - committed[p]
			adm := want
			if backlog > limit {
				adm = int64(float64(limit) * float64(want) / float64(backlog))
			}
			if stalled(p) {
				adm = 0
			}
			end[p] = committed[p] + adm
			rows += adm
		}
		dur := 180 + rows*3/10 + int64(b%3)*25
		sched := max(0, prevDur-triggerMs)
		prevDur = dur
		ckptBytes += 1800 + int64(b%4)*300
		ckptFiles += 2
		if b%10 == 9 { // compaction
			ckptBytes -= 9000
			ckptFiles -= 12
		}

		var lagParts []progress.PartitionLag
		var total int64
		worst, worstSec, worstReason := "OK", 0.0, "all partitions keep up"
		rank := map[string]int{"OK": 0, "WARN": 1, "STALL": 2}
		for p := range parts {
			behind := latest[p] - end[p]
			total += behind
			// The oldest unread records arrived at the fast rate.
			sec := float64(behind) / (4200 * share[p])
			method := "interpolated"
			if behind == 0 {
				sec, method = 0, "caught-up"
			}
			st, reason := "OK", fmt.Sprintf("lag %d records, shrinking or steady", behind)
			switch {
			case stalled(p):
				st, reason = "STALL", fmt.Sprintf("no progress for %d batches while %d records behind", b-n/3+1, behind)
			case behind > prevBehind[p] && b > 0:
				st, reason = "WARN", fmt.Sprintf("lag grew from %d to %d records while progressing", prevBehind[p], behind)
			}
			prevBehind[p] = behind
			if rank[st] > rank[worst] {
				worst, worstReason = st, fmt.Sprintf("orders/%d: %s", p, reason)
			}
			worstSec = math.Max(worstSec, sec)
			lagParts = append(lagParts, progress.PartitionLag{
				Topic: "orders", Partition: int32(p), OffsetsBehind: behind,
				LagSeconds: progress.Double(math.Round(sec*10) / 10), LagMethod: method, Status: st, Reason: reason,
			})
			committed[p] = end[p]
		}
		capacity := float64(rows) / (float64(dur) / 1000)
		eta := progress.Never()
		if capacity > arrival {
			eta = progress.ETA(float64(total) / (capacity - arrival))
		}
		rate := float64(rows)
		inRate := progress.Double(math.Round(rate*10) / 10)
		procRate := progress.Double(math.Round(capacity*10) / 10)
		src := progress.SourceProgress{
			Description:            "KafkaV2[Subscribe[orders]]",
			StartOffset:            offsets(from),
			EndOffset:              offsets(end),
			LatestOffset:           offsets(latest),
			NumInputRows:           rows,
			InputRowsPerSecond:     inRate,
			ProcessedRowsPerSecond: procRate,
		}
		pr := &progress.Progress{
			ID: id, RunID: runID, Name: namePtr,
			Timestamp: progress.FormatTime(ts), BatchID: int64(b), BatchDuration: dur,
			DurationMs: map[string]int64{"addBatch": dur - 45, "getBatch": 2, "queryPlanning": 3, "latestOffset": 8, "walCommit": 14, "commitOffsets": 9, "triggerExecution": dur},
			Sources:    []progress.SourceProgress{src},
			Sink:       progress.SinkProgress{Description: "ConsoleSink", NumOutputRows: rows},
			Sluice: &progress.Sluice{
				Health: &progress.HealthInfo{Status: worst, Reason: worstReason},
				Lag: &progress.LagInfo{
					Records: total, Seconds: progress.Double(math.Round(worstSec*10) / 10), DrainETASeconds: eta,
					ArrivalRowsPerSecond: progress.Double(arrival), CapacityRowsPerSecond: progress.Double(math.Round(capacity)),
					Partitions: lagParts,
				},
				Timing: &progress.TimingInfo{
					TriggerIntervalMs: triggerMs, BatchDurationVsTrigger: progress.Ratio(float64(dur) / triggerMs),
					SchedulingDelayMs: sched, BusyRatio: progress.Ratio(math.Min(1, float64(dur)/triggerMs)),
					TaskSkew: 1.3,
				},
				Throughput: &progress.ThroughputInfo{NumInputBytes: rows * 120, InputBytesPerSecond: progress.Double(rate * 120), ProcessedBytesPerSecond: progress.Double(capacity * 120)},
				Checkpoint: &progress.CheckpointInfo{Bytes: ckptBytes, Files: ckptFiles},
				Memory:     &progress.MemoryInfo{BufferedBytes: rows * 150, BudgetBytes: 256 << 20},
				Admission:  &progress.AdmissionInfo{Limit: limit, LimitBound: backlog > limit, Reason: "maxOffsetsPerTrigger"},
			},
		}
		if backlog > limit {
			pr.Sluice.Diagnosis = &progress.DiagnosisInfo{Limiting: "read limit", Findings: []string{fmt.Sprintf(
				"read limit is binding: capacity ≈ %.0f/s, admitting 3,000/s; raising maxOffsetsPerTrigger to ≈ 4,800 would drain in %d s", capacity, total/600+1)}}
		} else {
			pr.Sluice.Diagnosis = &progress.DiagnosisInfo{Limiting: "sink write"}
		}
		// A windowed count per customer: one state operator, a watermark a
		// minute behind the batch, late rows in every fifth batch.
		pr.StateOperators = []progress.StateOperatorProgress{{OperatorName: "stateStoreSave", NumRowsTotal: 1000 + int64(b)*10,
			NumRowsUpdated: rows / 3, NumRowsRemoved: int64(b), MemoryUsedBytes: (1000 + int64(b)*10) * 160,
			NumRowsDroppedByWatermark: int64(b % 5), NumShufflePartitions: 8, NumStateStoreInstances: 8, CommitTimeMs: 12}}
		pr.EventTime = map[string]string{"watermark": progress.FormatTime(ts.Add(-time.Minute))}
		pr.SumSources()
		out = append(out, pr)
	}
	return out
}

// offsets writes Spark's Kafka offset JSON for topic "orders".
func offsets(o [4]int64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"orders":{"0":%d,"1":%d,"2":%d,"3":%d}}`, o[0], o[1], o[2], o[3]))
}

// plainProgress builds n reports as Spark writes them: no "sluice" key,
// lag only derivable from the source offsets.
func plainProgress(id, runID string, n int, start time.Time) []*progress.Progress {
	full := simulate(id, runID, "", n, start)
	for _, p := range full {
		p.Sluice = nil
		p.StateOperators, p.EventTime = nil, nil // and a stateless one
	}
	return full
}

// groupQuery is a fakeQuery in group mode (GroupDescriber): it describes
// its group with rep, or fails with err; inGroup false makes it a query
// that could describe a group but does not run in group mode.
type groupQuery struct {
	fakeQuery
	inGroup bool
	rep     json.RawMessage
	err     error

	mu    sync.Mutex
	asked int
}

func (q *groupQuery) InGroup() bool { return q.inGroup }

func (q *groupQuery) DescribeGroup(context.Context) (any, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.asked++
	if q.err != nil {
		return nil, q.err
	}
	return q.rep, nil
}

// groupFixture is a group-mode query of member "m1" (member id "m1-id")
// whose group has two members over 4 partitions of "orders": m1 owns 0 and
// 1, m2 owns 2, and partition 3 has no owner (STOP).
func groupFixture() *groupQuery {
	recent := simulate("q-group", "run-4", "grouped", 5, t0)
	for _, p := range recent {
		p.Sluice.Group = &progress.GroupInfo{Group: "orders-group", Member: "m1", MemberID: "m1-id", Partitions: []string{"orders-0", "orders-1"}}
	}
	return &groupQuery{fakeQuery: fakeQuery{id: "q-group", runID: "run-4", name: "grouped",
		status: progress.Status{Message: progress.MsgProcessingNewData}, recent: recent}, inGroup: true,
		rep: json.RawMessage(`{"group":"orders-group","state":"Stable","protocolType":"consumer","protocol":"cooperative-sticky",
 "members":[
  {"memberId":"m1-id","clientId":"sluice-m1","host":"/10.0.0.1","partitions":[{"topic":"orders","partition":0},{"topic":"orders","partition":1}]},
  {"memberId":"m2-id","clientId":"sluice-m2","host":"/10.0.0.2","partitions":[{"topic":"orders","partition":2}]}],
 "partitions":[
  {"topic":"orders","partition":1,"memberId":"m1-id","clientId":"sluice-m1","host":"/10.0.0.1","committedOffset":1200,"latestOffset":1500,"lagRecords":300,"lagSeconds":2.5,"status":"OK"},
  {"topic":"orders","partition":0,"memberId":"m1-id","clientId":"sluice-m1","host":"/10.0.0.1","committedOffset":1000,"latestOffset":1000,"lagRecords":0,"lagSeconds":0,"status":"OK"},
  {"topic":"orders","partition":2,"memberId":"m2-id","clientId":"sluice-m2","host":"/10.0.0.2","committedOffset":10,"latestOffset":12010,"lagRecords":12000,"lagSeconds":40,"status":"WARN"},
  {"topic":"orders","partition":3,"committedOffset":null,"latestOffset":700,"lagRecords":700,"lagSeconds":null,"status":"STOP"}],
 "health":{"status":"STOP"},"lagRecords":13000}`)}
}
