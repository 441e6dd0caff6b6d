package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for peerbench when the comparison
// starts its Benthos child (os.Executable is the test binary then).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "benthos" {
		if err := runBenthos(context.Background(), os.Args[2:], os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestOrderSize(t *testing.T) {
	for _, size := range []int{160, 210, 1000} {
		for _, i := range []int{0, 7, 123456789} {
			v := order(i, size)
			if len(v) != size {
				t.Errorf("order(%d, %d) is %d bytes", i, size, len(v))
			}
			if !json.Valid(v) {
				t.Errorf("order(%d, %d) is not JSON: %s", i, size, v)
			}
		}
	}
}

func TestTargets(t *testing.T) {
	r := &Result{
		Sluice:  []Run{{WallSeconds: 1, PeakRSS: 100 << 20}, {WallSeconds: 2, PeakRSS: 300 << 20}, {WallSeconds: 1.5, PeakRSS: 150 << 20}},
		Benthos: []Run{{WallSeconds: 4.5, PeakRSS: 150 << 20}, {WallSeconds: 5, PeakRSS: 150 << 20}, {WallSeconds: 4, PeakRSS: 150 << 20}},
	}
	r.summarize()
	if r.SluiceWallMedian != 1.5 || r.BenthosWallMedian != 4.5 || r.Speedup != 3 || r.SluicePeakMedian != 150<<20 || r.RSSRatio != 1 {
		t.Fatalf("medians/ratios %+v", r)
	}
	if !r.Targets[0].Met || !r.Targets[1].Met {
		t.Errorf("targets %+v: both met", r.Targets)
	}
	r.Sluice[2].WallSeconds, r.Sluice[2].PeakRSS = 1.6, 200<<20
	r.summarize()
	if r.Targets[0].Met || r.Targets[1].Met {
		t.Errorf("targets %+v: neither met (4.5/1.6 < 3, 200 MiB > 192)", r.Targets)
	}
}

// TestCompareSmall runs the whole comparison on a small topic: a broker
// process, both processors draining it, every record counted on each side.
func TestCompareSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sluice and runs three processes")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // the release build (README, Dockerfile)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := runCompare(ctx, []string{"--sluice", bin, "--records", "20000", "--rounds", "2", "--json"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if len(r.Sluice) != 2 || len(r.Benthos) != 2 || len(r.Targets) != 2 {
		t.Fatalf("result %+v", r)
	}
	for _, run := range append(r.Sluice, r.Benthos...) {
		if run.Records != 20000 || run.WallSeconds <= 0 || run.PeakRSS <= 0 {
			t.Errorf("run %+v", run)
		}
	}
	if r.Speedup != r.BenthosWallMedian/r.SluiceWallMedian {
		t.Errorf("speed-up %v is not %v / %v", r.Speedup, r.BenthosWallMedian, r.SluiceWallMedian)
	}
}
