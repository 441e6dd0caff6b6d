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
