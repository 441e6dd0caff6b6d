package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/partition"
)

func readAll(t *testing.T, s *Source, start, end Offsets) ([]string, error) {
	t.Helper()
	r, err := s.Open(context.Background(), start, end)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tk := range r.Tasks() {
		err := r.Read(context.Background(), tk, func(_ context.Context, b *batch.Batch) error {
			for i := 0; i < b.N; i++ {
				out = append(out, fmt.Sprintf("%s@%d", b.Columns[1].Bytes[i], b.Columns[4].Ints[i]))
			}
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func TestOffsetsRangesAndRetention(t *testing.T) {
	s := New(Options{Partitions: 2, ChunkRows: 2})
	s.Append(0, "a", "b", "c")
	s.Append(1, "x")
	init, _ := s.InitialOffset(context.Background())
	from, latest, err := s.Available(context.Background(), init)
	if err != nil || fmt.Sprint(from) != "map[t-0:0 t-1:0]" || fmt.Sprint(latest) != "map[t-0:3 t-1:1]" {
		t.Fatalf("Available = %v %v %v", from, latest, err)
	}
	end := s.PartitionOffset(latest).(Offsets)
	if js := end.JSON(); js != `{"t":{"0":3,"1":1}}` {
		t.Fatalf("JSON %s", js)
	}
	back, err := s.ParseOffset(end.JSON())
	if err != nil || back.JSON() != end.JSON() {
		t.Fatalf("ParseOffset = %v, %v", back, err)
	}
	got, err := readAll(t, s, init.(Offsets), end)
	if err != nil || fmt.Sprint(got) != "[a@0 b@1 c@2 x@0]" {
		t.Fatalf("read %v, %v", got, err)
	}
	s.DeleteBefore(0, 2)
	if got, _ := readAll(t, s, init.(Offsets), end); fmt.Sprint(got) != "[c@2 x@0]" || s.Skipped() != 2 {
		t.Fatalf("after retention read %v, skipped %d", got, s.Skipped())
	}
	strict := New(Options{FailOnDataLoss: true})
	strict.Append(0, "a", "b")
	strict.DeleteBefore(0, 1)
	var dl *DataLossError
	if _, err := readAll(t, strict, Offsets{partition.ID{Topic: "t"}: 0}, Offsets{partition.ID{Topic: "t"}: 2}); !errors.As(err, &dl) || dl.Earliest != 1 {
		t.Fatalf("strict read over deleted records: %v", err)
	}
	if op := s.Opened(); len(op) != 2 || len(op[0]) != 2 || op[0][0].End != 3 {
		t.Fatalf("opened %v", s.Opened())
	}
}
