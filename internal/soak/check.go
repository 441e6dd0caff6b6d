package soak

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/parquetio"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
)

// measureCapacity drains a backlog of 15 batches' worth of records on the
// probe topic through the soak's pipeline and returns the drain rate.
func (s *soak) measureCapacity(ctx context.Context) (float64, error) {
	n := 15 * s.cfg.MaxOffsetsPerTrigger
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return 0, err
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: probeTopic, Value: []byte(value(int64(i)))}
	}
	err = cl.ProduceSync(ctx, recs...).FirstErr()
	cl.Close()
	if err != nil {
		return 0, fmt.Errorf("soak: preload the capacity probe: %w", err)
	}
	p, err := s.pipeline(probeTopic, "probe", fmt.Sprintf("processingTime: %d milliseconds", s.cfg.Trigger.Milliseconds()))
	if err != nil {
		return 0, err
	}
	started := time.Now()
	if err := s.startQuery(p); err != nil {
		return 0, err
	}
	defer func() {
		s.stopQuery(false)
		s.queryMu.Lock()
		s.query, s.life = nil, 0
		s.queryMu.Unlock()
	}()
	var t0 time.Time
	var c0 int64
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		if !sleep(ctx, 50*time.Millisecond) {
			return 0, ctx.Err()
		}
		com, err := s.committed("probe")
		if err != nil {
			continue // the first commit is being written
		}
		var sum int64
		for _, o := range com {
			sum += o
		}
		now := time.Now()
		if sum > 0 && t0.IsZero() {
			t0, c0 = now, sum
		}
		if sum >= int64(n) {
			if now.Sub(t0) < 100*time.Millisecond || c0 >= sum {
				return float64(n) / now.Sub(started).Seconds(), nil
			}
			return float64(sum-c0) / now.Sub(t0).Seconds(), nil
		}
	}
	return 0, fmt.Errorf("soak: the capacity probe did not drain %d records within 3 minutes; see %s", n, s.queryLog.Name())
}

// drain waits for the query to catch up with everything produced, then
// stops it. A query that does not drain within DrainTimeout fails the run;
// it is stopped and the rest is drained by an availableNow run on the same
// checkpoint, so the exactly-once check still sees everything.
func (s *soak) drain(ctx context.Context) error {
	adm, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		return err
	}
	defer adm.Close()
	began := time.Now()
	s.printf("%7s  producer stopped after %d records acknowledged; draining", s.since(), s.countAcked())
	for time.Since(began) < s.cfg.DrainTimeout {
		if lag, err := s.lag(ctx, kadm.NewClient(adm), "main"); err == nil && lag == 0 {
			s.res.Drained, s.res.DrainSeconds = true, time.Since(began).Seconds()
			break
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	if err := s.stopQuery(false); err != nil {
		s.fail("%v", err)
	}
	if s.res.Drained {
		s.printf("%7s  drained in %.1fs; query stopped", s.since(), s.res.DrainSeconds)
		return nil
	}
	s.fail("lag unbounded: the query did not drain within %s after the producer stopped", s.cfg.DrainTimeout)
	finish, err := s.pipeline(topic, "main", "availableNow: true")
	if err != nil {
		return err
	}
	out, err := s.cfg.Command(ctx, "run", finish, "--quiet", "--ui-addr", "off", "--log-level", "error").CombinedOutput()
	if err != nil {
		return fmt.Errorf("soak: final availableNow drain: %v\n%s", err, out)
	}
	return nil
}

func (s *soak) countAcked() int {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	n := 0
	for _, a := range s.acked {
		if a {
			n++
		}
	}
	return n
}

func parseID(v string) (int64, error) {
	rest, ok := strings.CutPrefix(v, "s-")
	if !ok {
		return 0, fmt.Errorf("value %q is not a soak record", v)
	}
	return strconv.ParseInt(rest, 10, 64)
}

// verify compares the output with the topic, record by record.
func (s *soak) verify(ctx context.Context) error {
	topicIDs, err := s.readTopic(ctx)
	if err != nil {
		return err
	}
	inTopic := make([]bool, s.nextID.Load())
	for _, ids := range topicIDs {
		s.res.InTopic += len(ids)
		for _, id := range ids {
			if id >= 0 && id < int64(len(inTopic)) {
				inTopic[id] = true
			}
		}
	}
	s.ackMu.Lock()
	for id, a := range s.acked {
		if a {
			s.res.Acked++
			if id >= len(inTopic) || !inTopic[id] {
				s.res.AckedMissing++
			}
		}
	}
	s.ackMu.Unlock()

	counts := map[int32][]uint8{}
	for p, ids := range topicIDs {
		counts[p] = make([]uint8, len(ids))
	}
	files, err := filesink.ReadLog(s.outDir("main"))
	if err != nil {
		return err
	}
	for _, f := range files {
		t, err := parquetio.ReadFile(f)
		if err != nil {
			return fmt.Errorf("soak: read %s: %w", f, err)
		}
		col := map[string]int{}
		for i, n := range t.Names {
			col[n] = i
		}
		vi, okv := col["value"]
		pi, okp := col["partition"]
		oi, oko := col["offset"]
		if !okv || !okp || !oko {
			return fmt.Errorf("soak: %s lacks value/partition/offset columns (%v)", f, t.Names)
		}
		for _, row := range t.Rows {
			s.res.Output++
			p, _ := row[pi].(int64)
			o, _ := row[oi].(int64)
			v, _ := row[vi].(string)
			c, ok := counts[int32(p)]
			if !ok || o < 0 || o >= int64(len(c)) {
				s.res.Mismatched++ // an offset the topic does not have
				continue
			}
			if c[o] < 255 {
				c[o]++
			}
			if id, err := parseID(v); err != nil || id != topicIDs[int32(p)][o] {
				s.res.Mismatched++
			}
		}
	}
	for _, c := range counts {
		for _, n := range c {
			switch {
			case n == 0:
				s.res.Lost++
			case n > 1:
				s.res.Duplicated += int(n) - 1
			}
		}
	}
	s.printf("check: %d acknowledged, %d in the topic (%d acknowledged but missing), %d output rows: %d lost, %d duplicated, %d mismatched",
		s.res.Acked, s.res.InTopic, s.res.AckedMissing, s.res.Output, s.res.Lost, s.res.Duplicated, s.res.Mismatched)
	return nil
}

// readTopic reads the soak topic to its end: the record ids by partition
// and offset.
func (s *soak) readTopic(ctx context.Context) (map[int32][]int64, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(s.addr))
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("soak: end offsets: %w", err)
	}
	out := map[int32][]int64{}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = make([]int64, o.Offset)
		for i := range out[o.Partition] {
			out[o.Partition][i] = -1
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	offsets := map[string]map[int32]kgo.Offset{topic: {}}
	for p := range out {
		offsets[topic][p] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.ConsumePartitions(offsets), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for len(want) > 0 {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, fmt.Errorf("soak: reading the topic: %w", err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, fmt.Errorf("soak: reading the topic: %w", ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			ids := out[r.Partition]
			if r.Offset < int64(len(ids)) {
				if id, err := parseID(string(r.Value)); err == nil {
					ids[r.Offset] = id
				}
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out, nil
}

// caughtUpSeconds is the lag, in seconds of input, under which a sample
// counts as the steady state for the memory trend.
const caughtUpSeconds = 5

// judge fits the trends and records the failures.
func (s *soak) judge() {
	c := s.cfg
	warm := c.WarmUp.Seconds()
	var rss, gor, fds, chk, lag []point
	var span float64
	for _, m := range s.res.Samples {
		s.res.MaxLag = max(s.res.MaxLag, m.Lag)
		if m.T < warm {
			continue
		}
		span = m.T - warm
		if m.CheckpointBytes > 0 {
			chk = append(chk, point{m.T, float64(m.CheckpointBytes), 0})
		}
		if m.Lag >= 0 {
			lag = append(lag, point{m.T, float64(m.Lag), 0})
		}
		if m.Up < lifeWarmUp.Seconds() {
			continue
		}
		// Memory is compared in the steady state only: while the query
		// catches up after a kill or an outage (lag above caughtUpSeconds
		// of input, or unknown) its heap holds the backlog's read-ahead,
		// bounded by the memory budget, and grows with the lag it drains
		// — not a leak. The hour run judges hundreds of such samples; the
		// 2-minute CI run, whose query catches up most of the time, few.
		if m.AnonRSS > 0 && m.Lag >= 0 && float64(m.Lag) <= s.res.Rate*caughtUpSeconds {
			rss = append(rss, point{m.T, float64(m.AnonRSS), m.Life})
		}
		if m.Goroutines >= 0 {
			gor = append(gor, point{m.T, float64(m.Goroutines), m.Life})
		}
		if m.FDs >= 0 {
			fds = append(fds, point{m.T, float64(m.FDs), m.Life})
		}
	}
	s.res.LagBound = s.res.Rate * (c.HangFor + 30*time.Second).Seconds()
	lagTol := s.res.LagBound
	if span > 0 {
		lagTol = s.res.LagBound / (span / 3600) // growth over the run ≤ one outage's backlog
	}
	s.res.Trends = []Trend{
		trend("anon_rss_bytes", rss, 0.25, 16<<20),
		trend("goroutines", gor, 0.10, 10),
		trend("fds", fds, 0.10, 5),
		trend("checkpoint_bytes", chk, 0.10, 64<<10),
		trend("lag_records", lag, 0, lagTol),
	}
	for _, t := range s.res.Trends {
		if t.Rising {
			s.fail("%s trends upward: %+.4g per hour (t = %.1f) after warm-up, above the tolerance of %.4g per hour (median %.4g)",
				t.Metric, t.SlopePerHour, t.T, t.Tolerance, t.Median)
		}
	}
	r := s.res
	if r.Lost > 0 || r.Duplicated > 0 || r.Mismatched > 0 {
		s.fail("not exactly once: %d lost, %d duplicated, %d mismatched of %d records", r.Lost, r.Duplicated, r.Mismatched, r.InTopic)
	}
	if r.AckedMissing > 0 {
		s.fail("%d records the broker acknowledged are not in the topic", r.AckedMissing)
	}
	if r.InTopic == 0 {
		s.fail("nothing was produced")
	}
}
