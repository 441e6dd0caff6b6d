// Package groupstatus describes a Kafka consumer group the way an operator
// needs it: its members (member id, client id, host) and the partitions
// each owns, and per partition the committed and latest offsets, the lag in
// records and in seconds, and a Burrow-style status (OK, WARN, STALL, STOP,
// REWIND, ERR — package lag's vocabulary and evaluator) for the partition
// and the group. It is what `sluice status --group` prints, for a group of
// `sluice run` members (source option sluice.group) or any other consumer
// group, like `kafka-consumer-groups --describe --members` plus lag in time
// and a verdict.
//
// Everything comes from the group protocol through franz-go's kadm:
// DescribeGroups for members and assignments, OffsetFetch for committed
// offsets, ListOffsets for the log start and end. Nothing here joins the
// group or commits.
//
// Lag in seconds is the age of the oldest record the group has not
// consumed: now minus the timestamp of the record at the committed offset
// (the first record at or after it; for a partition with no commit, the
// first record of the log), read with a plain fetch. This is direct
// evidence of how old the backlog is, but it trusts the producer's clock
// (CreateTime) or the broker's (LogAppendTime). When several snapshots are
// taken (Options.Samples > 1) and the committed offset lies between two
// observed log-end offsets, the time is interpolated from them instead
// (lag.TimeLag; kafka-lag-exporter's method), which needs no timestamps.
//
// The status needs a history, as Burrow's does: each snapshot is one
// sample of (committed offset, log end), and lag.Evaluate judges the
// window. One snapshot can only say OK (caught up, or no trend yet), ERR
// (no commit) or STOP (records behind and no member owns the partition);
// STALL (the committed offset did not move while behind) and WARN (lag
// growing) need Samples ≥ 2.
package groupstatus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/lag"
	"github.com/sluice-stream/sluice/internal/partition"
)

// Options tune Describe.
type Options struct {
	// Samples is how many snapshots of the group are taken, Interval
	// apart; < 1 means 1.
	Samples int
	// Interval is the time between snapshots; <= 0 means one second.
	Interval time.Duration
	// ClientOpts are the options of the client that fetches the records
	// at the committed offsets (seed brokers and security, as for the
	// admin client). Without them no record is fetched and lag seconds
	// come from interpolation only.
	ClientOpts []kgo.Opt
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Member is one member of the group.
type Member struct {
	MemberID   string           `json:"memberId"`
	InstanceID string           `json:"instanceId,omitempty"`
	ClientID   string           `json:"clientId"`
	Host       string           `json:"host"`
	Partitions []TopicPartition `json:"partitions"`
}

// TopicPartition names a partition a member owns.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// Partition is one partition's row.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// MemberID, ClientID and Host name the member that owns the
	// partition; empty when no member does.
	MemberID string `json:"memberId,omitempty"`
	ClientID string `json:"clientId,omitempty"`
	Host     string `json:"host,omitempty"`
	// Committed is the group's committed offset (the next offset to
	// read); nil when the group has not committed to this partition.
	Committed *int64 `json:"committedOffset"`
	// Latest is the log end offset (high watermark); nil when unknown.
	Latest *int64 `json:"latestOffset"`
	// Lag is the records behind: Latest − Committed, or Latest − log
	// start without a commit; nil when unknown.
	Lag *int64 `json:"lagRecords"`
	// LagSeconds is how old the oldest unconsumed record is; 0 when
	// caught up, nil when unknown.
	LagSeconds *float64 `json:"lagSeconds"`
	// LagMethod says how LagSeconds was obtained (lag.Method).
	LagMethod lag.Method `json:"lagSecondsMethod"`
	lag.Health
}

// Report is a group's status.
type Report struct {
	Group string `json:"group"`
	// State is the group protocol's state: Stable, PreparingRebalance,
	// CompletingRebalance, Empty, Dead.
	State        string `json:"state"`
	ProtocolType string `json:"protocolType"`
	// Protocol is the assignor in use, e.g. cooperative-sticky.
	Protocol    string      `json:"protocol"`
	Coordinator int32       `json:"coordinator"`
	Members     []Member    `json:"members"`
	Partitions  []Partition `json:"partitions"`
	// Health is the group's: the worst partition's status (lag.QueryHealth).
	Health lag.Health `json:"health"`
	// LagRecords is the total lag over partitions with a known lag.
	LagRecords int64 `json:"lagRecords"`
	// MaxLagSeconds is the largest known LagSeconds; nil when none is.
	MaxLagSeconds *float64 `json:"maxLagSeconds"`
	// Samples and Interval are the snapshots taken.
	Samples  int       `json:"samples"`
	Interval string    `json:"interval"`
	At       time.Time `json:"at"`
}

// ErrNoGroup is returned for a group that has no members and no committed
// offsets: the broker knows nothing of it (a misspelt name, or a group
// whose offsets expired).
var ErrNoGroup = errors.New("group not found: no members and no committed offsets")

// snapshot is one observation of the group.
type snapshot struct {
	at  time.Time
	lag kadm.DescribedGroupLag
}

// Describe takes opts.Samples snapshots of group through adm and reports
// the last one with statuses judged over all of them.
func Describe(ctx context.Context, adm *kadm.Client, group string, opts Options) (*Report, error) {
	if opts.Samples < 1 {
		opts.Samples = 1
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var snaps []snapshot
	for i := range opts.Samples {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(opts.Interval):
			}
		}
		lags, err := adm.Lag(ctx, group)
		if err != nil {
			return nil, fmt.Errorf("describe group %q: %w", group, err)
		}
		l, ok := lags[group]
		if !ok {
			return nil, fmt.Errorf("describe group %q: %w", group, ErrNoGroup)
		}
		if err := l.Error(); errors.Is(err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("describe group %q: %w (%w)", group, ErrNoGroup, err)
		} else if err != nil {
			return nil, fmt.Errorf("describe group %q: %w", group, err)
		}
		snaps = append(snaps, snapshot{at: now(), lag: l})
	}
	last := snaps[len(snaps)-1].lag
	if len(last.Members) == 0 && len(last.Lag) == 0 {
		return nil, fmt.Errorf("group %q (state %s): %w", group, last.State, ErrNoGroup)
	}
	rep := &Report{
		Group: group, State: last.State, ProtocolType: last.ProtocolType, Protocol: last.Protocol,
		Coordinator: last.Coordinator.NodeID, Samples: len(snaps), Interval: opts.Interval.String(),
		At: snaps[len(snaps)-1].at,
	}
	for _, m := range last.Members {
		mem := Member{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Partitions: []TopicPartition{}}
		if m.InstanceID != nil {
			mem.InstanceID = *m.InstanceID
		}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				for _, p := range t.Partitions {
					mem.Partitions = append(mem.Partitions, TopicPartition{Topic: t.Topic, Partition: p})
				}
			}
		}
		slices.SortFunc(mem.Partitions, func(a, b TopicPartition) int {
			return partition.ID(a).Compare(partition.ID(b))
		})
		rep.Members = append(rep.Members, mem)
	}
	if rep.Members == nil {
		rep.Members = []Member{}
	}

	var rows []Partition
	needTS := map[partition.ID]int64{}
	for _, ps := range last.Lag {
		for _, gl := range ps {
			row := Partition{Topic: gl.Topic, Partition: gl.Partition, LagMethod: lag.MethodUnknown}
			if gl.Member != nil {
				row.MemberID, row.ClientID, row.Host = gl.Member.MemberID, gl.Member.ClientID, gl.Member.ClientHost
			}
			if gl.Commit.At >= 0 {
				row.Committed = ptr(gl.Commit.At)
			}
			if gl.End.Err == nil {
				row.Latest = ptr(gl.End.Offset)
			}
			if gl.Err == nil && gl.Lag >= 0 {
				row.Lag = ptr(gl.Lag)
			}
			if row.Lag != nil && *row.Lag > 0 {
				from := gl.Commit.At
				if from < 0 && gl.Start.Err == nil {
					from = gl.Start.Offset
				}
				if from >= 0 {
					needTS[partition.ID{Topic: gl.Topic, Partition: gl.Partition}] = from
				}
			}
			rows = append(rows, row)
		}
	}
	slices.SortFunc(rows, func(a, b Partition) int { return a.id().Compare(b.id()) })

	var stamps map[partition.ID]time.Time
	if len(needTS) > 0 && len(opts.ClientOpts) > 0 {
		stamps = RecordTimes(ctx, opts.ClientOpts, needTS)
	}
	at := rep.At
	var parts []lag.PartitionHealth
	for i := range rows {
		r := &rows[i]
		id := r.id()
		r.LagSeconds, r.LagMethod = lagSeconds(id, r, snaps, stamps[id], at)
		r.Health = judge(id, r, snaps, at)
		parts = append(parts, lag.PartitionHealth{Partition: id, Health: r.Health})
		if r.Lag != nil {
			rep.LagRecords += *r.Lag
		}
		if r.LagSeconds != nil && (rep.MaxLagSeconds == nil || *r.LagSeconds > *rep.MaxLagSeconds) {
			rep.MaxLagSeconds = ptr(*r.LagSeconds)
		}
	}
	if rows == nil {
		rows = []Partition{}
	}
	rep.Partitions = rows
	rep.Health = lag.QueryHealth(parts)
	if len(parts) == 0 {
		rep.Health.Reason = "the group has no assigned or committed partitions"
	}
	return rep, nil
}

func (p *Partition) id() partition.ID { return partition.ID{Topic: p.Topic, Partition: p.Partition} }

func ptr[T any](v T) *T { return &v }

// lagSeconds estimates how old the oldest unconsumed record of id is:
// interpolated from the snapshots' log-end offsets when the committed
// offset lies between two of them, else the timestamp of the record at the
// committed offset.
func lagSeconds(id partition.ID, r *Partition, snaps []snapshot, recordTS time.Time, now time.Time) (*float64, lag.Method) {
	if r.Lag == nil {
		return nil, lag.MethodUnknown
	}
	if *r.Lag == 0 {
		return ptr(0.0), lag.MethodCaughtUp
	}
	consumed := *r.Latest - *r.Lag
	var points []lag.Point
	for _, s := range snaps {
		gl, ok := s.lag.Lag.Lookup(id.Topic, id.Partition)
		if !ok || gl.End.Err != nil {
			continue
		}
		if n := len(points); n > 0 && gl.End.Offset < points[n-1].Offset {
			points = points[:0] // the log was truncated or recreated
		}
		points = append(points, lag.Point{Offset: gl.End.Offset, Time: s.at})
	}
	est := lag.TimeLag(points, consumed, now, lag.FallbackTimestamp(recordTS), lag.PreferRecordTimestamp())
	if math.IsNaN(est.Seconds) {
		return nil, lag.MethodUnknown
	}
	return ptr(math.Round(est.Seconds*1000) / 1000), est.Method
}

// judge evaluates one partition over the snapshots with lag.Evaluate. A
// snapshot is a sample; its time is when its committed offset was first
// seen, so that an offset that stays put ages (STALL, STOP) as a batch
// commit would in the engine. No commit is ERR; records behind with no
// member owning the partition is STOP.
func judge(id partition.ID, r *Partition, snaps []snapshot, now time.Time) lag.Health {
	if r.Lag == nil {
		h := lag.Health{Status: lag.StatusErr, Reason: "lag unknown"}
		if gl, ok := snaps[len(snaps)-1].lag.Lag.Lookup(id.Topic, id.Partition); ok && gl.Err != nil {
			h.Reason = "lag unknown: " + gl.Err.Error()
		}
		return h
	}
	if r.MemberID == "" && *r.Lag > 0 {
		return lag.Health{Status: lag.StatusStop, Lag: *r.Lag, Samples: len(snaps), Complete: 1,
			Reason: fmt.Sprintf("no member owns the partition while %d records behind", *r.Lag)}
	}
	if r.Committed == nil {
		if *r.Lag == 0 {
			return lag.Health{Status: lag.StatusOK, Reason: "no committed offset and nothing to read", Samples: len(snaps), Complete: 1}
		}
		return lag.Health{Status: lag.StatusErr, Lag: *r.Lag,
			Reason: fmt.Sprintf("no committed offset yet (%d records from the log start); the owner reads from its reset policy", *r.Lag)}
	}
	var window []lag.Sample
	for i, s := range snaps {
		gl, ok := s.lag.Lag.Lookup(id.Topic, id.Partition)
		if !ok || gl.Commit.At < 0 || gl.End.Err != nil {
			continue
		}
		smp := lag.Sample{Batch: int64(i), Time: s.at, Offset: gl.Commit.At, Latest: gl.End.Offset, Head: gl.End.Offset}
		if n := len(window); n > 0 && window[n-1].Offset == smp.Offset {
			smp.Time = window[n-1].Time // not committed again: the commit keeps its age
		}
		window = append(window, smp)
	}
	h := lag.Evaluate(window, now, lag.Config{Window: len(snaps)})
	if len(window) == 1 && h.Status == lag.StatusOK && h.Lag > 0 {
		h.Reason = fmt.Sprintf("lag %d records; one snapshot, no trend (take --samples 2 or more to judge)", h.Lag)
	}
	return h
}

// RecordTimes reads, for each partition, the first record at or after the
// given offset and returns its timestamp. Partitions that yield no record
// before ctx ends (or within ten seconds) are missing from the result. An
// offset below the log start reads from the log start.
func RecordTimes(ctx context.Context, clientOpts []kgo.Opt, at map[partition.ID]int64) map[partition.ID]time.Time {
	out := map[partition.ID]time.Time{}
	if len(at) == 0 {
		return out
	}
	offs := map[string]map[int32]kgo.Offset{}
	for id, o := range at {
		if offs[id.Topic] == nil {
			offs[id.Topic] = map[int32]kgo.Offset{}
		}
		offs[id.Topic][id.Partition] = kgo.NewOffset().At(o)
	}
	opts := append(slices.Clone(clientOpts),
		kgo.ConsumePartitions(offs),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(64<<10),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return out
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(out) < len(at) && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		var done map[string][]int32
		fetches.EachRecord(func(r *kgo.Record) {
			id := partition.ID{Topic: r.Topic, Partition: r.Partition}
			if _, seen := out[id]; seen {
				return
			}
			out[id] = r.Timestamp
			if done == nil {
				done = map[string][]int32{}
			}
			done[r.Topic] = append(done[r.Topic], r.Partition)
		})
		if done != nil {
			cl.PauseFetchPartitions(done)
		}
	}
	return out
}
