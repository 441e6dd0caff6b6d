package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// Limits returns the current admission settings.
func (q *Query) Limits() admission.Limits {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limits
}

// SetLimits changes limits from the next batch on and returns the new ones.
func (q *Query) SetLimits(u admission.LimitsUpdate) (admission.Limits, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	nl, err := q.limits.Apply(u, q.cfg.Trigger.Kind)
	if err != nil {
		return q.limits, err
	}
	old := q.limits
	q.limits = nl
	select {
	case q.limitsChanged <- struct{}{}:
	default:
	}
	q.log.Info("limits changed; applied from the next batch", "old", fmt.Sprintf("%+v", old), "new", fmt.Sprintf("%+v", nl))
	return nl, nil
}

// currentTrigger is the trigger with the current interval.
func (q *Query) currentTrigger() trigger.Trigger {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.cfg.Trigger
	if t.Kind == trigger.Default || t.Kind == trigger.ProcessingTime {
		if q.limits.TriggerInterval > 0 {
			t = trigger.Trigger{Kind: trigger.ProcessingTime, Interval: q.limits.TriggerInterval}
		} else {
			t = trigger.Trigger{Kind: trigger.Default}
		}
	}
	return t
}

// plan asks the source what is available and the planner how much of it
// the next batch takes. It returns the batch's end (start when there is
// nothing to run), the latest offset, the decision and how long the
// source took to answer (progress latestOffset; the rest of planning is
// queryPlanning).
func (q *Query) plan(ctx context.Context, once bool) (end, latest source.Offset, d admission.Decision, asked time.Duration, listedAt time.Time, err error) {
	stateReserve, perRecord := q.stateReservation()
	in := admission.Input{BatchID: q.nextBatch, Once: once, Limits: q.Limits(), History: q.history,
		Reserved: q.sinkReserve + stateReserve, ExtraBytesPerRecord: perRecord}
	if q.cfg.LagSeconds != nil && in.Limits.Mode == admission.ModeAdaptive {
		in.LagSeconds = q.cfg.LagSeconds()
	}
	switch src := q.cfg.Source.(type) {
	case source.Partitioned:
		t0 := q.cfg.Clock.Now()
		var from, lt partition.Offsets
		cp, capped := src.(source.CappedPlanner)
		var need int64
		if capped {
			need = q.cappedNeed(in.Limits, once)
		}
		fp, fetched := src.(source.FetchedPlanner)
		if need > 0 {
			// A batch capped by maxOffsetsPerTrigger may be planned from
			// latest offsets listed while the previous batch ran.
			from, lt, listedAt, err = cp.AvailableCapped(ctx, q.start, need)
		} else if fetched && q.fetchedPlan(in.Limits, once) {
			// An uncapped batch of the default trigger may be planned
			// from the latest offsets the source's fetches brought.
			from, lt, listedAt, err = fp.AvailableFetched(ctx, q.start)
		} else {
			from, lt, err = src.Available(ctx, q.start)
		}
		asked = q.cfg.Clock.Now().Sub(t0)
		if err != nil {
			return nil, nil, d, asked, listedAt, err
		}
		in.Start, in.Latest, in.Now = from, lt, q.cfg.Clock.Now()
		if _, grouped := source.AsGroup(src); grouped {
			// Group mode: the batch starts where the group says (the
			// owned partitions' committed offsets), not where this
			// member's last batch ended.
			q.start = src.PartitionOffset(from)
		}
		d = admission.Plan(in)
		if d.Released {
			q.history.LastRelease = in.Now
		}
		if p, ok := src.(source.Prefetcher); ok {
			p.SetPrefetchLimit(d.Limit) // read ahead no more than a batch may take
		}
		return src.PartitionOffset(d.End), src.PartitionOffset(lt), d, asked, listedAt, nil
	case source.Limited:
		in.Now = q.cfg.Clock.Now()
		d = admission.Plan(in)
		t0 := q.cfg.Clock.Now()
		end, latest, err = src.Latest(ctx, q.start, d.ReadLimit)
		asked = q.cfg.Clock.Now().Sub(t0)
		if err == nil && d.ReadLimit != (source.ReadLimit{}) && end.JSON() != latest.JSON() {
			d.Bound = true // the source stopped short of what it has: the limit did
		}
		return end, latest, d, asked, listedAt, err
	}
	return nil, nil, d, 0, listedAt, fmt.Errorf("source %s reports neither partition offsets nor its own batch ends", q.cfg.Source.Description())
}

// cappedNeed is how many records past the start a capped source must know
// of to plan the next batch without asking the brokers
// (source.CappedPlanner): maxOffsetsPerTrigger (or minOffsetsPerTrigger
// if larger), so that a fresher listing could not make the batch larger
// or admit it sooner. 0 — always ask — for an uncapped batch, for
// triggers other than the default one (Once ignores the limits,
// availableNow's snapshot is the latest, and a processing-time trigger
// waits between batches: a listing from the previous batch would be an
// interval old) and in group mode.
func (q *Query) cappedNeed(l admission.Limits, once bool) int64 {
	if once || l.MaxOffsetsPerTrigger <= 0 || q.currentTrigger().Kind != trigger.Default {
		return 0
	}
	if _, grouped := source.AsGroup(q.cfg.Source); grouped {
		return 0
	}
	return max(l.MaxOffsetsPerTrigger, l.MinOffsetsPerTrigger)
}

// fetchedPlan reports whether an uncapped batch may be planned from the
// latest offsets the source's fetches brought (source.FetchedPlanner):
// under the default trigger only, as for cappedNeed — Once ignores the
// limits and takes what the brokers list, availableNow's snapshot is the
// latest, a processing-time trigger waits between batches, and a group
// member starts where the group says — and without minOffsetsPerTrigger,
// whose count a plan checks against the brokers' latest offsets.
func (q *Query) fetchedPlan(l admission.Limits, once bool) bool {
	if once || l.MinOffsetsPerTrigger > 0 || q.currentTrigger().Kind != trigger.Default {
		return false
	}
	_, grouped := source.AsGroup(q.cfg.Source)
	return !grouped
}

// reportAtNextPlan reports whether a batch whose commits/N is durable
// may be reported by the next trigger, with that plan's look at the
// latest offsets as the lag it left (finishPending), instead of a
// latest-offset sample of its own taken during the commit: when the
// source plans from the latest offsets its fetches brought
// (source.FetchedPlanner), under the default trigger, whose next plan
// follows at once, outside group mode. The sample was a ListOffsets
// request (with its Metadata) per batch that the report, and so the
// next batch, waited for.
func (q *Query) reportAtNextPlan() bool {
	if _, ok := q.cfg.Source.(source.FetchedPlanner); !ok || q.currentTrigger().Kind != trigger.Default {
		return false
	}
	_, grouped := source.AsGroup(q.cfg.Source)
	return !grouped
}

// remember adds a finished batch to admission's history.
func (q *Query) remember(info *BatchInfo) {
	bytes := info.InputBytes
	if o, ok := q.cfg.Source.(source.RecordOverhead); ok {
		bytes += info.NumInputRows * o.MemoryPerRecord()
	}
	q.history.Add(admission.BatchStat{
		Rows:       info.NumInputRows,
		Bytes:      bytes,
		Processing: info.Durations["addBatch"],
		Overhead:   info.Durations["triggerExecution"] - info.Durations["addBatch"],
		Limit:      info.Admission.Limit,
		First:      q.batchesDone.Load() == 0,
	})
}
