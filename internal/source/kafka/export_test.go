package kafka

import (
	"slices"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
)

// CarryRecords and CarryBytes expose the prefetch's size to the black-box
// tests.
func (s *Source) CarryRecords() int64 {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.carryTotalRecs
}

func (s *Source) CarryBytes() int64 {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.carryTotalBytes
}

// FetchedRecords counts the records the client fetched (read from fetch
// responses, whether or not a batch took them).
func (s *Source) FetchedRecords() int64 { return s.wireRecs.Load() }

// CarryOf is the number of records the carry holds for one partition.
func (s *Source) CarryOf(topic string, p int32) int {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return len(s.carry[partition.ID{Topic: topic, Partition: p}])
}

// SlowRouting makes the fetch goroutine wait d between taking a fetch
// response's records and routing them, as a busy machine may; it returns
// the undo.
func SlowRouting(d time.Duration) func() {
	afterTakeHook = func(*Source, partition.ID, bool) { time.Sleep(d) }
	return func() { afterTakeHook = nil }
}

// AwaitAhead waits for the latest-offsets listing sent for the next capped
// plan, if any, and reports whether one was sent.
func (s *Source) AwaitAhead() bool {
	a := s.ahead
	if a == nil {
		return false
	}
	<-a.done
	return true
}

// WatchHeldPauses counts, over the responses the fetch goroutine routes
// from now on, those after whose routing the partition of the response's
// last record is paused, and of those, the ones where the client had it
// paused already when the routing began (after the whole response was
// taken: before the client's next request could be built). It returns the
// counts' reader and the undo; it replaces SlowRouting's hook, sleeping d.
func WatchHeldPauses(d time.Duration) (counts func() (after, before int), undo func()) {
	var mu sync.Mutex
	var nAfter, nBefore int
	var pausedBefore bool
	afterTakeHook = func(s *Source, tail partition.ID, ok bool) {
		p := false
		if ok {
			p = slices.Contains(s.cl.PauseFetchPartitions(nil)[tail.Topic], tail.Partition)
		}
		mu.Lock()
		pausedBefore = p
		mu.Unlock()
		time.Sleep(d)
	}
	afterRouteHook = func(s *Source, tail partition.ID, ok bool) {
		if !ok || !s.paused[tail] {
			return
		}
		mu.Lock()
		nAfter++
		if pausedBefore {
			nBefore++
		}
		mu.Unlock()
	}
	return func() (int, int) {
			mu.Lock()
			defer mu.Unlock()
			return nAfter, nBefore
		}, func() {
			afterTakeHook, afterRouteHook = nil, nil
		}
}
