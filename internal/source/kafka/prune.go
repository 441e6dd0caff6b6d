package kafka

// SetRequiredColumns implements source.Pruner: only the named columns are
// built from the fetched records (the seed's query reads only value), which
// saves most of the per-record allocation.
func (s *Source) SetRequiredColumns(names []string) {
	if names == nil {
		s.need = nil
		return
	}
	need := make([]bool, len(s.schema.Fields))
	for _, n := range names {
		if i := s.schema.Index(n); i >= 0 {
			need[i] = true
		}
	}
	s.need = need
}
