package rate

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/source"
)

func TestMicroBatchBatches(t *testing.T) {
	tests := []struct {
		name             string
		opts             map[string]string
		rows, parts      int64
		startTs, advance int64
	}{
		{"defaults", map[string]string{"rowsPerBatch": "10", "numPartitions": "3"}, 10, 3, 0, 1000},
		{"custom", map[string]string{"rowsPerBatch": "7", "numPartitions": "2", "startTimestamp": "1700000000000", "advanceMillisPerBatch": "250"}, 7, 2, 1_700_000_000_000, 250},
		{"one partition", map[string]string{"ROWSPERBATCH": "5", "numPartitions": "1"}, 5, 1, 0, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewMicroBatch(tc.opts, quiet)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			start, _ := s.InitialOffset(ctx)
			for k := int64(0); k < 4; k++ {
				end, latest, err := s.Latest(ctx, start, source.ReadLimit{MaxRows: 1})
				if err != nil {
					t.Fatal(err)
				}
				if latest.JSON() != end.JSON() {
					t.Errorf("latest %s != end %s", latest.JSON(), end.JSON())
				}
				rows := readAll(t, s, start, end)
				if int64(len(rows)) != tc.rows {
					t.Fatalf("batch %d: %d rows, want %d", k, len(rows), tc.rows)
				}
				seen := map[int64]bool{}
				for _, r := range rows {
					lo := k * tc.rows
					if r.v < lo || r.v >= lo+tc.rows || seen[r.v] {
						t.Fatalf("batch %d: value %d outside [%d,%d) or duplicated", k, r.v, lo, lo+tc.rows)
					}
					seen[r.v] = true
					if int64(r.part) != (r.v-lo)%tc.parts {
						t.Errorf("value %d in partition %d", r.v, r.part)
					}
					if want := (tc.startTs + k*tc.advance) * 1000; r.ts != want {
						t.Errorf("batch %d value %d: timestamp %d, want %d", k, r.v, r.ts, want)
					}
				}
				start = end
			}
			if want := `{"offset":` + itoa(4*tc.rows) + `,"timestamp":` + itoa(tc.startTs+4*tc.advance) + `}`; start.JSON() != want {
				t.Errorf("offset after 4 batches %s, want %s", start.JSON(), want)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestMicroBatchDeterministicAcrossRestart(t *testing.T) {
	opts := map[string]string{"rowsPerBatch": "6", "numPartitions": "4", "startTimestamp": "5000"}
	s1, _ := NewMicroBatch(opts, quiet)
	ctx := context.Background()
	start, _ := s1.InitialOffset(ctx)
	var logged []string // offsets/N as the engine would log them
	var want [][]row
	for k := 0; k < 3; k++ {
		end, _, _ := s1.Latest(ctx, start, source.ReadLimit{})
		logged = append(logged, end.JSON())
		want = append(want, readAll(t, s1, start, end))
		start = end
	}
	// New process: re-run batch 2 from offsets/1 → offsets/2, then plan batch 3.
	s2, _ := NewMicroBatch(opts, quiet)
	st, err := s2.ParseOffset(logged[1])
	if err != nil {
		t.Fatal(err)
	}
	en, err := s2.ParseOffset(logged[2])
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, s2, st, en)
	if len(got) != len(want[2]) {
		t.Fatalf("replayed %d rows, want %d", len(got), len(want[2]))
	}
	for i := range got {
		if got[i] != want[2][i] {
			t.Fatalf("replayed row %d = %+v, want %+v", i, got[i], want[2][i])
		}
	}
	next, _, _ := s2.Latest(ctx, en, source.ReadLimit{})
	if want := `{"offset":24,"timestamp":9000}`; next.JSON() != want {
		t.Errorf("batch 3 end %s, want %s", next.JSON(), want)
	}
}

func TestMicroBatchAvailableNowOneBatch(t *testing.T) {
	s, _ := NewMicroBatch(map[string]string{"rowsPerBatch": "3", "numPartitions": "1"}, quiet)
	ctx := context.Background()
	start, _ := s.ParseOffset(`{"offset":9,"timestamp":3000}`)
	if err := s.PrepareAvailableNow(ctx); err != nil {
		t.Fatal(err)
	}
	end, _, _ := s.Latest(ctx, start, source.ReadLimit{})
	if want := `{"offset":12,"timestamp":4000}`; end.JSON() != want {
		t.Fatalf("first AvailableNow batch ends at %s, want %s", end.JSON(), want)
	}
	again, _, _ := s.Latest(ctx, end, source.ReadLimit{})
	if again.JSON() != end.JSON() {
		t.Errorf("second AvailableNow Latest advanced to %s", again.JSON())
	}
}

func TestMicroBatchOptions(t *testing.T) {
	for _, tc := range []struct {
		opts    map[string]string
		wantErr string
	}{
		{map[string]string{}, `option "rowsPerBatch": required`},
		{map[string]string{"rowsPerBatch": "0"}, `option "rowsPerBatch": invalid value "0"`},
		{map[string]string{"rowsPerBatch": "1", "startTimestamp": "-1"}, `option "startTimestamp"`},
		{map[string]string{"rowsPerBatch": "1", "advanceMillisPerBatch": "x"}, `option "advanceMillisPerBatch"`},
		{map[string]string{"rowsPerBatch": "1", "rowsPerSecond": "1"}, `unknown rate-micro-batch source option "rowsPerSecond"`},
	} {
		if _, err := ParseMicroBatchConfig(tc.opts); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseMicroBatchConfig(%v) error %v, want %q", tc.opts, err, tc.wantErr)
		}
	}
}
