package kafka

import (
	"context"
	"maps"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

// Latest offsets listed one batch ahead (source.CappedPlanner).
//
// A batch capped by maxOffsetsPerTrigger does not need the brokers' latest
// offsets of the moment it is planned: any listing that shows at least the
// cap's worth of records past the batch's start yields a batch of the
// cap's records. So while batches are capped, the ListOffsets round trip
// for batch N+1's plan is sent when batch N is planned and runs while
// batch N reads, transforms and commits; planning batch N+1 takes its
// answer (waiting for it only if it is still on its way) and sends the
// next one. The round trip leaves the batches' critical path; the plan's
// latest offsets (progress latestOffset, the lag reference) are then as
// old as one batch, and their time (listedAt) says so.
//
// The listing ahead is used only when it is at most aheadMaxAge old and
// shows nothing Available would act on: the same partitions as the batch's start (none new, none gone),
// none behind its start (a recreated topic), no vanished partition kept
// (gone) and no availableNow snapshot or consumer group. Anything else —
// and a listing that failed — falls back to Available, which lists again
// with its retries and checks.
//
// Most capped plans need no listing at all: every fetch response carries
// its partitions' high watermarks (the broker's latest offsets when it
// answered), and when those marks already show the cap's worth of records
// past the start, a listing could not change the batch (fromFetched). So
// a capped plan takes, in order: a listing sent ahead that has its answer
// already; the fetched marks, within aheadMaxAge of a listing that showed
// the same partitions (Available, or a listing ahead that was used), no
// mark below the batch's start; a listing ahead still on its way (waited
// for); Available. While the fetched marks plan, a listing is sent ahead
// once the last check is half of aheadMaxAge old, so partitions added or
// gone are still seen within aheadMaxAge, and off the batches' path. On a
// loaded 2-core machine the listing ahead of each capped batch (a Metadata
// and a ListOffsets round trip, on the cores the batch reads with) was
// not back by the next plan: planning waited 0.7 ms a batch on average.

// aheadMaxAge is the oldest listing sent ahead a plan uses: batches that
// follow each other at once use listings a batch old; after a longer
// batch (or a wait) the plan lists again.
const aheadMaxAge = time.Second

// aheadListing is one latest-offsets listing sent ahead of the plan that
// will use it.
type aheadListing struct {
	at     time.Time // when it was sent
	cancel context.CancelFunc
	done   chan struct{}
	latest Offsets
	err    error
}

// AvailableCapped implements source.CappedPlanner. It is called by the
// query's loop only (one plan at a time), like Available.
func (s *Source) AvailableCapped(ctx context.Context, startOff source.Offset, need int64) (from, latest partition.Offsets, listedAt time.Time, err error) {
	a := s.ahead
	ahead := need > 0 && s.grp == nil && s.availableNow == nil
	if ahead {
		start, _ := startOff.(Offsets)
		answered := a != nil && a.answered()
		if answered {
			if s.unchanged(a, start) {
				s.noteChecked(a.at, partition.Offsets(a.latest))
			} else {
				s.checkedAt = time.Time{} // something changed: Available looks
			}
		}
		if from, latest, at, ok := s.fromFetched(start, need); ok {
			if answered {
				s.ahead = nil // taken as the check above
			}
			if s.ahead == nil && time.Since(s.checkedAt) >= aheadMaxAge/2 {
				s.listAhead() // the next check, off the batches' path
			}
			return from, latest, at, nil
		}
		if a != nil {
			s.ahead = nil
			if from, latest, ok := s.fromAhead(ctx, a, startOff, need); ok {
				s.noteChecked(a.at, latest)
				s.listAhead()
				return from, latest, a.at, nil
			}
		}
	} else {
		s.ahead = nil
	}
	if a != nil {
		a.cancel()
	}
	listedAt = time.Now()
	from, latest, err = s.Available(ctx, startOff)
	if err == nil && ahead {
		s.listAhead()
	}
	return from, latest, listedAt, err
}

// AvailableFetched implements source.FetchedPlanner: an uncapped batch of
// the default trigger planned from the high watermarks the fetch responses
// carried (fromFetched), as a capped plan may (see the comment at the top
// of this file), so the plan waits
// for no ListOffsets round trip — on a loaded broker that request queues
// behind produce and fetch requests (at half the latency bench's capacity,
// 3 ms a batch on average, more in a burst) — and the batch ends at
// records already fetched or on their way, not at ones a fetch has still
// to ask for. A listing is sent ahead once the last check is half of
// aheadMaxAge old, so partitions added or gone are still seen within
// aheadMaxAge. Marks that show no record past start answer too: the
// query is caught up and waits for data (WaitForData), which the fetches
// still running end — the marks are theirs. Without a listing within
// aheadMaxAge, or with a partition of start no response carried yet, it
// calls Available, as before (an idle query's plans, each after a wait
// of seconds, still ask the brokers and check the partitions). Called by
// the query's loop only, like Available.
func (s *Source) AvailableFetched(ctx context.Context, startOff source.Offset) (from, latest partition.Offsets, listedAt time.Time, err error) {
	if s.grp == nil && s.availableNow == nil {
		start, _ := startOff.(Offsets)
		if a := s.ahead; a != nil && a.answered() {
			if s.unchanged(a, start) {
				s.noteChecked(a.at, partition.Offsets(a.latest))
			} else {
				s.checkedAt = time.Time{} // something changed: Available looks
			}
			s.ahead = nil
		}
		if from, latest, at, ok := s.fromFetched(start, 0); ok {
			if s.ahead == nil && time.Since(s.checkedAt) >= aheadMaxAge/2 {
				s.listAhead() // the next check, off the batches' path
			}
			return from, latest, at, nil
		}
	}
	if a := s.ahead; a != nil {
		a.cancel()
		s.ahead = nil
	}
	listedAt = time.Now()
	from, latest, err = s.Available(ctx, startOff)
	return from, latest, listedAt, err
}

// noteChecked records a listing, at, that showed the partitions of latest
// with nothing for Available to act on (fromFetched).
func (s *Source) noteChecked(at time.Time, latest partition.Offsets) {
	set := make(map[partition.ID]bool, len(latest))
	for tp := range latest {
		set[tp] = true
	}
	s.checkedAt, s.checkedSet = at, set
}

// fromFetched answers a capped plan from the high watermarks the fetch
// responses carried, if it may (see the comment at the top of this file).
// listedAt is when the oldest of the marks it used arrived.
func (s *Source) fromFetched(start Offsets, need int64) (from, latest partition.Offsets, listedAt time.Time, ok bool) {
	if s.checkedAt.IsZero() || time.Since(s.checkedAt) > aheadMaxAge || len(s.gone) > 0 || len(start) == 0 || len(start) != len(s.checkedSet) {
		return nil, nil, time.Time{}, false
	}
	latest = make(partition.Offsets, len(start))
	var backlog int64
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for tp, off := range start {
		at, seen := s.hwmAt[tp]
		if !s.checkedSet[tp] || !seen || s.hwm[tp] < off {
			return nil, nil, time.Time{}, false
		}
		latest[tp] = s.hwm[tp]
		backlog += s.hwm[tp] - off
		if listedAt.IsZero() || at.Before(listedAt) {
			listedAt = at
		}
	}
	if backlog < need {
		return nil, nil, time.Time{}, false
	}
	return partition.Offsets(maps.Clone(start)), latest, listedAt, true
}

// fromAhead answers a capped plan from a listing sent ahead, if it may:
// see the comment at the top of this file.
func (s *Source) fromAhead(ctx context.Context, a *aheadListing, startOff source.Offset, need int64) (from, latest partition.Offsets, ok bool) {
	select {
	case <-a.done:
	case <-ctx.Done():
		a.cancel()
		return nil, nil, false
	}
	start, _ := startOff.(Offsets)
	if !s.unchanged(a, start) {
		return nil, nil, false
	}
	var backlog int64
	for tp, off := range start {
		backlog += a.latest[tp] - off
	}
	if backlog < need {
		return nil, nil, false
	}
	return partition.Offsets(maps.Clone(start)), partition.Offsets(maps.Clone(a.latest)), true
}

// unchanged reports whether the answered listing a shows nothing
// Available would act on for a batch from start: it succeeded, is at most
// aheadMaxAge old, and lists the partitions of start, none behind it, with
// no vanished partition kept.
func (s *Source) unchanged(a *aheadListing, start Offsets) bool {
	if a.err != nil || time.Since(a.at) > aheadMaxAge || len(s.gone) > 0 || len(start) == 0 || len(a.latest) != len(start) {
		return false
	}
	for tp, off := range start {
		if l, listed := a.latest[tp]; !listed || l < off {
			return false
		}
	}
	return true
}

// answered reports whether the listing has its answer (or failed).
func (a *aheadListing) answered() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// listAhead sends the next plan's latest-offsets listing. The listing is
// the source's: Close cancels it and waits for it.
func (s *Source) listAhead() {
	ctx, cancel := context.WithCancel(context.Background())
	a := &aheadListing{at: time.Now(), cancel: cancel, done: make(chan struct{})}
	s.ahead = a
	s.aheadWG.Add(1)
	go func() {
		defer s.aheadWG.Done()
		defer close(a.done)
		defer cancel()
		a.latest, a.err = s.listOffsetsOnce(ctx, true, -1)
	}()
}

// ListedSince implements source.CappedPlanner: the listing sent ahead,
// or else the fetch responses' marks of the partitions last checked when
// every one of them arrived at or after t.
func (s *Source) ListedSince(t time.Time) (latest partition.Offsets, at time.Time, ok bool) {
	if a := s.ahead; a != nil && !a.at.Before(t) && a.answered() && a.err == nil {
		return partition.Offsets(maps.Clone(a.latest)), a.at, true
	}
	if len(s.checkedSet) == 0 || s.grp != nil || s.availableNow != nil {
		return nil, time.Time{}, false
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	latest = make(partition.Offsets, len(s.checkedSet))
	for tp := range s.checkedSet {
		got, seen := s.hwmAt[tp]
		if !seen || got.Before(t) {
			return nil, time.Time{}, false
		}
		latest[tp] = s.hwm[tp]
		if at.IsZero() || got.Before(at) {
			at = got
		}
	}
	return latest, at, true
}

// stopAhead cancels a listing sent ahead and waits for every one to end.
func (s *Source) stopAhead() {
	if a := s.ahead; a != nil {
		a.cancel()
		s.ahead = nil
	}
	s.aheadWG.Wait()
}
