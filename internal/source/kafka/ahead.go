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
	s.ahead = nil
	ahead := need > 0 && s.grp == nil && s.availableNow == nil
	if ahead && a != nil {
		if from, latest, ok := s.fromAhead(ctx, a, startOff, need); ok {
			s.listAhead()
			return from, latest, a.at, nil
		}
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
	if a.err != nil || time.Since(a.at) > aheadMaxAge || len(s.gone) > 0 || len(start) == 0 || len(a.latest) != len(start) {
		return nil, nil, false
	}
	var backlog int64
	for tp, off := range start {
		l, listed := a.latest[tp]
		if !listed || l < off {
			return nil, nil, false
		}
		backlog += l - off
	}
	if backlog < need {
		return nil, nil, false
	}
	return partition.Offsets(maps.Clone(start)), partition.Offsets(maps.Clone(a.latest)), true
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

// ListedSince implements source.CappedPlanner.
func (s *Source) ListedSince(t time.Time) (latest partition.Offsets, at time.Time, ok bool) {
	a := s.ahead
	if a == nil || a.at.Before(t) {
		return nil, time.Time{}, false
	}
	select {
	case <-a.done:
	default:
		return nil, time.Time{}, false
	}
	if a.err != nil {
		return nil, time.Time{}, false
	}
	return partition.Offsets(maps.Clone(a.latest)), a.at, true
}

// stopAhead cancels a listing sent ahead and waits for every one to end.
func (s *Source) stopAhead() {
	if a := s.ahead; a != nil {
		a.cancel()
		s.ahead = nil
	}
	s.aheadWG.Wait()
}
