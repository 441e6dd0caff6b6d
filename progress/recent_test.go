package progress

import (
	"sync"
	"testing"
)

func ids(ps []*Progress) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.BatchID
	}
	return out
}

func TestRecent(t *testing.T) {
	tests := []struct {
		cap, add  int
		wantLen   int
		wantFirst int64
	}{
		{cap: 3, add: 0, wantLen: 0},
		{cap: 3, add: 2, wantLen: 2, wantFirst: 0},
		{cap: 3, add: 3, wantLen: 3, wantFirst: 0},
		{cap: 3, add: 7, wantLen: 3, wantFirst: 4},
		{cap: 0, add: 150, wantLen: 100, wantFirst: 50}, // default keeps exactly 100
		{cap: 1, add: 5, wantLen: 1, wantFirst: 4},
	}
	for _, tt := range tests {
		r := NewRecent(tt.cap)
		for i := range tt.add {
			r.Add(&Progress{BatchID: int64(i)})
		}
		all := ids(r.All())
		if r.Len() != tt.wantLen || len(all) != tt.wantLen {
			t.Errorf("cap %d add %d: Len %d, All %d entries; want %d", tt.cap, tt.add, r.Len(), len(all), tt.wantLen)
			continue
		}
		if tt.add == 0 {
			if r.Last() != nil {
				t.Errorf("empty Recent: Last = %v", r.Last())
			}
			continue
		}
		for i, id := range all {
			if id != tt.wantFirst+int64(i) {
				t.Errorf("cap %d add %d: All = %v, want consecutive from %d", tt.cap, tt.add, all, tt.wantFirst)
				break
			}
		}
		if got := r.Last().BatchID; got != int64(tt.add-1) {
			t.Errorf("cap %d add %d: Last = %d", tt.cap, tt.add, got)
		}
	}
}

func TestRecentConcurrent(t *testing.T) {
	r := NewRecent(10)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r.Add(&Progress{BatchID: int64(g*1000 + i)})
				if all := r.All(); len(all) > 10 {
					t.Errorf("All has %d entries", len(all))
				}
				_ = r.Last()
			}
		})
	}
	wg.Wait()
	if r.Len() != 10 {
		t.Errorf("Len = %d, want 10", r.Len())
	}
}
