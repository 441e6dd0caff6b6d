package kafka

import (
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
	afterTakeHook = func() { time.Sleep(d) }
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
