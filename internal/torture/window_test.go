package torture

import (
	"encoding/json"
	"testing"
)

// rowsOf renders windows as the pipeline's JSON values.
func rowsOf(t *testing.T, ws ...windowRow) []string {
	t.Helper()
	var out []string
	for _, w := range ws {
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestExpectedWindows(t *testing.T) {
	// 1000 records at 100 ms: event times 0 … 99.9 s after the base; the
	// final watermark is 69.9 s, so the windows [0,10) … [50,60) are
	// closed (60 ≤ 69.9) and [60,70) is not (70 > 69.9).
	want := expectedWindows(1000)
	if len(want) != 6*windowKeys {
		t.Fatalf("%d windows, want %d", len(want), 6*windowKeys)
	}
	base := windowBase.Unix()
	w := want[windowKey{base + 50, "k3"}]
	// Records 500…599 fall in [50,60); k3 has the ids ≡ 3 (mod 5).
	var ids int64
	for i := 503; i < 600; i += 5 {
		ids += int64(i)
	}
	if w.N != 20 || w.IDs != ids || w.End != base+60 {
		t.Fatalf("window [50,60) k3 = %+v, want 20 records with ids summing to %d", w, ids)
	}
	if _, ok := want[windowKey{base + 60, "k0"}]; ok {
		t.Fatal("window [60,70) is expected although the watermark has not passed its end")
	}
}

func TestCheckWindows(t *testing.T) {
	want := expectedWindows(1000)
	var all []windowRow
	for _, w := range want {
		all = append(all, w)
	}
	base := windowBase.Unix()
	open := windowRow{Start: base + 60, End: base + 70, K: "k0", N: 20, IDs: 1}
	wrong := want[windowKey{base, "k1"}]
	wrong.N--
	cases := []struct {
		name string
		rows []windowRow
		res  Result
		ok   bool
	}{
		{"exact", all, Result{Windows: 30, Output: 30, Distinct: 30}, true},
		{"lost", all[1:], Result{Windows: 30, Output: 29, Distinct: 29, Lost: 1}, false},
		{"duplicated", append([]windowRow{all[0]}, all...), Result{Windows: 30, Output: 31, Distinct: 30, Duplicated: 1}, false},
		{"not closed yet", append([]windowRow{open}, all...), Result{Windows: 30, Output: 31, Distinct: 31, Unexpected: 1}, false},
		{"wrong count", append([]windowRow{wrong}, all...), Result{Windows: 30, Output: 31, Distinct: 30, Duplicated: 1, WrongCount: 1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := Result{Pipeline: "window", Produced: 1000}
			if err := checkWindows(&res, rowsOf(t, c.rows...)); err != nil {
				t.Fatal(err)
			}
			c.res.Pipeline, c.res.Produced = "window", 1000
			if res != c.res {
				t.Fatalf("got %+v\nwant %+v", res, c.res)
			}
			if res.OK() != c.ok {
				t.Fatalf("OK() = %v, want %v", res.OK(), c.ok)
			}
		})
	}
	if err := checkWindows(&Result{Pipeline: "window"}, []string{"id-00000001"}); err == nil {
		t.Fatal("a row that is not a window's JSON passed the check")
	}
}
