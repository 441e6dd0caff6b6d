package partition

import (
	"fmt"
	"testing"
)

func TestIDOrderAndString(t *testing.T) {
	o := Offsets{{"b", 0}: 1, {"a", 10}: 1, {"a", 2}: 1}
	if got := fmt.Sprint(o.Sorted()); got != "[a-2 a-10 b-0]" {
		t.Fatalf("Sorted = %s, want [a-2 a-10 b-0] (topic, then partition number)", got)
	}
}

func TestTotal(t *testing.T) {
	from := Offsets{{"t", 0}: 10, {"t", 1}: 50}
	to := Offsets{{"t", 0}: 25, {"t", 1}: 40, {"t", 2}: 7}
	// 15 + 0 (moved back: not negative) + 7 (missing from from: counts from 0)
	if got := Total(from, to); got != 22 {
		t.Fatalf("Total = %d, want 22", got)
	}
}
