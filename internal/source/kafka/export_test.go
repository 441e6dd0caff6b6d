package kafka

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
